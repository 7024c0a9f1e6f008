//! `POST /`: the metadata exchange. Checks the access token, agrees on a protocol
//! version, and returns the database id, the data-path endpoints and a data-path token.
//!
//! Endpoints are listed eventual first: the local replica serves eventual reads (and
//! watches); the strong endpoint serves strong reads and writes through the strong path.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::KvConnectError;
use super::tokens::Issued;

const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExchangeRequest {
    supported_versions: Vec<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DatabaseMetadata {
    version: u32,
    database_id: String,
    endpoints: Vec<Endpoint>,
    token: String,
    expires_at: String,
}

#[derive(Serialize)]
struct Endpoint {
    url: &'static str,
    consistency: &'static str,
}

/// The exchange's access token, checked (and a data-path token issued) from the headers
/// before the body is read.
pub(super) struct Exchanged(Issued);

impl FromRequestParts<AppState> for Exchanged {
    type Rejection = KvConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state
            .tokens
            .exchange(&parts.headers, state.store.now_ms())
            .map(Exchanged)
    }
}

pub(super) async fn exchange(
    State(state): State<AppState>,
    Exchanged(issued): Exchanged,
    body: Bytes,
) -> Result<Json<DatabaseMetadata>, KvConnectError> {
    if body.is_empty() {
        return Err(KvConnectError::BadRequest(
            "edgekv needs KV Connect protocol version 2 or newer (Deno 1.38 or newer)".into(),
        ));
    }
    let request: ExchangeRequest = serde_json::from_slice(&body)
        .map_err(|e| KvConnectError::BadRequest(format!("invalid metadata exchange request: {e}")))?;
    let version = SUPPORTED_VERSIONS
        .iter()
        .rev()
        .find(|v| request.supported_versions.contains(v))
        .copied()
        .ok_or_else(|| {
            KvConnectError::BadRequest(format!(
                "no common protocol version: the client supports {:?}, edgekv supports {SUPPORTED_VERSIONS:?}",
                request.supported_versions
            ))
        })?;
    let expires_at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(issued.expires_at_ms);
    Ok(Json(DatabaseMetadata {
        version,
        // Lowercase hyphenated, as the schema requires.
        database_id: state.store.database_id().hyphenated().to_string(),
        endpoints: vec![
            Endpoint {
                url: "/eventual",
                consistency: "eventual",
            },
            Endpoint {
                url: "/strong",
                consistency: "strong",
            },
        ],
        token: issued.token,
        expires_at: humantime::format_rfc3339_seconds(expires_at).to_string(),
    }))
}
