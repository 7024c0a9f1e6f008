//! Redis through the `redis` crate's multiplexed async connection. The server runs with
//! `appendfsync always`, so its writes are durable like everyone else's.

use anyhow::{Context, Result};
use bytes::Bytes;
use redis::AsyncCommands as _;
use redis::aio::MultiplexedConnection;

#[derive(Clone)]
pub struct RedisTarget {
    connection: MultiplexedConnection,
}

fn key(n: u64) -> String {
    format!("bench:{n:020}")
}

impl RedisTarget {
    pub async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url).context("redis url")?;
        Ok(Self {
            connection: client
                .get_multiplexed_async_connection()
                .await
                .context("connect to redis")?,
        })
    }

    pub async fn get(&self, n: u64) -> Result<Option<Bytes>> {
        let value: Option<Vec<u8>> = self.connection.clone().get(key(n)).await?;
        Ok(value.map(Bytes::from))
    }

    pub async fn put(&self, n: u64, value: Bytes, expire_at_ms: Option<u64>) -> Result<()> {
        let mut connection = self.connection.clone();
        match expire_at_ms {
            Some(at) => {
                redis::cmd("SET")
                    .arg(key(n))
                    .arg(value.to_vec())
                    .arg("PXAT")
                    .arg(at)
                    .query_async::<()>(&mut connection)
                    .await?
            }
            None => connection.set::<_, _, ()>(key(n), value.to_vec()).await?,
        }
        Ok(())
    }
}
