//! What a request touches, checked against who sends it. Every front-end calls these with
//! the request's [`Principal`] before handing it to the store, so a key outside the token's
//! scope is refused the same way on gRPC and on KV Connect, and nothing of it is applied.
//!
//! Reads need read access to every key they name or range they cover (a list is checked
//! over its whole selector, so one that starts inside the scope and runs out of it is
//! refused). An atomic write needs read access to each checked key (a check reveals
//! whether the key exists and its versionstamp) and write access to each mutated key or
//! range; one part outside the scope refuses the whole write.

use super::error::KvResult;
use super::range;
use super::types::{AtomicWrite, RangeRead, Selector, Target};
use crate::auth::Principal;

/// Point reads (get, get-many, watch).
pub fn authorize_reads<'k>(principal: &Principal, keys: impl IntoIterator<Item = &'k [u8]>) -> KvResult<()> {
    for key in keys {
        principal.require_read(key)?;
    }
    Ok(())
}

/// A list: its selector resolved to the byte range it covers (an invalid selector is
/// refused for what it is, before access is judged).
pub fn authorize_list(principal: &Principal, selector: &Selector) -> KvResult<()> {
    let bounds = range::resolve(selector)?;
    principal.require_read_range(&bounds.start, &bounds.end)?;
    Ok(())
}

/// Range reads as KV Connect sends them (`[start, end)` each).
pub fn authorize_ranges(principal: &Principal, ranges: &[RangeRead]) -> KvResult<()> {
    for range in ranges {
        principal.require_read_range(&range.start, &range.end)?;
    }
    Ok(())
}

/// Every check and mutation of an atomic write.
pub fn authorize_atomic(principal: &Principal, write: &AtomicWrite) -> KvResult<()> {
    for check in &write.checks {
        principal.require_read(&check.key)?;
    }
    for mutation in &write.mutations {
        // A versionstamped key's prefix is writable only where every key under it is: a
        // scope covering the prefix key covers all under it.
        match mutation.target() {
            Target::Key(key) => principal.require_write(key)?,
            Target::Range { start, end } => principal.require_write_range(start, end)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use edgekv_proto::key;
    use edgekv_proto::token::{self, Claims, ScopeClaim, Secrets};
    use edgekv_proto::v1::ValueEncoding;
    use edgekv_proto::{ErrorCode, Key};

    use super::*;
    use crate::auth::Authenticator;
    use crate::kv::{Check, KvError, Mutation, NumericOp};

    const NOW_S: u64 = 1_700_000_000;

    /// A principal allowed to read and write the keys under `["users"]`.
    fn users_writer() -> Principal {
        let secrets = Secrets::parse("k1 0123456789abcdef0123456789abcdef").unwrap();
        let claims = Claims {
            sub: "alice".into(),
            exp: NOW_S + 60,
            iat: NOW_S,
            scope: vec![ScopeClaim {
                prefix: serde_json::json!(["users"]),
                read: true,
                write: true,
            }],
            admin: false,
        };
        let token = token::sign(&claims, &secrets).unwrap();
        Authenticator::new(secrets)
            .authenticate(Some(&token), NOW_S * 1000)
            .unwrap()
    }

    fn denied(result: KvResult<()>) -> bool {
        matches!(&result, Err(error @ KvError::Denied(_)) if error.code() == ErrorCode::PermissionDenied)
    }

    /// Every kind of mutation on `key` (a point key) or over `key`'s prefix range.
    fn every_mutation(key: &Key) -> Vec<Mutation> {
        let encoded = key.encode();
        vec![
            Mutation::Set {
                key: encoded.clone(),
                encoding: ValueEncoding::Utf8,
                value: b"v".to_vec(),
                expiry: None,
                metadata: None,
            },
            Mutation::Delete { key: encoded.clone() },
            Mutation::Numeric {
                op: NumericOp::Sum,
                key: encoded.clone(),
                operand: 1,
            },
            Mutation::SumV8 {
                key: encoded.clone(),
                operand: Vec::new(),
                min: Vec::new(),
                max: Vec::new(),
                clamp: false,
            },
            Mutation::SetAdd {
                key: encoded.clone(),
                member: "m".into(),
            },
            Mutation::SetRemove {
                key: encoded.clone(),
                member: "m".into(),
            },
            Mutation::DeleteRange {
                start: Key::prefix_start(&encoded),
                end: Key::prefix_end(&encoded),
            },
            Mutation::SetVersionstampedKey {
                prefix: encoded,
                encoding: ValueEncoding::Utf8,
                value: b"v".to_vec(),
                expiry: None,
            },
        ]
    }

    fn write(checks: &[Key], mutations: Vec<Mutation>) -> AtomicWrite {
        AtomicWrite {
            checks: checks
                .iter()
                .map(|key| Check {
                    key: key.encode(),
                    versionstamp: None,
                })
                .collect(),
            mutations,
        }
    }

    #[test]
    fn every_mutation_kind_is_held_to_the_write_scope() {
        let alice = users_writer();
        for mutation in every_mutation(&key!["users", 1]) {
            let inside = write(&[], vec![mutation.clone()]);
            assert!(authorize_atomic(&alice, &inside).is_ok(), "{mutation:?}");
        }
        for mutation in every_mutation(&key!["orders", 1]) {
            let outside = write(&[], vec![mutation.clone()]);
            assert!(denied(authorize_atomic(&alice, &outside)), "{mutation:?}");
        }
        // A versionstamped key directly under the root, or a range running out of the
        // scope, is outside it too.
        let root = write(
            &[],
            vec![Mutation::SetVersionstampedKey {
                prefix: Vec::new(),
                encoding: ValueEncoding::Utf8,
                value: Vec::new(),
                expiry: None,
            }],
        );
        assert!(denied(authorize_atomic(&alice, &root)));
        let span = write(
            &[],
            vec![Mutation::DeleteRange {
                start: key!["users", 1].encode(),
                end: key!["v"].encode(),
            }],
        );
        assert!(denied(authorize_atomic(&alice, &span)));
    }

    #[test]
    fn one_part_outside_refuses_the_whole_write() {
        let alice = users_writer();
        let mut mutations = every_mutation(&key!["users", 1]);
        mutations.extend(every_mutation(&key!["orders", 1]).into_iter().take(1));
        assert!(denied(authorize_atomic(&alice, &write(&[], mutations))));
        let checked_outside = write(&[key!["orders", 1]], every_mutation(&key!["users", 1]));
        assert!(
            denied(authorize_atomic(&alice, &checked_outside)),
            "a check reads its key"
        );
        let checked_inside = write(&[key!["users", 2]], every_mutation(&key!["users", 1]));
        assert!(authorize_atomic(&alice, &checked_inside).is_ok());
    }

    #[test]
    fn reads_lists_and_ranges_are_held_to_the_read_scope() {
        let alice = users_writer();
        let (inside, outside) = (key!["users", 1].encode(), key!["orders", 1].encode());
        assert!(authorize_reads(&alice, [inside.as_slice()]).is_ok());
        assert!(denied(authorize_reads(&alice, [inside.as_slice(), outside.as_slice()])));

        let prefix = |key: Key| Selector {
            prefix: Some(key.encode()),
            start: None,
            end: None,
        };
        assert!(authorize_list(&alice, &prefix(key!["users"])).is_ok());
        assert!(authorize_list(&alice, &prefix(key!["users", 1])).is_ok());
        assert!(denied(authorize_list(&alice, &prefix(Key::new(Vec::new())))));
        let running_out = Selector {
            prefix: None,
            start: Some(key!["users", 1].encode()),
            end: Some(key!["v"].encode()),
        };
        assert!(denied(authorize_list(&alice, &running_out)));
        let invalid = Selector {
            prefix: None,
            start: None,
            end: None,
        };
        assert!(
            matches!(authorize_list(&alice, &invalid), Err(KvError::InvalidRange(_))),
            "an invalid selector is refused for what it is"
        );

        let range = |start: Vec<u8>, end: Vec<u8>| RangeRead {
            start,
            end,
            limit: 10,
            reverse: false,
        };
        let users = key!["users"].encode();
        assert!(authorize_ranges(&alice, &[range(Key::prefix_start(&users), Key::prefix_end(&users))]).is_ok());
        let everything = range(Vec::new(), vec![0xff]);
        assert!(denied(authorize_ranges(
            &alice,
            &[range(inside.clone(), [inside.as_slice(), &[0]].concat()), everything]
        )));
    }
}
