//! The hybrid logical clock that orders cache-class writes.
//!
//! A timestamp is (wall milliseconds, logical counter, node id). Each node's clock never
//! goes backwards and never repeats: a new timestamp is above every timestamp the node has
//! issued or observed, and close to real time while the wall clock is sane. The node id
//! makes timestamps unique across nodes, so "last writer wins" never meets a tie.
//!
//! A remote timestamp too far ahead of the local wall clock (more than `max_skew`) is
//! refused rather than observed: merging it would drag this node's clock (and every later
//! write) into the future, and a last-writer-wins register would let that node win every
//! race until real time caught up.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;

/// A hybrid logical timestamp. Ordered by wall time, then counter, then node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    pub wall_ms: u64,
    pub logical: u32,
    pub node: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "clock of node {node} is {ahead_ms} ms ahead of ours, more than the {max_skew_ms} ms allowed; its update was refused"
)]
pub struct ClockSkew {
    pub node: u64,
    pub ahead_ms: u64,
    pub max_skew_ms: u64,
}

pub struct HybridClock<C: Clock> {
    node: u64,
    wall: C,
    max_skew_ms: u64,
    last: Mutex<Timestamp>,
}

impl<C: Clock> HybridClock<C> {
    pub fn new(node: u64, wall: C, max_skew_ms: u64) -> Self {
        Self {
            node,
            wall,
            max_skew_ms,
            last: Mutex::new(Timestamp {
                wall_ms: 0,
                logical: 0,
                node,
            }),
        }
    }

    /// A timestamp for a local write: above everything issued or observed so far.
    pub fn now(&self) -> Timestamp {
        let wall_ms = self.wall.now_ms();
        let mut last = self.last.lock().expect("clock lock");
        let next = if wall_ms > last.wall_ms {
            Timestamp {
                wall_ms,
                logical: 0,
                node: self.node,
            }
        } else {
            advance(*last, self.node)
        };
        *last = next;
        next
    }

    /// Takes in a timestamp from another node, so later local timestamps are above it.
    pub fn observe(&self, remote: Timestamp) -> Result<(), ClockSkew> {
        self.check(remote)?;
        self.witness(remote);
        Ok(())
    }

    /// Refuses a timestamp further ahead of the local wall clock than the allowed skew,
    /// without taking it in.
    pub fn check(&self, remote: Timestamp) -> Result<(), ClockSkew> {
        let wall_ms = self.wall.now_ms();
        if remote.wall_ms > wall_ms.saturating_add(self.max_skew_ms) {
            return Err(ClockSkew {
                node: remote.node,
                ahead_ms: remote.wall_ms - wall_ms,
                max_skew_ms: self.max_skew_ms,
            });
        }
        Ok(())
    }

    /// Takes in a timestamp this node already holds (its stored records at startup),
    /// however far ahead: later local timestamps must stay above everything stored, even
    /// when the wall clock was set back across a restart.
    pub fn witness(&self, remote: Timestamp) {
        let mut last = self.last.lock().expect("clock lock");
        if remote > *last {
            *last = Timestamp {
                node: self.node,
                ..remote
            };
        }
    }
}

/// The next timestamp after `last` at the same wall time (the counter overflowing moves
/// the wall part on by a millisecond, which keeps the order strict).
fn advance(last: Timestamp, node: u64) -> Timestamp {
    match last.logical.checked_add(1) {
        Some(logical) => Timestamp {
            wall_ms: last.wall_ms,
            logical,
            node,
        },
        None => Timestamp {
            wall_ms: last.wall_ms + 1,
            logical: 0,
            node,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use proptest::prelude::*;

    #[test]
    fn timestamps_increase_even_when_the_wall_clock_stands_still_or_goes_back() {
        let wall = ManualClock::new(1_000);
        let clock = HybridClock::new(1, wall.clone(), 500);
        let a = clock.now();
        let b = clock.now();
        wall.set(900);
        let c = clock.now();
        wall.set(2_000);
        let d = clock.now();
        assert!(a < b && b < c && c < d, "{a:?} {b:?} {c:?} {d:?}");
        assert_eq!(d.wall_ms, 2_000);
    }

    #[test]
    fn observing_a_later_remote_stamp_moves_the_clock_past_it() {
        let clock = HybridClock::new(1, ManualClock::new(1_000), 500);
        let remote = Timestamp {
            wall_ms: 1_300,
            logical: 7,
            node: 2,
        };
        clock.observe(remote).unwrap();
        assert!(clock.now() > remote);
    }

    #[test]
    fn a_remote_clock_too_far_ahead_is_refused_and_not_observed() {
        let clock = HybridClock::new(1, ManualClock::new(1_000), 500);
        let remote = Timestamp {
            wall_ms: 1_501,
            logical: 0,
            node: 2,
        };
        let refused = clock.observe(remote).unwrap_err();
        assert_eq!(refused.ahead_ms, 501);
        assert!(clock.now().wall_ms < 1_501, "the bad clock did not leak into ours");
    }

    proptest! {
        #[test]
        fn any_mix_of_local_ticks_observations_and_wall_jumps_stays_strictly_increasing(
            steps in proptest::collection::vec((0u8..3, 0u64..2_000, 0u32..5), 1..200)
        ) {
            let wall = ManualClock::new(10_000);
            let clock = HybridClock::new(1, wall.clone(), 1_000);
            let mut last = Timestamp::default();
            for (kind, ms, logical) in steps {
                match kind {
                    0 => {
                        let now = clock.now();
                        prop_assert!(now > last);
                        last = now;
                    }
                    1 => wall.set(9_000 + ms),
                    _ => {
                        let remote = Timestamp { wall_ms: 9_500 + ms, logical, node: 2 };
                        if clock.observe(remote).is_ok() {
                            let now = clock.now();
                            prop_assert!(now > remote && now > last);
                            last = now;
                        }
                    }
                }
            }
        }
    }
}
