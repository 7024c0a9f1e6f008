//! The real `edgekv` binary on a temporary directory, driven through the SDK.

use std::time::Duration;

use edgekv_client::{Client, Consistency, ErrorCode, Selector, Value, key};
use edgekv_tests::{Node, eventually};
use futures::TryStreamExt as _;

fn code<T: std::fmt::Debug>(result: Result<T, edgekv_client::Error>) -> Option<ErrorCode> {
    result.unwrap_err().code()
}

async fn connect(node: &Node) -> Client {
    Client::connect(node.endpoint.clone()).await.expect("connect")
}

#[tokio::test]
async fn put_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let kv = connect(&node).await;

    let first = kv
        .set(key!["users", 1], "ada")
        .metadata(serde_json::json!({"role": "admin"}))
        .await
        .unwrap();
    let second = kv
        .set(
            key!["users", 2],
            Value::json(&serde_json::json!({"name": "bob"})).unwrap(),
        )
        .await
        .unwrap();
    assert!(second > first, "versionstamps increase");
    kv.set(key!["users", 3], 7u64).await.unwrap();
    kv.set(key!["other"], b"raw".to_vec()).await.unwrap();

    let entry = kv.get(key!["users", 1]).await.unwrap().unwrap();
    assert_eq!(entry.value, Some(Value::String("ada".into())));
    assert_eq!(entry.versionstamp, first);
    assert_eq!(entry.metadata, Some(serde_json::json!({"role": "admin"})));
    let served = entry.served_by.unwrap();
    assert_eq!(served.consistency, Consistency::Strong);
    assert_eq!(served.node_id, "1");

    let eventual = kv
        .get(key!["users", 2])
        .consistency(Consistency::Eventual)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(eventual.served_by.unwrap().consistency, Consistency::Eventual);
    assert_eq!(
        eventual.value.unwrap().to_json::<serde_json::Value>().unwrap()["name"],
        "bob"
    );

    let listed: Vec<_> = kv
        .list(Selector::prefix(key!["users"]))
        .batch_size(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        vec![key!["users", 1], key!["users", 2], key!["users", 3]]
    );
    let reversed: Vec<_> = kv
        .list(Selector::prefix(key!["users"]))
        .reverse(true)
        .limit(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        reversed.iter().map(|e| e.key.clone()).collect::<Vec<_>>(),
        vec![key!["users", 3], key!["users", 2]]
    );
    let keys_only: Vec<_> = kv
        .list(Selector::range(key!["users", 2], key!["users", 3]))
        .keys_only(true)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(keys_only.len(), 1);
    assert_eq!(keys_only[0].value, None);

    kv.delete(key!["users", 1]).await.unwrap();
    assert_eq!(kv.get(key!["users", 1]).await.unwrap(), None);

    let many = kv
        .get_many((0..150).map(|i| key!["users", i]), Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(many.len(), 150);
    assert_eq!(many.iter().filter(|e| e.is_some()).count(), 2);
}

#[tokio::test]
async fn ttl_expiry_and_sweeping() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let kv = connect(&node).await;
    kv.set(key!["session"], "s")
        .expire_in(Duration::from_millis(300))
        .await
        .unwrap();
    kv.set(key!["keep"], "k").await.unwrap();
    let entry = kv.get(key!["session"]).await.unwrap().expect("live before expiry");
    let expires_at = entry.expires_at_ms.unwrap();
    // Once the expiry has passed, no read may return the value, whether or not the sweeper
    // ran: check every read path.
    let gone = eventually(Duration::from_secs(20), || async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let value = kv.get(key!["session"]).await.unwrap();
        assert!(value.is_none() || now < expires_at, "an expired value was served");
        value.is_none()
    })
    .await;
    assert!(gone, "the value never expired");
    let listed: Vec<_> = kv.list(Selector::prefix(key![])).stream().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    let many = kv
        .get_many([key!["session"], key!["keep"]], Consistency::Eventual)
        .await
        .unwrap();
    assert!(many[0].is_none() && many[1].is_some());
    let absent_check = kv
        .atomic()
        .check(key!["session"], None)
        .set(key!["session"], "again")
        .commit()
        .await
        .unwrap();
    assert!(absent_check.ok, "an expired key counts as absent for checks");
    // The sweeper reclaims the expired record in the background; status counts live keys.
    let status = kv.status().await.unwrap();
    assert_eq!(status.key_count, 2);
}

#[tokio::test]
async fn failed_check_is_an_answer_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let kv = connect(&node).await;
    let stamp = kv.set(key!["balance"], 10u64).await.unwrap();
    kv.set(key!["balance"], 20u64).await.unwrap();
    let result = kv
        .atomic()
        .check(key!["missing"], None)
        .check(key!["balance"], Some(stamp))
        .set(key!["balance"], 30u64)
        .commit()
        .await
        .unwrap();
    assert!(!result.ok);
    assert_eq!(result.failed_checks, vec![1]);
    assert_eq!(
        kv.get(key!["balance"]).await.unwrap().unwrap().value,
        Some(Value::U64(20))
    );
    let counted = kv.atomic().sum(key!["balance"], 5).commit().await.unwrap();
    assert!(counted.ok);
    assert_eq!(
        kv.get(key!["balance"]).await.unwrap().unwrap().value,
        Some(Value::U64(25))
    );
}

#[tokio::test]
async fn limit_errors_have_stable_codes_and_the_node_survives() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let kv = connect(&node).await;
    assert_eq!(
        code(kv.set(key!["k".repeat(3000)], "v").await),
        Some(ErrorCode::KeyTooLarge)
    );
    assert_eq!(
        code(kv.set(key!["k"], vec![0u8; (1 << 20) + 1]).await),
        Some(ErrorCode::ValueTooLarge)
    );
    let big_meta = serde_json::json!({"m": "x".repeat(2000)});
    assert_eq!(
        code(kv.set(key!["k"], "v").metadata(big_meta).await),
        Some(ErrorCode::MetadataTooLarge)
    );
    let mut atomic = kv.atomic();
    for i in 0..1001 {
        atomic = atomic.set(key!["many", i], "v");
    }
    assert_eq!(code(atomic.commit().await), Some(ErrorCode::TooManyMutations));
    let mut atomic = kv.atomic();
    for i in 0..101 {
        atomic = atomic.check(key!["c", i], None);
    }
    assert_eq!(code(atomic.commit().await), Some(ErrorCode::TooManyChecks));
    kv.set(key!["text"], "not a number").await.unwrap();
    let error = kv.atomic().sum(key!["text"], 1).commit().await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::TypeMismatch));
    assert!(!error.is_retry_safe());
    // Malformed key bytes straight on the wire.
    let mut raw = edgekv_client::proto::kv_client::KvClient::connect(node.endpoint.clone())
        .await
        .unwrap();
    let status = raw
        .get(edgekv_client::proto::GetRequest {
            key: vec![0x02, b'a'],
            consistency: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.metadata().get("edgekv-error-code").unwrap(), "KEY_MALFORMED");
    let status = raw
        .list(edgekv_client::proto::ListRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.metadata().get("edgekv-error-code").unwrap(), "INVALID_RANGE");
    // Still serving after all of that.
    assert_eq!(
        kv.get(key!["text"]).await.unwrap().unwrap().value,
        Some(Value::String("not a number".into()))
    );
}

// Multi-threaded: terminate() blocks its thread while the client's connection task must
// still answer the server's goodbye.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_sigkill_keep_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = Node::start(&data).unwrap();
    let kv = connect(&node).await;
    let mut last = None;
    for i in 0..50 {
        last = Some(kv.set(key!["durable", i], format!("v{i}")).await.unwrap());
    }
    let status = node.terminate().unwrap();
    assert!(status.success(), "orderly shutdown exits 0, got {status:?}");
    assert!(node.log_text().contains("shut down cleanly"));

    let mut node = Node::start(&data).unwrap();
    let kv = connect(&node).await;
    let listed: Vec<_> = kv
        .list(Selector::prefix(key!["durable"]))
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 50);
    let after_restart = kv.set(key!["after"], "restart").await.unwrap();
    assert!(
        Some(after_restart) > last,
        "versionstamps keep increasing across restarts"
    );

    // Acknowledged, then SIGKILL with no chance to flush: the WAL fsync is what keeps it.
    let acked = kv.set(key!["acked"], "right before the kill").await.unwrap();
    node.kill();
    let node = Node::start(&data).unwrap();
    let kv = connect(&node).await;
    let entry = kv
        .get(key!["acked"])
        .await
        .unwrap()
        .expect("acknowledged write survives SIGKILL");
    assert_eq!(entry.versionstamp, acked);
    assert_eq!(
        kv.list(Selector::prefix(key!["durable"]))
            .stream()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len(),
        50
    );
}

#[tokio::test]
async fn a_second_node_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _node = Node::start(&data).unwrap();
    let error = match Node::start(&data) {
        Ok(_) => panic!("a second node started on a locked data dir"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("in use by another edgekv process"), "{error}");
}
