//! Tests of the node's token policy: authentication off and on, each refusal's code and
//! message, and the scope checks on keys, ranges and admin operations.

use std::io::Write as _;

use edgekv_proto::ErrorCode;
use edgekv_proto::key;
use edgekv_proto::key::Key;
use edgekv_proto::token::{self, Claims, ScopeClaim, Secrets, TokenError, TokenErrorKind};
use serde_json::json;

use super::*;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW_MS: u64 = 1_700_000_000_000;

fn secrets() -> Secrets {
    Secrets::parse(&format!("k1 {SECRET}")).unwrap()
}

fn token(scope: Vec<ScopeClaim>, admin: bool) -> String {
    let claims = Claims {
        sub: "alice".into(),
        exp: NOW_MS / 1000 + 60,
        iat: NOW_MS / 1000,
        scope,
        admin,
    };
    token::sign(&claims, &secrets()).unwrap()
}

fn users_reader() -> String {
    token(
        vec![ScopeClaim {
            prefix: json!(["users"]),
            read: true,
            write: false,
        }],
        false,
    )
}

#[test]
fn disabled_authentication_allows_everything() {
    let auth = Authenticator::disabled();
    assert!(!auth.is_enabled() && auth.secrets().is_none());
    for bearer in [None, Some("garbage"), Some("")] {
        let principal = auth.authenticate(bearer, NOW_MS).unwrap();
        assert_eq!(principal, Principal::unrestricted());
        assert_eq!(principal.subject(), UNRESTRICTED_SUBJECT);
        assert!(principal.grant().is_none());
        let key = key!["any"].encode();
        assert!(principal.require_read(&key).is_ok() && principal.require_write(&key).is_ok());
        assert!(principal.require_read_range(&[], &[0xff]).is_ok());
        assert!(principal.require_write_range(&[], &[0xff]).is_ok());
        assert!(principal.require_admin().is_ok());
    }
}

#[test]
fn tokens_are_refused_as_unauthenticated_with_their_reason() {
    let auth = Authenticator::new(secrets());
    assert!(auth.is_enabled());
    let kind = |bearer: Option<&str>, now_ms: u64| match auth.authenticate(bearer, now_ms) {
        Err(error @ AuthError::Unauthenticated(_)) => {
            assert_eq!(error.code(), ErrorCode::Unauthenticated);
            let AuthError::Unauthenticated(cause) = error else {
                unreachable!()
            };
            cause.kind()
        }
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    };
    assert_eq!(kind(None, NOW_MS), TokenErrorKind::Missing);
    assert_eq!(kind(Some("  "), NOW_MS), TokenErrorKind::Missing);
    assert_eq!(kind(Some("not.a.token"), NOW_MS), TokenErrorKind::Malformed);
    let valid = users_reader();
    assert_eq!(kind(Some(&valid), NOW_MS + 60_000), TokenErrorKind::Expired);
    let other = Authenticator::new(Secrets::parse(&format!("k1 x{SECRET}")).unwrap());
    assert!(matches!(
        other.authenticate(Some(&valid), NOW_MS),
        Err(AuthError::Unauthenticated(TokenError::BadSignature))
    ));
    // Valid until the last millisecond of its last second.
    assert!(auth.authenticate(Some(&valid), NOW_MS + 59_999).is_ok());
    assert!(auth.authenticate(Some(&format!(" {valid}\n")), NOW_MS).is_ok());
}

#[test]
fn scope_refusals_name_the_subject_and_the_key() {
    let auth = Authenticator::new(secrets());
    let principal = auth.authenticate(Some(&users_reader()), NOW_MS).unwrap();
    assert_eq!(principal.subject(), "alice");
    assert_eq!(principal.grant().map(|g| g.subject()), Some("alice"));
    assert!(principal.require_read(&key!["users", 7].encode()).is_ok());

    let error = principal.require_write(&key!["users", 7].encode()).unwrap_err();
    assert_eq!(error.code(), ErrorCode::PermissionDenied);
    assert_eq!(
        error,
        AuthError::PermissionDenied {
            subject: "alice".into(),
            what: r#"write key ["users",7]"#.into()
        }
    );
    assert_eq!(
        error.to_string(),
        r#"permission denied: "alice" may not write key ["users",7]"#
    );
    let outside = principal.require_read(&key!["orders", 1].encode()).unwrap_err();
    assert!(outside.to_string().contains(r#"["orders",1]"#), "{outside}");
    assert_eq!(
        principal.require_admin().unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
}

#[test]
fn ranges_must_stay_inside_one_scope() {
    let auth = Authenticator::new(secrets());
    let principal = auth.authenticate(Some(&users_reader()), NOW_MS).unwrap();
    let users = key!["users"].encode();
    assert!(
        principal
            .require_read_range(&Key::prefix_start(&users), &Key::prefix_end(&users))
            .is_ok()
    );
    assert!(
        principal
            .require_read_range(&key!["users", 1].encode(), &key!["users", 5].encode())
            .is_ok()
    );
    // A list that starts inside the scope and runs out of it.
    let escaping = principal
        .require_read_range(&key!["users", 1].encode(), &key!["zebra"].encode())
        .unwrap_err();
    assert_eq!(
        escaping.to_string(),
        r#"permission denied: "alice" may not read the range from ["users",1] up to ["zebra"]"#
    );
    // A range of one key, as KV Connect clients send a get, names the key.
    let orders_1 = key!["orders", "1"].encode();
    let one_key = principal
        .require_read_range(&orders_1, &[orders_1.as_slice(), &[0x00]].concat())
        .unwrap_err();
    assert!(
        one_key.to_string().ends_with(r#"may not read key ["orders","1"]"#),
        "{one_key}"
    );
    let everything = principal
        .require_read_range(&Key::prefix_start(&[]), &Key::prefix_end(&[]))
        .unwrap_err();
    assert!(everything.to_string().contains("the keys under []"), "{everything}");
    let orders = key!["orders"].encode();
    let denied = principal
        .require_write_range(&Key::prefix_start(&orders), &Key::prefix_end(&orders))
        .unwrap_err();
    assert!(
        denied
            .to_string()
            .ends_with(r#"may not write the keys under ["orders"]"#),
        "{denied}"
    );
}

#[test]
fn admin_tokens_pass_admin_checks_only() {
    let auth = Authenticator::new(secrets());
    let admin = auth.authenticate(Some(&token(vec![], true)), NOW_MS).unwrap();
    assert!(admin.require_admin().is_ok());
    assert!(admin.require_read(&key!["users"].encode()).is_err());
}

#[test]
fn secrets_come_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "# rotated 2024-05\nnew {SECRET}\nold {SECRET}x").unwrap();
    let auth = Authenticator::from_file(file.path()).unwrap();
    let ids: Vec<&str> = auth.secrets().unwrap().key_ids().collect();
    assert_eq!(ids, ["new", "old"]);

    let mut short = tempfile::NamedTempFile::new().unwrap();
    writeln!(short, "k1 short-secret").unwrap();
    let error = Authenticator::from_file(short.path()).unwrap_err();
    assert!(
        matches!(&error, TokenError::SecretFile { reason, .. } if reason.starts_with("line 1:")),
        "{error}"
    );
    assert!(!error.to_string().contains("short-secret"), "{error}");
    let missing = Authenticator::from_file(std::path::Path::new("/nonexistent/secrets")).unwrap_err();
    assert_eq!(missing.kind(), TokenErrorKind::Configuration);
}

#[test]
fn bearer_values() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("abc"), None);
}

#[test]
fn a_remembered_token_still_expires() {
    let auth = Authenticator::new(secrets());
    let token = users_reader();
    let exp_ms = (NOW_MS / 1000 + 60) * 1000;
    // The first check verifies and remembers it, the second is answered from memory.
    assert!(auth.authenticate(Some(&token), NOW_MS).is_ok());
    assert!(auth.authenticate(Some(&token), exp_ms - 1).is_ok());
    let expired = auth.authenticate(Some(&token), exp_ms).unwrap_err();
    assert_eq!(expired.code(), ErrorCode::Unauthenticated);
    assert!(
        matches!(expired, AuthError::Unauthenticated(TokenError::Expired { .. })),
        "{expired}"
    );
    // A tampered copy is not the remembered token: it is verified, and refused.
    let mut tampered = token.clone();
    tampered.push('x');
    assert!(auth.authenticate(Some(&tampered), NOW_MS).is_err());
}
