//! A node whose disk fills up answers STORAGE_FULL, keeps every acknowledged write and
//! keeps serving reads from its replica (eventual reads). Its Raft member stops at the
//! storage failure, so strong requests fail with a clear code instead of hanging. The disk is a small tmpfs mounted in a private mount namespace
//! that only the node sees (needs root, as in CI).

use std::process::Command;

use edgekv_client::{Client, Consistency, ErrorCode, Value, key};
use edgekv_tests::{Node, binary};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Incompressible bytes, so compression cannot stretch the tiny disk.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    assert!(
        is_root(),
        "this test mounts a tmpfs in a private mount namespace and must run as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("disk");
    std::fs::create_dir(&mount).unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=24m tmpfs "$1" && exec "$2" dev --listen 127.0.0.1:0 --kv-connect-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 --data-dir "$1/data""#)
        .arg("sh")
        .arg(&mount)
        .arg(binary("edgekv"));
    let node = Node::launch(command, &dir.path().join("node")).unwrap();
    // A short write deadline: the write that meets the full disk has an unknown outcome,
    // which the SDK sends again until its deadline.
    let kv = Client::builder()
        .endpoint(node.endpoint.clone())
        .write_deadline(std::time::Duration::from_secs(2))
        .connect()
        .await
        .unwrap();

    let mut acknowledged = Vec::new();
    let mut full = None;
    for i in 0..400u64 {
        match kv.set(key!["blob", i], noise(i, 256 * 1024)).await {
            Ok(_) => acknowledged.push(i),
            Err(error) => {
                full = Some(error);
                break;
            }
        }
    }
    let error = full.expect("24 MiB cannot hold 100 MiB of incompressible values");
    // The write that met the full disk was already proposed: its outcome is unknown (in a
    // cluster, followers could still commit it), and stays so until the SDK's deadline.
    // Every write after it is refused outright.
    assert!(
        error.is_indefinite() || error.code() == Some(ErrorCode::StorageFull),
        "{error}"
    );
    let refused = kv.set(key!["after-full"], "x").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::StorageFull), "{refused}");
    assert!(!acknowledged.is_empty());

    // Reads of the local replica keep working, and every acknowledged value is intact.
    for &i in &acknowledged {
        let entry = kv
            .get(key!["blob", i])
            .consistency(Consistency::Eventual)
            .await
            .unwrap()
            .expect("acknowledged value present");
        assert_eq!(
            entry.value,
            Some(Value::Bytes(noise(i, 256 * 1024))),
            "blob {i} corrupted"
        );
    }
    assert!(kv.status().await.is_ok(), "the node still answers after ENOSPC");
    let strong = kv.get(key!["blob", 0]).await.unwrap_err();
    assert!(
        matches!(
            strong.code(),
            Some(ErrorCode::StorageFull | ErrorCode::Unavailable | ErrorCode::ShuttingDown)
        ),
        "a strong read after the Raft member stopped fails clearly: {strong}"
    );
}
