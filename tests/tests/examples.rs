//! Each SDK example in client/examples runs to completion against a real node.

use edgekv_tests::{Node, example};

fn run_example(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let output = std::process::Command::new(example(name))
        .env("EDGEKV_ENDPOINT", &node.endpoint)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "example {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cache_aside() {
    run_example("cache_aside");
}

#[test]
fn analytics_events() {
    run_example("analytics_events");
}

#[test]
fn atomic_counter() {
    run_example("atomic_counter");
}

#[test]
fn regional_reads() {
    run_example("regional_reads");
}
