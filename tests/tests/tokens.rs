//! Tokens on a real secure node (`edgekv serve` with certificates from `edgekv cert` and
//! secrets for `kvctl token create`): every refusal gets its stable code, names who was
//! refused and for what, and changes nothing, which each case reads back afterwards.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edgekv_client::proto as pb;
use edgekv_client::{Consistency, ErrorCode, Selector, key};
use edgekv_tests::cluster::{Cluster, ClusterOptions};
use edgekv_tests::credentials::{TokenSpec, admin_token, certificates, secret_file, token};
use futures::TryStreamExt as _;

const KEEP: (&str, &str) = ("keep", "a-secret-the-harness-signs-with-0123456789");
const OLD: (&str, &str) = ("old", "the-secret-being-rotated-out-0123456789abcdef");
const NEW: (&str, &str) = ("new", "the-secret-being-rotated-in-0123456789abcdef");

/// A one-node secure cluster whose node reads its secrets from `dir/secrets`; the harness
/// holds an admin token signed with [`KEEP`].
fn secure_node(dir: &Path, secrets: &[(&str, &str)]) -> Cluster {
    let certs = dir.join("certs");
    certificates(&certs).unwrap();
    secret_file(&dir.join("secrets"), secrets).unwrap();
    secret_file(&dir.join("keep-only"), &[KEEP]).unwrap();
    Cluster::start_with(
        &["us-east"],
        &[],
        ClusterOptions {
            certs_dir: Some(certs),
            auth_secret_file: Some(dir.join("secrets")),
            token: Some(admin_token(&dir.join("keep-only")).unwrap()),
            ..ClusterOptions::default()
        },
    )
    .unwrap()
}

/// The code of a refused call, with its message for the assertion's sake.
fn refusal<T: std::fmt::Debug>(result: edgekv_client::Result<T>) -> (ErrorCode, String) {
    let error = result.expect_err("the call is refused");
    (error.code().unwrap_or(ErrorCode::Internal), error.to_string())
}

fn code_of<T: std::fmt::Debug>(result: edgekv_client::Result<T>) -> ErrorCode {
    refusal(result).0
}

/// The token with its claims replaced by `claims`, header and signature kept.
fn with_claims(token: &str, claims: serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_checked_on_every_call_and_secrets_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = secure_node(dir.path(), &[KEEP, OLD]);
    let node = cluster.node(1);
    let admin = node.client().await.unwrap();
    admin.set(key!["users", 1], "original").await.unwrap();

    let everything = |subject| TokenSpec {
        subject,
        prefixes: &["[]"],
        read: true,
        write: true,
        ttl: "1h",
        ..TokenSpec::default()
    };
    secret_file(&dir.path().join("old-only"), &[OLD]).unwrap();
    let old_token = token(&dir.path().join("old-only"), &everything("old-holder")).unwrap();

    // No token, a malformed one, one signed with a secret the node does not have, one
    // whose claims were altered after signing, and one that expired.
    let anonymous = node.client_as(None).await.unwrap();
    assert_eq!(
        code_of(anonymous.get(key!["users", 1]).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code_of(anonymous.set(key!["users", 1], "anonymous").await),
        ErrorCode::Unauthenticated
    );
    let garbage = node.client_as(Some("not-a-token")).await.unwrap();
    assert_eq!(code_of(garbage.get(key!["users", 1]).await), ErrorCode::Unauthenticated);

    secret_file(
        &dir.path().join("stranger"),
        &[("k1", "a-secret-nobody-configured-0123456789ab")],
    )
    .unwrap();
    let foreign = token(&dir.path().join("stranger"), &everything("stranger")).unwrap();
    let (code, message) = refusal(
        node.client_as(Some(&foreign))
            .await
            .unwrap()
            .set(key!["users", 1], "stranger")
            .await,
    );
    assert_eq!(code, ErrorCode::Unauthenticated, "{message}");
    assert!(message.contains("k1"), "names the unknown key id: {message}");

    let reader = token(
        &dir.path().join("keep-only"),
        &TokenSpec {
            subject: "reader",
            prefixes: &[r#"["users"]"#],
            read: true,
            ttl: "1h",
            ..TokenSpec::default()
        },
    )
    .unwrap();
    let mut claims = claims_of(&reader);
    claims["scope"][0]["write"] = true.into();
    let tampered = with_claims(&reader, claims);
    let (code, message) = refusal(
        node.client_as(Some(&tampered))
            .await
            .unwrap()
            .set(key!["users", 1], "tampered")
            .await,
    );
    assert_eq!(code, ErrorCode::Unauthenticated, "{message}");
    assert!(message.contains("signature"), "{message}");

    let short_lived = TokenSpec {
        ttl: "1s",
        ..everything("short-lived")
    };
    let expiring = token(&dir.path().join("keep-only"), &short_lived).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, message) = refusal(
        node.client_as(Some(&expiring))
            .await
            .unwrap()
            .set(key!["users", 1], "expired")
            .await,
    );
    assert_eq!(code, ErrorCode::Unauthenticated, "{message}");
    assert!(message.contains("expired"), "{message}");

    // The admin API checks tokens too.
    let status = node
        .admin_as(None)
        .await
        .unwrap()
        .cluster_status(pb::ClusterStatusRequest {})
        .await;
    assert_eq!(status.unwrap_err().code(), tonic::Code::Unauthenticated);

    let after = admin
        .get(key!["users", 1])
        .consistency(Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(
        after.unwrap().value.as_ref().and_then(edgekv_client::Value::as_str),
        Some("original"),
        "no refused write landed"
    );

    // Rotation: the new secret is added (signing), the old one kept while its tokens live.
    let old_holder = node.client_as(Some(&old_token)).await.unwrap();
    old_holder.set(key!["users", 2], "old secret").await.unwrap();
    secret_file(&dir.path().join("secrets"), &[NEW, KEEP, OLD]).unwrap();
    cluster.restart(1).unwrap();
    let node = cluster.node(1);
    let new_token = token(&dir.path().join("secrets"), &everything("new-holder")).unwrap();
    assert_eq!(claims_of(&new_token)["sub"], "new-holder");
    let old_holder = node.client_as(Some(&old_token)).await.unwrap();
    old_holder
        .set(key!["users", 3], "old secret, still listed")
        .await
        .unwrap();
    let new_holder = node.client_as(Some(&new_token)).await.unwrap();
    new_holder.set(key!["users", 4], "new secret").await.unwrap();

    // The old secret is removed: its tokens stop working, the new ones keep working.
    secret_file(&dir.path().join("secrets"), &[NEW, KEEP]).unwrap();
    cluster.restart(1).unwrap();
    let node = cluster.node(1);
    let old_holder = node.client_as(Some(&old_token)).await.unwrap();
    let (code, message) = refusal(old_holder.set(key!["users", 5], "rotated out").await);
    assert_eq!(code, ErrorCode::Unauthenticated, "{message}");
    assert!(message.contains("old"), "names the key id: {message}");
    let new_holder = node.client_as(Some(&new_token)).await.unwrap();
    new_holder.set(key!["users", 6], "new secret").await.unwrap();
    let admin = node.client().await.unwrap();
    assert!(admin.get(key!["users", 5]).await.unwrap().is_none());
    assert!(admin.get(key!["users", 6]).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_limit_keys_and_admin_operations() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = secure_node(dir.path(), &[KEEP]);
    let node = cluster.node(1);
    let admin = node.client().await.unwrap();
    admin.set(key!["users", 1], "original").await.unwrap();
    admin.set(key!["orders", 1], "order").await.unwrap();
    let secrets = dir.path().join("secrets");
    let users = r#"["users"]"#;

    let alice_token = token(
        &secrets,
        &TokenSpec {
            subject: "alice",
            prefixes: &[users],
            read: true,
            write: true,
            ttl: "1h",
            ..TokenSpec::default()
        },
    )
    .unwrap();
    let alice = node.client_as(Some(&alice_token)).await.unwrap();

    // Inside the prefix: reads, lists and writes work.
    alice.set(key!["users", 2], "by alice").await.unwrap();
    assert!(alice.get(key!["users", 1]).await.unwrap().is_some());
    let listed: Vec<_> = alice
        .list(Selector::prefix(key!["users"]))
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);

    // Outside it: a get, a get-many with one key outside, a list of everything, and a list
    // that starts inside the prefix and runs out of it.
    let (code, message) = refusal(alice.get(key!["orders", 1]).await);
    assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
    assert!(message.contains("alice") && message.contains("orders"), "{message}");
    let many = alice
        .get_many([key!["users", 1], key!["orders", 1]], Consistency::Eventual)
        .await;
    assert_eq!(code_of(many), ErrorCode::PermissionDenied);
    let everything = alice
        .list(Selector::prefix(key![]))
        .stream()
        .try_collect::<Vec<_>>()
        .await;
    assert_eq!(code_of(everything), ErrorCode::PermissionDenied);
    let running_out = alice
        .list(Selector::range(key!["users", 1], key!["v"]))
        .stream()
        .try_collect::<Vec<_>>()
        .await;
    assert_eq!(code_of(running_out), ErrorCode::PermissionDenied);

    // An atomic write with one mutation, or one check, outside the prefix is refused whole.
    let mixed = alice
        .atomic()
        .set(key!["users", 3], "inside")
        .set(key!["orders", 2], "outside")
        .commit()
        .await;
    assert_eq!(code_of(mixed), ErrorCode::PermissionDenied);
    let checked = alice
        .atomic()
        .check(key!["orders", 1], None)
        .set(key!["users", 3], "inside")
        .commit()
        .await;
    assert_eq!(code_of(checked), ErrorCode::PermissionDenied);
    let wide_delete = alice.atomic().delete_prefix(key![]).commit().await;
    assert_eq!(code_of(wide_delete), ErrorCode::PermissionDenied);
    assert!(
        admin.get(key!["users", 3]).await.unwrap().is_none(),
        "nothing of it landed"
    );
    assert!(admin.get(key!["orders", 2]).await.unwrap().is_none());
    assert!(admin.get(key!["orders", 1]).await.unwrap().is_some());

    // A read-only token cannot write, even inside its prefix.
    let bob_token = token(
        &secrets,
        &TokenSpec {
            subject: "bob",
            prefixes: &[users],
            read: true,
            ttl: "1h",
            ..TokenSpec::default()
        },
    )
    .unwrap();
    let bob = node.client_as(Some(&bob_token)).await.unwrap();
    assert!(bob.get(key!["users", 1]).await.unwrap().is_some());
    let (code, message) = refusal(bob.set(key!["users", 1], "by bob").await);
    assert_eq!(code, ErrorCode::PermissionDenied, "{message}");
    assert!(message.contains("bob"), "{message}");
    assert_eq!(code_of(bob.delete(key!["users", 1]).await), ErrorCode::PermissionDenied);
    assert_eq!(
        code_of(bob.atomic().delete_prefix(key!["users"]).commit().await),
        ErrorCode::PermissionDenied
    );
    let kept = admin
        .get(key!["users", 1])
        .consistency(Consistency::Strong)
        .await
        .unwrap();
    assert_eq!(
        kept.unwrap().value.as_ref().and_then(edgekv_client::Value::as_str),
        Some("original")
    );

    // Admin operations need an admin token: membership, classes, faults, full-scan status.
    let mut alice_admin = node.admin_as(Some(&alice_token)).await.unwrap();
    let add = alice_admin
        .add_member(pb::AddMemberRequest {
            id: 9,
            region: "eu-west".into(),
            peer_addr: "127.0.0.1:1".into(),
            learner: true,
        })
        .await
        .unwrap_err();
    assert_eq!(add.code(), tonic::Code::PermissionDenied, "{add:?}");
    assert!(add.message().contains("alice"), "{}", add.message());
    let class = alice_admin
        .set_keyspace_class(pb::SetKeyspaceClassRequest {
            prefix: key!["users"].encode(),
            class: "cache".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(class.code(), tonic::Code::PermissionDenied);
    let fault = alice_admin
        .inject_fault(pb::InjectFaultRequest {
            fault: Some(pb::inject_fault_request::Fault::Heal(pb::Heal {})),
        })
        .await
        .unwrap_err();
    assert_eq!(fault.code(), tonic::Code::PermissionDenied);
    assert_eq!(code_of(alice.status().await), ErrorCode::PermissionDenied);
    // The cluster's shape is for any holder of a valid token.
    let shape = alice.cluster_status().await.unwrap();
    assert_eq!(shape.members.len(), 1);

    let status = cluster.status(1).await.unwrap();
    let members: Vec<u64> = status.members.iter().map(|m| m.id).collect();
    assert_eq!(members, vec![1], "no member was added");
    let rules = node
        .admin()
        .await
        .unwrap()
        .list_keyspace(pb::ListKeyspaceRequest {})
        .await
        .unwrap();
    assert!(
        rules
            .into_inner()
            .rules
            .iter()
            .all(|r| r.prefix != key!["users"].encode()),
        "no class rule was set"
    );
    assert!(admin.status().await.is_ok(), "the admin token may read the full status");
}
