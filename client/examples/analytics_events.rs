//! Analytics events, Deno KV style: each event under `["analytics", timestamp, uuid]`, so
//! a prefix list returns them in time order and a range picks a time window.

use edgekv_client::{Client, Selector, Value, key};
use futures::TryStreamExt as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("EDGEKV_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let kv = Client::connect(endpoint).await?;
    kv.atomic().delete_prefix(key!["analytics"]).commit().await?;

    let start = 1_700_000_000_000u64;
    for i in 0..20u64 {
        let event =
            serde_json::json!({ "type": if i % 2 == 0 { "page_view" } else { "click" }, "path": format!("/p/{i}") });
        kv.set(
            key!["analytics", start + i * 1000, uuid::Uuid::new_v4().to_string()],
            Value::json(&event)?,
        )
        .await?;
    }

    let all: Vec<_> = kv
        .list(Selector::prefix(key!["analytics"]))
        .batch_size(7)
        .stream()
        .try_collect()
        .await?;
    anyhow::ensure!(all.len() == 20, "expected 20 events, listed {}", all.len());

    // The last five seconds of the window: events with timestamps in [start+15s, start+20s).
    let window: Vec<_> = kv
        .list(Selector::range(
            key!["analytics", start + 15_000],
            key!["analytics", start + 20_000],
        ))
        .stream()
        .try_collect()
        .await?;
    anyhow::ensure!(
        window.len() == 5,
        "expected 5 events in the window, got {}",
        window.len()
    );

    let newest: Vec<_> = kv
        .list(Selector::prefix(key!["analytics"]))
        .reverse(true)
        .limit(3)
        .stream()
        .try_collect()
        .await?;
    anyhow::ensure!(
        newest.len() == 3 && newest[0].key > newest[2].key,
        "reverse listing is newest first"
    );
    println!(
        "{} events, {} in the last window, newest {}",
        all.len(),
        window.len(),
        newest[0].key
    );
    Ok(())
}
