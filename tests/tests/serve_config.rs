//! `edgekv serve --config`: defaults < file < EDGEKV_* environment < flags, and strict
//! refusal of bad configuration.

use std::process::Command;

use edgekv_client::Client;
use edgekv_tests::{Node, binary};

fn serve(config: &std::path::Path) -> Command {
    let mut command = Command::new(binary("edgekv"));
    // Plaintext on loopback: these tests are about how settings combine, not TLS.
    command.arg("serve").arg("--insecure").arg("--config").arg(config);
    for var in [
        "EDGEKV_NODE_ID",
        "EDGEKV_REGION",
        "EDGEKV_DATA_DIR",
        "EDGEKV_LISTEN",
        "EDGEKV_LOG",
        "EDGEKV_CONFIG",
    ] {
        command.env_remove(var);
    }
    command
}

#[tokio::test]
async fn file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("edgekv.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nid = 5\nregion = \"file-region\"\n[storage]\ndata_dir = {:?}\n[api]\nlisten = \"127.0.0.1:0\"\n\
             [cluster]\npeer_listen = \"127.0.0.1:0\"\n[kv_connect]\nlisten = \"127.0.0.1:0\"\naccess_tokens = [\"a-long-enough-token\"]\n",
            data.display().to_string()
        ),
    )
    .unwrap();

    let mut command = serve(&config);
    command
        .env("EDGEKV_REGION", "env-region")
        .env("EDGEKV_NODE_ID", "6")
        .args(["--id", "7"]);
    let node = Node::launch(command, &data).unwrap();
    let status = Client::connect(node.endpoint.clone())
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    assert_eq!(status.node_id, "7", "a flag beats the environment");
    assert_eq!(status.region, "env-region", "the environment beats the file");
    assert_eq!(
        std::path::Path::new(&status.data_dir),
        data,
        "the file beats the default"
    );
    assert!(status.sync_writes, "writes are fsynced by default");
}

#[test]
fn bad_configuration_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgekv.toml");
    std::fs::write(&config, "[storage]\ndata_dri = \"typo\"\n").unwrap();
    let output = serve(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("data_dri"), "{stderr}");

    // KV Connect is on by default and needs a token in production.
    std::fs::write(&config, "[node]\nid = 1\n").unwrap();
    let output = serve(&config).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no access token"));

    let output = serve(&dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read config file"));

    let output = Command::new(binary("edgekv"))
        .args(["dev", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
