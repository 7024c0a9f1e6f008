//! Cache-aside user lookup, Workers KV style: read the cache, fall back to the origin on a
//! miss, and store the answer with a 300 s TTL and metadata saying where it came from.
//!
//! Run against a node: `cargo x dev` in one terminal, then
//! `cargo run -p edgekv-client --example cache_aside`.

use std::time::Duration;

use edgekv_client::{Client, key};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

/// Stands in for the slow origin (a database, an upstream API).
async fn load_user_from_origin(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

async fn get_user(kv: &Client, id: u64) -> anyhow::Result<(User, bool)> {
    if let Some(entry) = kv.get(key!["cache", "users", id]).await? {
        let user = entry.value.expect("values are returned by get").to_json::<User>()?;
        return Ok((user, true));
    }
    let user = load_user_from_origin(id).await;
    kv.set(key!["cache", "users", id], edgekv_client::Value::json(&user)?)
        .expire_in(Duration::from_secs(300))
        .metadata(serde_json::json!({ "source": "origin" }))
        .await?;
    Ok((user, false))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("EDGEKV_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let kv = Client::connect(endpoint).await?;
    kv.delete(key!["cache", "users", 42]).await?;

    let (first, hit) = get_user(&kv, 42).await?;
    anyhow::ensure!(!hit, "the first lookup must miss");
    let (second, hit) = get_user(&kv, 42).await?;
    anyhow::ensure!(hit && second == first, "the second lookup must hit the cache");

    let entry = kv.get(key!["cache", "users", 42]).await?.expect("cached");
    let expires_in = entry
        .expires_at()
        .expect("cached with a TTL")
        .duration_since(std::time::SystemTime::now())?;
    anyhow::ensure!(expires_in <= Duration::from_secs(300), "TTL is at most 300 s");
    println!(
        "{} cached for another {}s (metadata {})",
        second.name,
        expires_in.as_secs(),
        entry.metadata.unwrap_or_default()
    );
    Ok(())
}
