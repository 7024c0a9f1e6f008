//! Tests of the token format: signing and verifying (expiry, wrong and rotated secrets,
//! tampering, algorithms), the secrets list, scope checks, and properties (arbitrary input
//! never panics; scope containment agrees with tuple-key order).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use num_bigint::BigInt;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::key;
use crate::key::{Key, KeyPart};

const SECRET_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const NOW: u64 = 1_700_000_000;

fn secrets(text: &str) -> Secrets {
    Secrets::parse(text).expect("valid secrets")
}

fn claims(scope: Vec<ScopeClaim>) -> Claims {
    Claims {
        sub: "alice".into(),
        exp: NOW + 3600,
        iat: NOW,
        scope,
        admin: false,
    }
}

fn scope(prefix: serde_json::Value, read: bool, write: bool) -> ScopeClaim {
    ScopeClaim { prefix, read, write }
}

fn users_read_write() -> Claims {
    claims(vec![scope(json!(["users"]), true, true)])
}

/// A token with any header and claims, signed with `secret` (HS256 over the given parts),
/// bypassing [`sign`]'s checks.
fn raw_token(header: &serde_json::Value, payload: &serde_json::Value, secret: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .expect("HMAC signing");
    format!("{message}.{signature}")
}

#[test]
fn a_signed_token_verifies_and_grants_its_claims() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let token = sign(&users_read_write(), &keys).unwrap();
    let grant = verify(&token, &keys, NOW).unwrap();
    assert_eq!(grant.subject(), "alice");
    assert!(!grant.is_admin());
    assert_eq!(grant.expires_at(), NOW + 3600);
    assert_eq!(grant.claims(), &users_read_write());
    assert!(grant.can_read(&key!["users", 1].encode()));
    assert!(!grant.can_read(&key!["orders", 1].encode()));
    let unverified = decode_unverified(&token).unwrap();
    assert_eq!(unverified.algorithm, "HS256");
    assert_eq!(unverified.key_id.as_deref(), Some("k1"));
    assert_eq!(unverified.claims, users_read_write());
}

#[test]
fn expiry_is_exclusive_and_has_no_leeway() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let token = sign(&users_read_write(), &keys).unwrap();
    assert!(verify(&token, &keys, NOW + 3599).is_ok());
    let expired = verify(&token, &keys, NOW + 3600).unwrap_err();
    assert_eq!(
        expired,
        TokenError::Expired {
            exp: NOW + 3600,
            now: NOW + 3600
        }
    );
    assert_eq!(expired.kind(), TokenErrorKind::Expired);
    // An expired token still reads back for a person.
    assert!(decode_unverified(&token).is_ok());
}

#[test]
fn not_before_is_honoured() {
    let payload = json!({"sub": "alice", "exp": NOW + 100, "nbf": NOW + 10});
    let token = raw_token(&json!({"alg": "HS256", "kid": "k1"}), &payload, SECRET_A);
    let keys = secrets(&format!("k1 {SECRET_A}"));
    assert_eq!(
        verify(&token, &keys, NOW).unwrap_err(),
        TokenError::NotYetValid {
            nbf: NOW + 10,
            now: NOW
        }
    );
    assert!(verify(&token, &keys, NOW + 10).is_ok());
}

#[test]
fn a_wrong_secret_is_a_bad_signature() {
    let token = sign(&users_read_write(), &secrets(&format!("k1 {SECRET_A}"))).unwrap();
    let error = verify(&token, &secrets(&format!("k1 {SECRET_B}")), NOW).unwrap_err();
    assert_eq!(error, TokenError::BadSignature);
    assert_eq!(error.kind(), TokenErrorKind::BadSignature);
}

#[test]
fn tampered_claims_are_a_bad_signature() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let token = sign(&users_read_write(), &keys).unwrap();
    let [header, _, signature] = split(&token).unwrap();
    let mut forged = users_read_write();
    forged.admin = true;
    forged.scope = vec![scope(json!([]), true, true)];
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    let tampered = format!("{header}.{payload}.{signature}");
    assert_eq!(verify(&tampered, &keys, NOW).unwrap_err(), TokenError::BadSignature);
    // A flipped signature character is caught as well.
    let mut bad_signature = token.clone();
    let last = bad_signature.pop().unwrap();
    bad_signature.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        verify(&bad_signature, &keys, NOW).unwrap_err(),
        TokenError::BadSignature
    );
}

#[test]
fn rotated_secrets_verify_while_listed() {
    let old = secrets(&format!("old {SECRET_A}"));
    let old_token = sign(&users_read_write(), &old).unwrap();
    // Rotation: the new secret signs, the old one still verifies.
    let rotated = secrets(&format!("# new first\nnew {SECRET_B}\nold {SECRET_A}\n"));
    assert_eq!(rotated.signing_key_id(), "new");
    assert_eq!(rotated.key_ids().collect::<Vec<_>>(), ["new", "old"]);
    assert!(verify(&old_token, &rotated, NOW).is_ok());
    let new_token = sign(&users_read_write(), &rotated).unwrap();
    assert_eq!(decode_unverified(&new_token).unwrap().key_id.as_deref(), Some("new"));
    // Once the old secret is removed, its tokens are refused; the new ones still verify.
    let retired = secrets(&format!("new {SECRET_B}"));
    let error = verify(&old_token, &retired, NOW).unwrap_err();
    assert_eq!(error, TokenError::UnknownKey { kid: "old".into() });
    assert_eq!(error.kind(), TokenErrorKind::BadSignature);
    assert!(verify(&new_token, &retired, NOW).is_ok());
}

#[test]
fn only_hs256_is_accepted() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let payload = serde_json::to_value(users_read_write()).unwrap();
    // `alg: none` with an empty signature: the classic forgery.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": "k1"}).to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let error = verify(&unsigned, &keys, NOW).unwrap_err();
    assert_eq!(error, TokenError::UnsupportedAlgorithm { alg: "none".into() });
    assert_eq!(error.kind(), TokenErrorKind::Malformed);
    // Another HMAC with the same secret is refused too.
    let mut header = Header::new(Algorithm::HS512);
    header.kid = Some("k1".into());
    let hs512 = jsonwebtoken::encode(&header, &payload, &EncodingKey::from_secret(SECRET_A.as_bytes())).unwrap();
    assert_eq!(
        verify(&hs512, &keys, NOW).unwrap_err(),
        TokenError::UnsupportedAlgorithm { alg: "HS512".into() }
    );
}

#[test]
fn malformed_tokens_say_so() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let header = json!({"alg": "HS256", "kid": "k1"});
    let malformed = |token: &str| {
        let error = verify(token, &keys, NOW).unwrap_err();
        assert_eq!(error.kind(), TokenErrorKind::Malformed, "{token}: {error}");
    };
    assert_eq!(verify("", &keys, NOW).unwrap_err(), TokenError::Missing);
    malformed("abc");
    malformed("a.b");
    malformed("a.b.c.d");
    malformed("!!!.###.$$$");
    malformed(&"x".repeat(MAX_TOKEN_LEN + 1));
    malformed(&raw_token(&header, &json!({"sub": "alice"}), SECRET_A));
    malformed(&raw_token(&header, &json!({"exp": NOW + 10}), SECRET_A));
    malformed(&raw_token(&header, &json!({"sub": "", "exp": NOW + 10}), SECRET_A));
    malformed(&raw_token(&header, &json!({"sub": "a", "exp": -1}), SECRET_A));
    malformed(&raw_token(&header, &json!([1, 2]), SECRET_A));
    malformed(&raw_token(
        &json!({"alg": "HS256"}),
        &json!({"sub": "a", "exp": NOW + 10}),
        SECRET_A,
    ));
    malformed(&raw_token(
        &json!({"alg": "HS256", "kid": "k1", "crit": ["exp"]}),
        &json!({"sub": "a", "exp": NOW + 10}),
        SECRET_A,
    ));
    let bad_prefix = json!({"sub": "a", "exp": NOW + 10, "scope": [{"prefix": "users", "read": true}]});
    assert!(matches!(
        verify(&raw_token(&header, &bad_prefix, SECRET_A), &keys, NOW),
        Err(TokenError::InvalidScope { index: 0, .. })
    ));
    // A prefix with an integer too large for the tuple encoding is refused, not a panic.
    let huge = json!({"bigint": "9".repeat(700)});
    let unencodable = json!({"sub": "a", "exp": NOW + 10, "scope": [{"prefix": [huge], "read": true}]});
    assert!(matches!(
        verify(&raw_token(&header, &unencodable, SECRET_A), &keys, NOW),
        Err(TokenError::InvalidScope { index: 0, .. })
    ));
}

#[test]
fn sign_refuses_claims_the_node_would_refuse() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let bad = claims(vec![
        scope(json!(["ok"]), true, false),
        scope(json!([{"nope": 1}]), true, false),
    ]);
    assert!(matches!(
        sign(&bad, &keys),
        Err(TokenError::InvalidScope { index: 1, .. })
    ));
    let mut nobody = users_read_write();
    nobody.sub.clear();
    assert!(matches!(sign(&nobody, &keys), Err(TokenError::Malformed(_))));
}

#[test]
fn optional_claims_default() {
    let keys = secrets(&format!("k1 {SECRET_A}"));
    let token = raw_token(
        &json!({"alg": "HS256", "kid": "k1", "typ": "JWT"}),
        &json!({"sub": "svc", "exp": NOW + 10, "aud": "x"}),
        SECRET_A,
    );
    let grant = verify(&token, &keys, NOW).unwrap();
    assert_eq!(grant.claims().iat, 0);
    assert!(grant.claims().scope.is_empty() && !grant.is_admin());
    assert!(!grant.can_read(&key!["a"].encode()));
}

#[test]
fn secrets_list_format() {
    let keys = secrets(&format!(
        "\n  # comment\n k1   {SECRET_A}  \n\n\tk.2_x-y\t{SECRET_B}#hash\n"
    ));
    assert_eq!(keys.key_ids().collect::<Vec<_>>(), ["k1", "k.2_x-y"]);
    assert_eq!(keys.secret("k.2_x-y"), Some(format!("{SECRET_B}#hash").as_bytes()));
    let debug = format!("{keys:?}");
    assert!(debug.contains("k1") && !debug.contains(SECRET_A), "{debug}");

    let refused = |text: &str, line: usize| {
        let error = Secrets::parse(text).unwrap_err();
        assert!(
            matches!(&error, TokenError::SecretLine { line: l, .. } if *l == line),
            "{text:?}: {error}"
        );
        assert_eq!(error.kind(), TokenErrorKind::Configuration);
        error.to_string()
    };
    let short = refused("# c\nk1 tooshortsecret\n", 2);
    assert!(
        !short.contains("tooshortsecret") && short.contains("14 bytes"),
        "{short}"
    );
    let lone = refused(&format!("\n{SECRET_A}"), 2);
    assert!(!lone.contains(SECRET_A), "{lone}");
    let three = refused(&format!("k1 {SECRET_A} extra"), 1);
    assert!(!three.contains(SECRET_A), "{three}");
    refused(&format!("k1 {SECRET_A}\nk1 {SECRET_B}"), 2);
    let swapped = refused(&format!("{SECRET_A}/+ k1"), 1);
    assert!(!swapped.contains(SECRET_A), "{swapped}");
    refused(&format!("{} {SECRET_A}", "k".repeat(65)), 1);
    assert_eq!(
        Secrets::parse("# only comments\n\n").unwrap_err(),
        TokenError::NoSecrets
    );
}

#[test]
fn scopes_cover_the_prefix_key_and_its_descendants() {
    let grant = Grant::from_claims(claims(vec![
        scope(json!(["users"]), true, false),
        scope(json!(["users", "alice"]), true, true),
        scope(json!(["logs"]), false, true),
    ]))
    .unwrap();
    let enc = |k: Key| k.encode();
    assert!(grant.can_read(&enc(key!["users"])));
    assert!(grant.can_read(&enc(key!["users", 42, "x"])));
    assert!(!grant.can_read(&enc(key!["usersx"])));
    assert!(
        !grant.can_read(&enc(key!["users\0"])),
        "a longer string part is a sibling"
    );
    assert!(!grant.can_read(&enc(key!["user"])));
    assert!(!grant.can_write(&enc(key!["users", "bob"])));
    assert!(grant.can_write(&enc(key!["users", "alice", 1])));
    assert!(grant.can_write(&enc(key!["logs", 1])) && !grant.can_read(&enc(key!["logs", 1])));

    let users = enc(key!["users"]);
    // The prefix selector of the scope and of anything under it.
    assert!(grant.can_read_range(&Key::prefix_start(&users), &Key::prefix_end(&users)));
    let alice = enc(key!["users", "alice"]);
    assert!(grant.can_write_range(&Key::prefix_start(&alice), &Key::prefix_end(&alice)));
    assert!(!grant.can_write_range(&Key::prefix_start(&users), &Key::prefix_end(&users)));
    assert!(grant.can_read_range(&enc(key!["users", 1]), &enc(key!["users", 9])));
    // A list that starts inside the scope and runs out of it.
    assert!(!grant.can_read_range(&enc(key!["users", 1]), &enc(key!["v"])));
    assert!(!grant.can_read_range(&enc(key!["users", 1]), &Key::prefix_successor(&users).unwrap()));
    // Everything, and a range that starts before the scope.
    assert!(!grant.can_read_range(&Key::prefix_start(&[]), &Key::prefix_end(&[])));
    assert!(!grant.can_read_range(&enc(key!["a"]), &enc(key!["users", 1])));
}

#[test]
fn the_empty_prefix_covers_everything() {
    let grant = Grant::from_claims(claims(vec![scope(json!([]), true, false)])).unwrap();
    for key in [vec![], vec![0xff, 0xff], key!["anything", 1].encode()] {
        assert!(grant.can_read(&key) && !grant.can_write(&key));
    }
    assert!(grant.can_read_range(&Key::prefix_start(&[]), &Key::prefix_end(&[])));
    assert!(grant.can_read_range(&[], &[0xff, 0xff, 0xff]));
}

// Parts drawn from small sets, so that prefixes, siblings and look-alikes (`"a"` and
// `"a\0"`, `b"\0"` and `b"\0\xff"`) meet often.
fn part() -> impl Strategy<Value = KeyPart> {
    prop_oneof![
        "[a\u{0}b]{0,2}".prop_map(KeyPart::String),
        proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xff)], 0..3).prop_map(KeyPart::Bytes),
        (-2i64..3).prop_map(|i| KeyPart::Int(BigInt::from(i))),
        prop_oneof![Just(0.5f64), Just(-1.0), Just(0.0), any::<f64>()].prop_map(KeyPart::Float),
        any::<bool>().prop_map(|b| if b { KeyPart::True } else { KeyPart::False }),
    ]
}

fn parts(range: std::ops::Range<usize>) -> impl Strategy<Value = Vec<KeyPart>> {
    proptest::collection::vec(part(), range)
}

/// A key that is often under `prefix`.
fn key_near(prefix: Vec<KeyPart>) -> impl Strategy<Value = Key> {
    prop_oneof![
        parts(1..4).prop_map(Key),
        parts(0..3).prop_map(move |suffix| Key([prefix.clone(), suffix].concat())),
    ]
}

/// A prefix and two keys near it.
fn prefix_and_keys() -> impl Strategy<Value = (Key, Key, Key)> {
    parts(0..3).prop_flat_map(|prefix| (Just(Key(prefix.clone())), key_near(prefix.clone()), key_near(prefix)))
}

/// The model: `key` is the prefix or a key under it, part by part.
fn under(prefix: &Key, key: &Key) -> bool {
    key.parts().starts_with(prefix.parts())
}

fn read_grant(prefixes: &[&Key]) -> Grant {
    Grant::from_claims(claims(
        prefixes
            .iter()
            .map(|prefix| scope(prefix.to_json(), true, false))
            .collect(),
    ))
    .expect("valid prefixes")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let keys = secrets(&format!("k1 {SECRET_A}"));
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&text, &keys, NOW).is_err());
        let _ = decode_unverified(&text);
    }

    #[test]
    fn verify_never_panics_on_arbitrary_strings(text in "\\PC{0,200}") {
        let keys = secrets(&format!("k1 {SECRET_A}"));
        prop_assert!(verify(&text, &keys, NOW).is_err());
        let _ = decode_unverified(&text);
    }

    #[test]
    fn verify_never_panics_on_arbitrary_parts(
        header in "\\PC{0,60}",
        payload in "\\PC{0,120}",
        signature in "[A-Za-z0-9_-]{0,50}",
    ) {
        let keys = secrets(&format!("k1 {SECRET_A}"));
        let token = format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(&header),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        prop_assert!(verify(&token, &keys, NOW).is_err());
        let _ = decode_unverified(&token);
    }

    #[test]
    fn any_claims_json_signed_never_panics(payload in "\\PC{0,120}") {
        // Correctly signed, arbitrary claims text: parsing is all that stands in the way.
        let keys = secrets(&format!("k1 {SECRET_A}"));
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k1"}).to_string()),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET_A.as_bytes()),
            Algorithm::HS256,
        ).unwrap();
        let _ = verify(&format!("{message}.{signature}"), &keys, NOW);
    }

    #[test]
    fn parsing_secrets_never_panics(text in "\\PC{0,300}") {
        if let Ok(parsed) = Secrets::parse(&text) {
            prop_assert!(parsed.key_ids().all(is_valid_key_id_for_test));
        }
    }

    #[test]
    fn parsing_secret_lines_never_panics(lines in proptest::collection::vec("[#a-z0-9 \t]{0,50}", 0..6)) {
        let _ = Secrets::parse(&lines.join("\n"));
    }

    #[test]
    fn key_containment_agrees_with_tuple_prefixes((prefix, key, _) in prefix_and_keys()) {
        let grant = read_grant(&[&prefix]);
        prop_assert_eq!(grant.can_read(&key.encode()), under(&prefix, &key), "prefix {} key {}", prefix, key);
        prop_assert!(!grant.can_write(&key.encode()));
    }

    #[test]
    fn range_containment_agrees_with_both_ends(
        (first, a, b) in prefix_and_keys(),
        second in parts(0..3),
        between in parts(1..4),
    ) {
        let second = Key(second);
        let grant = read_grant(&[&first, &second]);
        let (start, end) = (a.encode(), b.encode());
        let model = [&first, &second].iter().any(|p| under(p, &a) && under(p, &b));
        prop_assert_eq!(grant.can_read_range(&start, &end), model, "range {} .. {}", a, b);
        // Soundness: an allowed range allows every key inside it.
        let inside = Key(between).encode();
        if grant.can_read_range(&start, &end) && start <= inside && inside < end {
            prop_assert!(grant.can_read(&inside));
        }
    }

    #[test]
    fn prefix_selectors_are_allowed_exactly_under_the_scope((prefix, selector, _) in prefix_and_keys()) {
        let grant = read_grant(&[&prefix]);
        let encoded = selector.encode();
        let allowed = grant.can_read_range(&Key::prefix_start(&encoded), &Key::prefix_end(&encoded));
        prop_assert_eq!(allowed, under(&prefix, &selector), "scope {} selector {}", prefix, selector);
    }
}

fn is_valid_key_id_for_test(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= Secrets::MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
}
