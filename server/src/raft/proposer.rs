//! The proposer: batches concurrent client writes into one log entry.
//!
//! Requests queue on a channel; the proposer takes everything waiting (up to a count and a
//! byte budget) as one [`Proposal`], stamps it with the leader's clock and hands it to
//! openraft. A few entries may be in flight at once, so the next batch forms while the
//! previous one is being replicated and fsynced: one quorum round and one fsync serve a
//! whole batch, which is what makes durable strong writes cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use super::ConsensusError;
use super::types::{Proposal, Raft};
use crate::clock::Clock;

/// Most requests in one entry.
const MAX_BATCH: usize = 512;
/// Byte budget of one entry (a single larger request still goes, alone). Together with
/// openraft's `max_payload_entries` it bounds an append-entries message well under the
/// peer message limit.
pub(crate) const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Entries proposed but not yet applied.
const MAX_IN_FLIGHT: usize = 4;
/// Requests waiting for the proposer before callers are pushed back on.
const QUEUE: usize = 8192;

pub(crate) struct Pending {
    pub body: Vec<u8>,
    pub reply: oneshot::Sender<Result<Vec<u8>, ConsensusError>>,
    /// Who got to the request first: the proposer (it is proposed) or its caller giving up
    /// (it never will be). Decides whether a timed-out caller may say "not written".
    pub claim: Arc<Claim>,
}

/// A queued request's fate, settled exactly once.
#[derive(Default)]
pub(crate) struct Claim(AtomicU8);

const QUEUED: u8 = 0;
const PROPOSED: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    /// The proposer takes the request; false if its caller already gave up.
    fn propose(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, PROPOSED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The caller gives up; true if the request was never proposed (and now never will be).
    pub(crate) fn abandon(&self) -> bool {
        self.0
            .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

/// The proposer task; [`Proposer::run`] ends when every sender is gone.
pub struct Proposer {
    raft: Raft,
    clock: Arc<dyn Clock>,
    requests: mpsc::Receiver<Pending>,
}

impl Proposer {
    pub(crate) fn new(raft: Raft, clock: Arc<dyn Clock>) -> (mpsc::Sender<Pending>, Self) {
        let (sender, requests) = mpsc::channel(QUEUE);
        (sender, Self { raft, clock, requests })
    }

    /// Runs until `stop` fires; requests still queued then fail with SHUTTING_DOWN.
    pub async fn run(mut self, stop: tokio_util::sync::CancellationToken) {
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut entries = JoinSet::new();
        loop {
            let first = tokio::select! {
                next = self.requests.recv() => match next {
                    Some(first) => first,
                    None => break,
                },
                _ = stop.cancelled() => break,
            };
            // Wait for a slot first: requests that arrive meanwhile join this batch.
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let mut bytes = 0;
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                // A request whose caller timed out while it waited is dropped here, so a
                // write the caller was told "not written" can never land later.
                if request.claim.propose() {
                    bytes += request.body.len();
                    batch.push(request);
                }
                if batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                    next = self.requests.try_recv().ok();
                }
            }
            if batch.is_empty() {
                continue;
            }
            let raft = self.raft.clone();
            let now_ms = self.clock.now_ms();
            entries.spawn(async move {
                propose(raft, now_ms, batch).await;
                drop(permit);
            });
            while entries.try_join_next().is_some() {}
        }
        while entries.join_next().await.is_some() {}
    }
}

async fn propose(raft: Raft, now_ms: u64, batch: Vec<Pending>) {
    let (bodies, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.body, p.reply)).unzip();
    let proposal = Proposal { now_ms, bodies };
    match raft.client_write(proposal).await {
        Ok(response) => {
            let answers = response.data.0;
            if answers.len() != replies.len() {
                tracing::error!(
                    answers = answers.len(),
                    requests = replies.len(),
                    "state machine answered a different number of requests than proposed"
                );
            }
            let mut answers = answers.into_iter();
            for reply in replies {
                let answer = answers
                    .next()
                    .ok_or_else(|| ConsensusError::OutcomeUnknown("the state machine gave no answer".into()));
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            let error = match error {
                // Never appended here, or truncated away: not applied anywhere.
                RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => ConsensusError::NotLeader,
                RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
                    ConsensusError::Membership(e.to_string())
                }
                // The member stopped (a storage failure, or shutdown) with the entry possibly
                // appended and replicated already: followers may still commit it.
                RaftError::Fatal(fatal) => ConsensusError::OutcomeUnknown(format!("the Raft member stopped: {fatal}")),
            };
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
