//! An atomic counter: many concurrent increments with `sum` (each commit answers with the
//! total it left, no read needed), and a compare-and-set loop that retries on conflict, as
//! with Deno KV's `atomic().check(...)`.

use anyhow::Context as _;
use edgekv_client::{Client, Value, key};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("EDGEKV_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let kv = Client::connect(endpoint).await?;
    kv.delete(key!["counters", "visits"]).await?;
    kv.delete(key!["counters", "cas"]).await?;

    // 50 concurrent increments: sum never loses one.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move { kv.atomic().sum(key!["counters", "visits"], 1).commit().await })
        })
        .collect();
    // Each commit answers with the value its sum left: the totals 1 to 50, each seen once.
    let mut totals = Vec::new();
    for task in tasks {
        let committed = task.await??;
        anyhow::ensure!(committed.ok);
        totals.push(committed.numeric_values[0].context("a sum answers with its value")?);
    }
    totals.sort_unstable();
    anyhow::ensure!(totals == (1..=50).collect::<Vec<u64>>(), "totals {totals:?}");
    let visits = kv
        .get(key!["counters", "visits"])
        .await?
        .and_then(|e| e.value)
        .and_then(|v| v.as_u64());
    anyhow::ensure!(visits == Some(50), "expected 50 visits, got {visits:?}");

    // Compare-and-set: read, compute, write only if nobody wrote in between.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let kv = kv.clone();
            tokio::spawn(async move {
                loop {
                    let current = kv.get(key!["counters", "cas"]).await?;
                    let (stamp, value) = match &current {
                        Some(entry) => (
                            Some(entry.versionstamp),
                            entry.value.as_ref().and_then(Value::as_u64).unwrap_or(0),
                        ),
                        None => (None, 0),
                    };
                    let result = kv
                        .atomic()
                        .check(key!["counters", "cas"], stamp)
                        .set(key!["counters", "cas"], value + 1)
                        .commit()
                        .await?;
                    if result.ok {
                        return Ok::<_, edgekv_client::Error>(());
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let cas = kv
        .get(key!["counters", "cas"])
        .await?
        .and_then(|e| e.value)
        .and_then(|v| v.as_u64());
    anyhow::ensure!(cas == Some(10), "expected 10 after compare-and-set, got {cas:?}");
    println!("visits={} cas={}", visits.unwrap_or(0), cas.unwrap_or(0));
    Ok(())
}
