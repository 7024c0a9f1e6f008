//! Resolving a KV Connect write whose outcome is unknown before answering.
//!
//! Deno's KV Connect clients send a request again after any 5xx or broken connection,
//! without limit and without an id of their own, so the node must not hand them an
//! unknown outcome to guess at. Each `atomic_write` gets a request id, and a write that
//! ends `OUTCOME_UNKNOWN` (the leader did not confirm in time) or `UNAVAILABLE` (no leader
//! right now) is proposed again under the same id, with backoff, until the cluster answers
//! definitely or [`RESOLVE_FOR`] has passed: the request-id table applies it once and
//! answers every copy with the first outcome. A write still unknown then is answered
//! `409 OUTCOME_UNKNOWN`, which the clients do not retry.

use std::future::Future;
use std::time::Duration;

use edgekv_proto::ErrorCode;
use rand::Rng as _;

use crate::kv::{AtomicOutcome, KvError, KvResult};

/// How long a write is proposed again before its unknown outcome is answered.
pub const RESOLVE_FOR: Duration = Duration::from_secs(30);

/// The pause before the first attempt again, doubled after each, up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

pub const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(50),
    max: Duration::from_secs(2),
};

/// Runs `attempt` (the same write under the same request id each time; its argument says
/// whether it is a copy of one whose outcome is unknown) until it answers definitely or
/// `resolve_for` has passed. Once an attempt's outcome was unknown, a later "nothing was
/// written" speaks only for the later copy: the answer is then `OUTCOME_UNKNOWN`.
pub async fn resolve<F, Fut>(mut attempt: F, resolve_for: Duration, backoff: Backoff) -> KvResult<AtomicOutcome>
where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = KvResult<AtomicOutcome>>,
{
    let deadline = tokio::time::Instant::now() + resolve_for;
    let mut pause = backoff.first;
    let mut maybe_applied: Option<KvError> = None;
    loop {
        let answer = attempt(maybe_applied.is_some()).await;
        let code = answer.as_ref().err().map(KvError::code);
        if code == Some(ErrorCode::OutcomeUnknown) {
            maybe_applied = answer.as_ref().err().cloned();
        }
        let unresolved = matches!(code, Some(ErrorCode::OutcomeUnknown | ErrorCode::Unavailable));
        if !unresolved || tokio::time::Instant::now() + pause >= deadline {
            return match (answer, maybe_applied) {
                // A copy that found no leader, or was refused for being a copy (a
                // cache-class write): the first may still have applied.
                (Err(error), Some(unknown))
                    if matches!(
                        error.code(),
                        ErrorCode::Unavailable | ErrorCode::UnsupportedForCacheClass
                    ) =>
                {
                    Err(unknown)
                }
                (answer, _) => answer,
            };
        }
        // Jitter, so writes stalled together do not all come back at once.
        let jittered = pause.mul_f64(rand::rng().random_range(0.5..1.0));
        tokio::time::sleep(jittered).await;
        pause = (pause * 2).min(backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use edgekv_proto::Versionstamp;

    use super::*;
    use crate::kv::{Committed, KvError};
    use crate::raft::ConsensusError;

    const FAST: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    fn committed() -> KvResult<AtomicOutcome> {
        Ok(AtomicOutcome::Committed(Committed {
            versionstamp: Versionstamp::new(7, 0),
            numeric_results: Vec::new(),
        }))
    }

    fn unknown() -> KvResult<AtomicOutcome> {
        Err(KvError::Consensus(ConsensusError::OutcomeUnknown(
            "no confirmation in time".into(),
        )))
    }

    fn unavailable() -> KvResult<AtomicOutcome> {
        Err(KvError::Refused {
            code: ErrorCode::Unavailable,
            message: "no leader".into(),
        })
    }

    /// An attempt function answering from a script, counting the attempts made.
    fn scripted(
        answers: Vec<KvResult<AtomicOutcome>>,
    ) -> (
        impl FnMut(bool) -> std::future::Ready<KvResult<AtomicOutcome>>,
        std::sync::Arc<Mutex<usize>>,
    ) {
        let made = std::sync::Arc::new(Mutex::new(0));
        let counter = made.clone();
        let mut answers = answers.into_iter();
        let attempt = move |_resend: bool| {
            *counter.lock().unwrap() += 1;
            std::future::ready(answers.next().expect("no more scripted answers"))
        };
        (attempt, made)
    }

    #[tokio::test]
    async fn unknown_outcomes_are_proposed_again_until_definite() {
        let (attempt, made) = scripted(vec![unknown(), unavailable(), unknown(), committed()]);
        let answer = resolve(attempt, Duration::from_secs(10), FAST).await;
        assert_eq!(answer.unwrap(), committed().unwrap());
        assert_eq!(*made.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn a_definite_refusal_is_answered_at_once() {
        let refused = Err(KvError::TypeMismatch {
            operation: "sum",
            key: "[\"k\"]".into(),
            found: "a string".into(),
        });
        let (attempt, made) = scripted(vec![refused, committed()]);
        let answer = resolve(attempt, Duration::from_secs(10), FAST).await;
        assert_eq!(answer.unwrap_err().code(), ErrorCode::TypeMismatch);
        assert_eq!(*made.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn no_leader_after_an_unknown_outcome_is_still_unknown() {
        // The first copy may have applied; the later ones finding no leader say nothing of it.
        let (attempt, _) = scripted(
            (0..100)
                .map(|n| if n == 0 { unknown() } else { unavailable() })
                .collect(),
        );
        let answer = resolve(attempt, Duration::from_millis(30), FAST).await;
        assert_eq!(answer.unwrap_err().code(), ErrorCode::OutcomeUnknown);
        // With no unknown outcome before, no leader means what it says: nothing was written.
        let (attempt, _) = scripted((0..100).map(|_| unavailable()).collect());
        let answer = resolve(attempt, Duration::from_millis(30), FAST).await;
        assert_eq!(answer.unwrap_err().code(), ErrorCode::Unavailable);
    }

    #[tokio::test]
    async fn still_unknown_at_the_deadline_is_answered_as_unknown() {
        let (attempt, made) = scripted((0..100).map(|_| unknown()).collect());
        let answer = resolve(attempt, Duration::from_millis(30), FAST).await;
        assert_eq!(answer.unwrap_err().code(), ErrorCode::OutcomeUnknown);
        let made = *made.lock().unwrap();
        assert!(
            (2..100).contains(&made),
            "proposed again, then gave up: {made} attempts"
        );
    }
}
