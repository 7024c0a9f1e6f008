//! `kvctl` against a real node: output formats, exit codes, key syntax.

use edgekv_tests::{Node, binary, kvctl, stderr, stdout};
use serde_json::{Value as Json, json};

/// The one JSON document a successful kvctl run printed; fails on none, on several (JSON
/// lines) and on anything after it.
fn one_document(args: &[&str], output: &std::process::Output) -> Json {
    assert!(output.status.success(), "kvctl {args:?}: {}", stderr(output));
    let text = stdout(output);
    let mut documents = serde_json::Deserializer::from_str(&text).into_iter::<Json>();
    let document = documents
        .next()
        .unwrap_or_else(|| panic!("kvctl {args:?} printed no JSON: {text:?}"))
        .unwrap_or_else(|e| panic!("kvctl {args:?} printed no JSON ({e}): {text}"));
    assert!(
        documents.next().is_none(),
        "kvctl {args:?} printed more than one JSON document: {text}"
    );
    document
}

/// Runs `kvctl ARGS -o json` and returns the one document it printed.
fn kvctl_json(endpoint: &str, args: &[&str]) -> Json {
    one_document(args, &kvctl(endpoint, &[args, &["-o", "json"][..]].concat()))
}

#[test]
fn put_get_list_delete_sum_status() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();

    let put = kvctl(
        ep,
        &[
            "put",
            "users/42",
            "ada",
            "--ttl",
            "1h",
            "--metadata",
            r#"{"plan":"pro"}"#,
        ],
    );
    assert!(put.status.success(), "{}", stderr(&put));
    let put = kvctl(ep, &["put", r#"["users", 43]"#, "bob"]);
    assert!(put.status.success(), "{}", stderr(&put));

    let get = kvctl(ep, &["get", "users/42", "-o", "json"]);
    assert!(get.status.success(), "{}", stderr(&get));
    let json: serde_json::Value = serde_json::from_str(&stdout(&get)).unwrap();
    assert_eq!(json["key"], serde_json::json!(["users", "42"]));
    assert_eq!(json["value"], "ada");
    assert_eq!(json["versionstamp"].as_str().unwrap().len(), 20);
    assert!(json["expires_at"].as_u64().unwrap() > 0);
    assert_eq!(json["metadata"], serde_json::json!({"plan": "pro"}));

    let eventual = kvctl(
        ep,
        &["get", r#"["users", 43]"#, "--consistency", "eventual", "-o", "json"],
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&eventual)).unwrap();
    assert_eq!(json["value"], "bob");
    assert_eq!(json["expires_at"], serde_json::Value::Null);
    assert_eq!(json["served_by"]["consistency"], "eventual");

    let list = kvctl_json(ep, &["list", "--prefix", "users"]);
    let lines = list.as_array().expect("list -o json prints one array");
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["key"],
        serde_json::json!(["users", "42"]),
        "string parts sort before integers"
    );
    let list = kvctl(
        ep,
        &["list", "--prefix", "users", "--reverse", "--limit", "1", "--keys-only"],
    );
    let table = stdout(&list);
    assert!(table.contains(r#"["users",43]"#) && !table.contains("ada"), "{table}");

    for _ in 0..3 {
        assert!(kvctl(ep, &["sum", "counters/visits", "5"]).status.success());
    }
    let counter = kvctl(ep, &["get", "counters/visits", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&counter)).unwrap();
    assert_eq!(json["value"], 15);
    assert_eq!(json["encoding"], "u64");

    assert!(kvctl(ep, &["delete", "users/42"]).status.success());
    let missing = kvctl(ep, &["get", "users/42"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not found"), "{}", stderr(&missing));

    let status = kvctl(ep, &["status", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).unwrap();
    assert_eq!(json["node_id"], "1");
    assert_eq!(json["region"], "local");
    assert_eq!(json["key_count"], 2);
    assert!(json["data_dir_bytes"].as_u64().unwrap() > 0);
    assert!(!json["version"].as_str().unwrap().is_empty());
}

#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();

    let unknown_flag = kvctl(ep, &["get", "k", "--bogus"]);
    assert_eq!(unknown_flag.status.code(), Some(2));
    let bad_key = kvctl(ep, &["get", "[1, "]);
    assert_eq!(bad_key.status.code(), Some(2));
    assert!(stderr(&bad_key).contains("cannot parse key"), "{}", stderr(&bad_key));
    let bad_ttl = kvctl(ep, &["put", "k", "v", "--ttl", "soon"]);
    assert_eq!(bad_ttl.status.code(), Some(2));

    let long_key = "k".repeat(3000);
    let too_large = kvctl(ep, &["put", &long_key, "v"]);
    assert_eq!(too_large.status.code(), Some(3));
    assert!(stderr(&too_large).contains("KEY_TOO_LARGE"), "{}", stderr(&too_large));
    let bad_metadata = kvctl(ep, &["put", "k", "v", "--metadata", "{nope"]);
    assert_eq!(bad_metadata.status.code(), Some(2));

    // Nothing listens on port 1: a clear UNAVAILABLE, not a hang or a panic.
    let down = kvctl("http://127.0.0.1:1", &["get", "k"]);
    assert_eq!(down.status.code(), Some(3));
    assert!(stderr(&down).contains("UNAVAILABLE"), "{}", stderr(&down));
}

#[test]
fn endpoint_flag_beats_environment() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    // The environment names a dead endpoint; the flag names the node and must win.
    let output = std::process::Command::new(binary("kvctl"))
        .args(["--endpoint", &node.endpoint, "status"])
        .env("EDGEKV_ENDPOINT", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // And the environment is used when there is no flag.
    let output = std::process::Command::new(binary("kvctl"))
        .args(["status", "-o", "json"])
        .env("EDGEKV_ENDPOINT", &node.endpoint)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn ttl_through_kvctl() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();
    assert!(
        kvctl(ep, &["put", "session/1", "token", "--ttl", "300ms"])
            .status
            .success()
    );
    let get = kvctl(ep, &["get", "session/1", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&get)).unwrap();
    let expires_at = json["expires_at"].as_u64().unwrap();
    // Real time on a real process: wait for the expiry, bounded; never a speed assertion.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Taken before the read: the server read the key after this instant, so a value
        // returned must not have expired by then.
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let get = kvctl(ep, &["get", "session/1"]);
        match get.status.code() {
            Some(1) => break,
            Some(0) => assert!(before < expires_at, "kvctl returned an expired value"),
            other => panic!("unexpected exit {other:?}: {}", stderr(&get)),
        }
        assert!(std::time::Instant::now() < deadline, "the key never expired");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let list = kvctl(ep, &["list", "--prefix", "session", "-o", "json"]);
    assert!(list.status.success());
    assert_eq!(stdout(&list).trim_end(), "[]", "an empty listing is an empty array");
}

#[test]
fn keyspace_classes_and_sets_on_cache_keys() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();
    let ok = |args: &[&str]| {
        let output = kvctl(ep, args);
        assert!(output.status.success(), "kvctl {args:?}: {}", stderr(&output));
        stdout(&output)
    };

    ok(&["put", "accounts/1", "strong data"]);
    let refused = kvctl(ep, &["keyspace", "set-class", "accounts", "cache"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(stderr(&refused).contains("KEYSPACE_NOT_EMPTY"), "{}", stderr(&refused));
    let usage = kvctl(ep, &["keyspace", "set-class", "sessions", "eventual"]);
    assert_eq!(usage.status.code(), Some(2), "an unknown class is a usage error");

    let table = ok(&["keyspace", "set-class", "sessions", "cache"]);
    assert!(table.contains(r#"["sessions"]"#) && table.contains("cache"), "{table}");
    let listed: serde_json::Value = serde_json::from_str(&ok(&["keyspace", "list", "-o", "json"])).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([
            { "prefix": [], "class": "strong" },
            { "prefix": ["sessions"], "class": "cache" },
        ]),
        "the default is the rule of the empty prefix"
    );

    ok(&["put", "sessions/abc", "cached"]);
    let get: serde_json::Value = serde_json::from_str(&ok(&["get", "sessions/abc", "-o", "json"])).unwrap();
    assert_eq!(get["class"], "cache");
    assert_eq!(get["value"], "cached");
    let get: serde_json::Value = serde_json::from_str(&ok(&["get", "accounts/1", "-o", "json"])).unwrap();
    assert_eq!(get["class"], "strong");

    ok(&["sadd", "sessions/tags", "b", "a", "c"]);
    ok(&["srem", "sessions/tags", "c"]);
    assert_eq!(ok(&["smembers", "sessions/tags"]), "a\nb\n");
    let members: serde_json::Value = serde_json::from_str(&ok(&["smembers", "sessions/tags", "-o", "json"])).unwrap();
    assert_eq!(members, serde_json::json!(["a", "b"]));
    let on_value = kvctl(ep, &["sadd", "sessions/abc", "x"]);
    assert!(stderr(&on_value).contains("TYPE_MISMATCH"), "{}", stderr(&on_value));
    let on_strong = kvctl(ep, &["sadd", "accounts/2", "x"]);
    assert!(
        stderr(&on_strong).contains("INVALID_ARGUMENT"),
        "{}",
        stderr(&on_strong)
    );

    // The default cannot turn strong data into cache data; pinning its prefix first can.
    let refused = kvctl(ep, &["keyspace", "set-default", "cache"]);
    assert!(stderr(&refused).contains("KEYSPACE_NOT_EMPTY"), "{}", stderr(&refused));
    ok(&["keyspace", "set-class", "accounts", "strong"]);
    ok(&["keyspace", "set-default", "cache"]);
    let listed: serde_json::Value = serde_json::from_str(&ok(&["keyspace", "list", "-o", "json"])).unwrap();
    assert_eq!(listed[0], serde_json::json!({ "prefix": [], "class": "cache" }));
    let get: serde_json::Value = serde_json::from_str(&ok(&["get", "accounts/1", "-o", "json"])).unwrap();
    assert_eq!(get["class"], "strong");
    assert_eq!(get["value"], "strong data");
    ok(&["put", "other", "x"]);
    let get: serde_json::Value = serde_json::from_str(&ok(&["get", "other", "-o", "json"])).unwrap();
    assert_eq!(get["class"], "cache", "unmatched keys now take the default");
}

/// One rule for `-o json`: every command prints exactly one JSON document, an array when it
/// prints a collection and an object otherwise; no command prints JSON lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_one_document_and_collections_are_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("data")).unwrap();
    let ep = node.endpoint.as_str();

    // Rule changes print the resulting rules, the same array `keyspace list` prints.
    let rules = kvctl_json(ep, &["keyspace", "set-class", "sessions", "cache"]);
    assert_eq!(
        rules,
        json!([
            { "prefix": [], "class": "strong" },
            { "prefix": ["sessions"], "class": "cache" },
        ])
    );
    let rules = kvctl_json(ep, &["keyspace", "set-class", "sessions/pinned", "strong"]);
    assert_eq!(rules.as_array().map(Vec::len), Some(3), "{rules}");
    assert_eq!(kvctl_json(ep, &["keyspace", "list"]), rules);

    // One thing: one object.
    for (key, value) in [
        ("accounts/1", "a"),
        ("accounts/2", "b"),
        ("sessions/a", "x"),
        ("sessions/pinned/1", "p"),
    ] {
        let put = kvctl_json(ep, &["put", key, value]);
        assert!(put.is_object() && put["versionstamp"].is_string(), "{put}");
    }
    let sadd = kvctl_json(ep, &["sadd", "sessions/tags", "t2", "t1"]);
    assert!(sadd.is_object(), "{sadd}");
    let sum = kvctl_json(ep, &["sum", "counters/n", "2"]);
    assert!(sum.is_object() && sum["value"] == 2, "{sum}");
    let get = kvctl_json(ep, &["get", "sessions/a"]);
    assert!(get.is_object() && get["class"] == "cache", "{get}");
    for args in [&["status"][..], &["cluster", "status"]] {
        let answer = kvctl_json(ep, args);
        assert!(answer.is_object(), "kvctl {args:?}: {answer}");
    }
    let delete = kvctl_json(ep, &["delete", "accounts/2"]);
    assert!(delete.is_object(), "{delete}");

    // Collections: one array.
    assert_eq!(kvctl_json(ep, &["smembers", "sessions/tags"]), json!(["t1", "t2"]));
    let members = kvctl_json(ep, &["member", "list"]);
    assert_eq!(members.as_array().map(Vec::len), Some(1), "{members}");

    // `list` shows each entry's real class, as `get` does: the longest rule prefix decides.
    let class_of = |key: &Json| match (&key[0], &key[1]) {
        (Json::String(first), Json::String(second)) if first == "sessions" && second == "pinned" => "strong",
        (Json::String(first), _) if first == "sessions" => "cache",
        _ => "strong",
    };
    let everything = kvctl_json(ep, &["list"]);
    let entries = everything.as_array().expect("list -o json prints one array");
    let keys: Vec<&Json> = entries.iter().map(|e| &e["key"]).collect();
    assert_eq!(
        keys,
        [
            &json!(["accounts", "1"]),
            &json!(["counters", "n"]),
            &json!(["sessions", "a"]),
            &json!(["sessions", "pinned", "1"]),
            &json!(["sessions", "tags"]),
        ],
        "{everything}"
    );
    for entry in entries {
        assert_eq!(entry["class"], class_of(&entry["key"]), "{entry}");
    }
    for args in [
        &["list", "--prefix", "sessions"][..],
        &["list", "--prefix", "sessions", "--keys-only"],
        &["list", "--prefix", "sessions", "--consistency", "eventual"],
        &["list", "--prefix", "accounts", "--reverse"],
        &["list", "--start", "accounts", "--end", "sessions/b"],
    ] {
        let listed = kvctl_json(ep, args);
        let entries = listed.as_array().unwrap_or_else(|| panic!("kvctl {args:?}: {listed}"));
        assert!(!entries.is_empty(), "kvctl {args:?}: {listed}");
        for entry in entries {
            assert_eq!(entry["class"], class_of(&entry["key"]), "kvctl {args:?}: {entry}");
        }
    }
    assert_eq!(kvctl_json(ep, &["list", "--prefix", "nothing"]), json!([]));

    // A listing longer than one page (kvctl asks for 500 at a time) is still one array,
    // in key order, with every entry once.
    let client = edgekv_client::Client::connect(ep.to_string()).await.unwrap();
    for batch in [0..600_i64, 600..1100] {
        let mut atomic = client.atomic();
        for i in batch {
            atomic = atomic.set(edgekv_client::key!["bulk", i], format!("v{i}"));
        }
        atomic.commit().await.unwrap();
    }
    let bulk = kvctl_json(ep, &["list", "--prefix", "bulk"]);
    let entries = bulk.as_array().expect("one array");
    assert_eq!(entries.len(), 1100);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["key"], json!(["bulk", i]));
        assert_eq!(entry["class"], "strong");
    }
    let limited = kvctl_json(ep, &["list", "--prefix", "bulk", "--limit", "700", "--reverse"]);
    let entries = limited.as_array().expect("one array");
    assert_eq!(entries.len(), 700);
    assert_eq!(entries[0]["key"], json!(["bulk", 1099]));
}
