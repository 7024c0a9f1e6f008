//! A component of a running node: tasks that start together and stop together, with one
//! stop signal and one `JoinSet` the node owns, so no task is ever detached and every one
//! is waited for (or, past a drain timeout, aborted) at shutdown.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::NodeError;

pub(super) struct Component {
    name: &'static str,
    stop: CancellationToken,
    tasks: JoinSet<Result<(), NodeError>>,
}

impl Component {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        }
    }

    /// The signal this component's tasks stop on.
    pub(super) fn stop_signal(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub(super) fn spawn(&mut self, task: impl Future<Output = Result<(), NodeError>> + Send + 'static) {
        self.tasks.spawn(task);
    }

    /// The first of this component's tasks to end before shutdown, as a failure: none of
    /// them should end on its own. Never resolves while they all run (or if there are none).
    pub(super) async fn failure(&mut self) -> NodeError {
        match self.tasks.join_next().await {
            Some(Ok(Ok(()))) => NodeError::Task(format!("a {} task stopped unexpectedly", self.name)),
            Some(Ok(Err(error))) => error,
            Some(Err(error)) => NodeError::Task(format!("a {} task failed: {error}", self.name)),
            None => std::future::pending().await,
        }
    }

    /// Signals stop and waits for every task; after `drain` (if given) the rest are
    /// aborted. A task's error on the way out is logged, not returned: the node is going
    /// down anyway.
    pub(super) async fn stop(mut self, drain: Option<Duration>) {
        self.stop.cancel();
        let name = self.name;
        let join_all = async {
            while let Some(done) = self.tasks.join_next().await {
                if let Ok(Err(error)) = done {
                    tracing::warn!(%error, component = name, "task ended with an error during shutdown");
                }
            }
        };
        match drain {
            None => join_all.await,
            Some(limit) => {
                if tokio::time::timeout(limit, join_all).await.is_err() {
                    tracing::warn!(component = name, "tasks still running after {limit:?}; stopping them");
                    self.tasks.shutdown().await;
                }
            }
        }
    }
}
