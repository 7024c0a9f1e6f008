//! A checker for the cache class: convergence, no lost acknowledged write, no expired or
//! phantom read.
//!
//! The history holds every acknowledged write (its key, value or delete, versionstamp and
//! expiry), every read made while the test ran, and the final state each replica returns
//! once the test has healed every fault and waited. The verdict:
//! - **converged**: every replica's final state is the same;
//! - **no acknowledged write lost**: for each key, the final state is the acknowledged
//!   write with the highest versionstamp (last writer wins; its value, or absent when it
//!   was a delete or has expired by the time of the final read);
//! - **no phantom read**: every value a read returned was written by an acknowledged write
//!   (or by a write whose acknowledgement was lost, listed as `unacknowledged`);
//! - **no expired read**: no read returned a value whose expiry was before the read began.
//!
//! Keys are checked as LWW registers; counters are checked by the test itself (their sum
//! is the sum of acknowledged increments).

use std::collections::{BTreeMap, BTreeSet};

/// A write the store acknowledged (or one whose outcome is unknown, if `acknowledged` is
/// false: it may or may not win).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    /// `None`: a delete.
    pub value: Option<String>,
    pub versionstamp: [u8; 10],
    pub expires_at_ms: Option<u64>,
    pub acknowledged: bool,
}

/// A read made during the run: what it returned and when it began (wall ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub key: String,
    pub began_ms: u64,
    pub value: Option<String>,
    pub expires_at_ms: Option<u64>,
}

/// What one replica holds for a key at the end (`None`: absent).
pub type FinalState = BTreeMap<String, Option<String>>;

#[derive(Clone, Debug, Default)]
pub struct History {
    pub writes: Vec<Write>,
    pub reads: Vec<Read>,
    /// Per replica (a name for the report), the final state of every key written.
    pub finals: Vec<(String, FinalState)>,
    /// Wall ms of the final reads (for deciding whether the winner has expired).
    pub final_read_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    Diverged {
        key: String,
        states: Vec<(String, Option<String>)>,
    },
    LostWrite {
        key: String,
        expected: Option<String>,
        found: Option<String>,
        replica: String,
    },
    PhantomRead {
        key: String,
        value: String,
    },
    ExpiredRead {
        key: String,
        value: String,
        expired_at_ms: u64,
        read_began_ms: u64,
    },
}

/// Checks a history; an empty answer means it passed.
pub fn check(history: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    let written: BTreeSet<(&str, &str)> = history
        .writes
        .iter()
        .filter_map(|w| w.value.as_deref().map(|v| (w.key.as_str(), v)))
        .collect();
    for read in &history.reads {
        let Some(value) = &read.value else { continue };
        if !written.contains(&(read.key.as_str(), value.as_str())) {
            violations.push(Violation::PhantomRead {
                key: read.key.clone(),
                value: value.clone(),
            });
        }
        if let Some(at) = read.expires_at_ms
            && at <= read.began_ms
        {
            violations.push(Violation::ExpiredRead {
                key: read.key.clone(),
                value: value.clone(),
                expired_at_ms: at,
                read_began_ms: read.began_ms,
            });
        }
    }
    let keys: BTreeSet<&str> = history.writes.iter().map(|w| w.key.as_str()).collect();
    for key in keys {
        let states: Vec<(String, Option<String>)> = history
            .finals
            .iter()
            .map(|(replica, state)| (replica.clone(), state.get(key).cloned().flatten()))
            .collect();
        if states.windows(2).any(|pair| pair[0].1 != pair[1].1) {
            violations.push(Violation::Diverged {
                key: key.to_string(),
                states: states.clone(),
            });
            continue;
        }
        let Some((_, found)) = states.first() else { continue };
        let latest = history
            .writes
            .iter()
            .filter(|w| w.key == key)
            .max_by_key(|w| w.versionstamp)
            .expect("the key was written");
        let live = |w: &Write| {
            w.value
                .clone()
                .filter(|_| w.expires_at_ms.is_none_or(|at| at > history.final_read_ms))
        };
        // An unacknowledged write may have been lost; then the latest acknowledged one wins.
        let acceptable: Vec<Option<String>> = if latest.acknowledged {
            vec![live(latest)]
        } else {
            let mut options = vec![live(latest)];
            let acknowledged = history
                .writes
                .iter()
                .filter(|w| w.key == key && w.acknowledged)
                .max_by_key(|w| w.versionstamp);
            options.push(acknowledged.and_then(live));
            options
        };
        if !acceptable.contains(found) {
            violations.push(Violation::LostWrite {
                key: key.to_string(),
                expected: acceptable[0].clone(),
                found: found.clone(),
                replica: states[0].0.clone(),
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: Option<&str>, stamp: u8) -> Write {
        Write {
            key: key.into(),
            value: value.map(String::from),
            versionstamp: [stamp; 10],
            expires_at_ms: None,
            acknowledged: true,
        }
    }

    /// A replica's name and its (key, value) pairs.
    type Replica<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

    fn finals(states: &[Replica<'_>]) -> Vec<(String, FinalState)> {
        states
            .iter()
            .map(|(replica, keys)| {
                (
                    replica.to_string(),
                    keys.iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_latest_write_everywhere_passes() {
        let history = History {
            writes: vec![write("a", Some("1"), 1), write("a", Some("2"), 2), write("b", None, 3)],
            reads: vec![],
            finals: finals(&[("n1", &[("a", Some("2")), ("b", None)]), ("n2", &[("a", Some("2"))])]),
            final_read_ms: 0,
        };
        assert_eq!(check(&history), vec![]);
    }

    #[test]
    fn replicas_that_disagree_diverged() {
        let history = History {
            writes: vec![write("a", Some("1"), 1), write("a", Some("2"), 2)],
            finals: finals(&[("n1", &[("a", Some("2"))]), ("n2", &[("a", Some("1"))])]),
            ..History::default()
        };
        assert!(matches!(&check(&history)[..], [Violation::Diverged { .. }]));
    }

    #[test]
    fn an_older_write_winning_everywhere_is_a_lost_write() {
        let history = History {
            writes: vec![write("a", Some("1"), 1), write("a", Some("2"), 2)],
            finals: finals(&[("n1", &[("a", Some("1"))]), ("n2", &[("a", Some("1"))])]),
            ..History::default()
        };
        assert!(matches!(&check(&history)[..], [Violation::LostWrite { .. }]));
        let deleted = History {
            writes: vec![write("a", Some("1"), 1)],
            finals: finals(&[("n1", &[("a", None)])]),
            ..History::default()
        };
        assert!(matches!(&check(&deleted)[..], [Violation::LostWrite { .. }]));
    }

    #[test]
    fn an_unacknowledged_latest_write_may_or_may_not_win() {
        let mut unknown = write("a", Some("2"), 2);
        unknown.acknowledged = false;
        for outcome in [Some("1"), Some("2")] {
            let history = History {
                writes: vec![write("a", Some("1"), 1), unknown.clone()],
                finals: finals(&[("n1", &[("a", outcome)])]),
                ..History::default()
            };
            assert_eq!(check(&history), vec![]);
        }
    }

    #[test]
    fn an_expired_winner_must_be_gone_and_reads_never_see_expired_values() {
        let mut short = write("a", Some("2"), 2);
        short.expires_at_ms = Some(100);
        let history = History {
            writes: vec![write("a", Some("1"), 1), short.clone()],
            reads: vec![Read {
                key: "a".into(),
                began_ms: 150,
                value: Some("2".into()),
                expires_at_ms: Some(100),
            }],
            finals: finals(&[("n1", &[("a", Some("2"))])]),
            final_read_ms: 200,
        };
        let violations = check(&history);
        assert!(violations.iter().any(|v| matches!(v, Violation::ExpiredRead { .. })));
        assert!(
            violations
                .iter()
                .any(|v| matches!(v, Violation::LostWrite { expected: None, .. })),
            "the expired winner must read as absent, not fall back to the older value: {violations:?}"
        );
    }

    #[test]
    fn a_read_of_a_value_nobody_wrote_is_a_phantom() {
        let history = History {
            writes: vec![write("a", Some("1"), 1)],
            reads: vec![Read {
                key: "a".into(),
                began_ms: 0,
                value: Some("9".into()),
                expires_at_ms: None,
            }],
            finals: finals(&[("n1", &[("a", Some("1"))])]),
            final_read_ms: 0,
        };
        assert!(matches!(&check(&history)[..], [Violation::PhantomRead { .. }]));
    }
}
