//! The Deno KV Connect front-end: lets `Deno.openKv("http://...")`, `@deno/kv` and the
//! Python `denokv` client use an edgekv node unchanged.
//!
//! One listener serves HTTP/1.1 (Node and Python clients) and HTTP/2 with prior
//! knowledge (h2c, the Deno CLI's choice for `http://` URLs); with certificates it serves
//! HTTPS instead, HTTP/2 or HTTP/1.1 by ALPN ([`tls_listener`]). Routes:
//! - `POST /`: metadata exchange ([`metadata`]), authenticated by an access token;
//! - `POST /{strong|eventual}/snapshot_read`, `/atomic_write` ([`datapath`]) and
//!   `/watch` ([`watch`]), authenticated by the data-path token the exchange minted.
//!
//! Like every front-end it translates and calls [`crate::kv::KvStore`]; errors become
//! HTTP statuses in [`error`] only.

mod datapath;
pub mod error;
mod metadata;
mod resolve;
mod tls_listener;
pub mod tokens;
mod values;
mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::error::KvConnectError;
use self::tokens::Tokens;
use crate::auth::{Authenticator, Principal};
use crate::kv::{Consistency, KvStore};

/// Largest request body read; well above the protocol's 800 KiB atomic write limit, so
/// the limit check answers with its own message.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct AppState {
    store: KvStore,
    tokens: Arc<Tokens>,
    shutdown: CancellationToken,
}

impl AppState {
    /// Checks the headers every data-path request carries (its token, protocol version 2
    /// or 3, the database id) and returns who the request acts as.
    fn authorize_data_path(&self, headers: &HeaderMap) -> Result<Principal, KvConnectError> {
        let principal = self.tokens.data_path(headers, self.store.now_ms())?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match header("x-denokv-version") {
            Some("2" | "3") => {}
            Some(other) => {
                return Err(KvConnectError::BadRequest(format!(
                    "unsupported protocol version {other}; edgekv speaks versions 2 and 3"
                )));
            }
            None => {
                return Err(KvConnectError::BadRequest(
                    "missing x-denokv-version header; edgekv speaks protocol versions 2 and 3".into(),
                ));
            }
        };
        let database = header("x-denokv-database-id")
            .ok_or_else(|| KvConnectError::BadRequest("missing x-denokv-database-id header".into()))?;
        if !database.eq_ignore_ascii_case(&self.store.database_id().to_string()) {
            return Err(KvConnectError::BadRequest(format!("unknown database id {database}")));
        }
        Ok(principal)
    }
}

/// Who a data-path request acts as: its headers checked ([`AppState::authorize_data_path`])
/// before its body is read, so a stranger's request costs no buffering or decoding.
pub(crate) struct DataPath(pub Principal);

impl FromRequestParts<AppState> for DataPath {
    type Rejection = KvConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.authorize_data_path(&parts.headers).map(DataPath)
    }
}

/// Which endpoint a data-path request came through.
fn endpoint_consistency(endpoint: &str) -> Result<Consistency, KvConnectError> {
    match endpoint {
        "strong" => Ok(Consistency::Strong),
        "eventual" => Ok(Consistency::Eventual),
        _ => Err(KvConnectError::NotFound),
    }
}

/// A protobuf request body.
pub(crate) struct Protobuf<T>(pub T);

impl<S: Send + Sync, T: prost::Message + Default> FromRequest<S> for Protobuf<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        T::decode(body).map(Protobuf).map_err(|e| {
            KvConnectError::BadRequest(format!("the request body is not a valid protobuf message: {e}")).into_response()
        })
    }
}

/// A protobuf response body.
pub(crate) struct ProtobufResponse<T>(pub T);

impl<T: prost::Message> IntoResponse for ProtobufResponse<T> {
    fn into_response(self) -> Response {
        ([("content-type", "application/x-protobuf")], self.0.encode_to_vec()).into_response()
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(metadata::exchange))
        .route("/{endpoint}/snapshot_read", post(datapath::snapshot_read))
        .route("/{endpoint}/atomic_write", post(datapath::atomic_write))
        .route("/{endpoint}/watch", post(watch::watch))
        .fallback(|| async { KvConnectError::NotFound })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves KV Connect (HTTPS when `tls` is given) until `shutdown` fires; open watches end
/// then too. Access tokens are signed tokens when `authenticator` has secrets, otherwise
/// the shared `access_tokens`.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    authenticator: Arc<Authenticator>,
    store: KvStore,
    access_tokens: Vec<String>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = AppState {
        store,
        tokens: Arc::new(Tokens::new(authenticator, access_tokens)),
        shutdown: shutdown.clone(),
    };
    if let Some(tls) = tls {
        return axum::serve(tls_listener::TlsListener::new(listener, tls), router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
    }
    // Nagle off, as on the gRPC listener: small answers would otherwise meet delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY on a KV Connect connection");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
