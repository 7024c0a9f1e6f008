//! A client in one region of a cluster: eventual reads stay in its region, writes go to
//! the leader, and a write whose outcome is unknown is checked, not blindly retried.
//!
//! `EDGEKV_ENDPOINTS="us-east=http://10.0.1.5:7070,eu-west=http://10.1.1.5:7070"` and
//! `EDGEKV_REGION=eu-west`; with only `EDGEKV_ENDPOINT`, the single node is the region.

use std::time::Duration;

use edgekv_client::{Client, Consistency, Value, key};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let region = std::env::var("EDGEKV_REGION").unwrap_or_else(|_| "local".into());
    let endpoints = std::env::var("EDGEKV_ENDPOINTS").unwrap_or_else(|_| {
        let single = std::env::var("EDGEKV_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
        format!("{region}={single}")
    });
    let mut builder = Client::builder().region(&region);
    for endpoint in endpoints.split(',') {
        let (node_region, url) = endpoint
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{endpoint:?} is not REGION=URL"))?;
        builder = builder.region_endpoint(node_region, url);
    }
    let kv = builder.connect().await?;

    // A write goes to the leader (through the nearest node until one names the leader).
    let session = key!["sessions", "ada"];
    let written = match kv
        .set(session.clone(), "signed-in")
        .expire_in(Duration::from_secs(60))
        .await
    {
        Ok(stamp) => stamp,
        // The write may or may not have landed: look before writing again.
        Err(error) if error.is_indefinite() => match kv.get(session.clone()).await? {
            Some(entry) => entry.versionstamp,
            None => {
                kv.set(session.clone(), "signed-in")
                    .expire_in(Duration::from_secs(60))
                    .await?
            }
        },
        Err(error) => return Err(error.into()),
    };

    // An eventual read is served in this region and says how stale it may be; poll until the
    // local copy has the write (in a single-node setup it always has).
    let entry = loop {
        let entry = kv.get(session.clone()).consistency(Consistency::Eventual).await?;
        match entry {
            Some(entry) if entry.versionstamp >= written => break entry,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let served_by = entry.served_by.clone().expect("reads say who served them");
    anyhow::ensure!(entry.value == Some(Value::from("signed-in")));
    println!(
        "read in {} from node {} (at most {:?} stale); writes go to {}",
        served_by.region,
        served_by.node_id,
        served_by.staleness,
        kv.leader()
            .unwrap_or_else(|| "the nearest node, which forwards them".into())
    );

    // A strong read reflects every acknowledged write, wherever it was made.
    let strong = kv.get(session).await?.expect("just written");
    anyhow::ensure!(strong.versionstamp >= written);
    Ok(())
}
