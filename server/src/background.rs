//! The one home of Ferry's background work: every task (upload reads, assessments,
//! impacts, run drives and their workers, progress followers, the scheduler,
//! housekeeping) is spawned here by name, stopped by one signal, and watched: an error
//! or a panic is logged with the task's name and object, and the object is left in a
//! state a reader can act on. Shutdown is one path with a deadline.

use futures_util::FutureExt;
use std::{
    collections::BTreeMap,
    fmt::Display,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// What a supervised task ends with: `Err` carries why, for the log and for the
/// object's recovery.
pub type Outcome = Result<(), Failure>;

/// Why a task failed: the words its object may show, and the whole error for the log
/// (an internal error shows only "internal error"; the log names it).
#[derive(Debug)]
pub struct Failure {
    shown: String,
    detail: String,
}

impl From<String> for Failure {
    fn from(shown: String) -> Self {
        Self {
            detail: shown.clone(),
            shown,
        }
    }
}

impl From<domain::DomainError> for Failure {
    fn from(err: domain::DomainError) -> Self {
        Self {
            shown: err.to_string(),
            detail: format!("{err:?}"),
        }
    }
}

/// Cheap to clone: clones share the tasks and the stop signal.
#[derive(Clone, Default)]
pub struct Supervisor(Arc<Inner>);

#[derive(Default)]
struct Inner {
    stop: CancellationToken,
    tracker: TaskTracker,
    next: AtomicU64,
    /// The tasks running now, by number: their name and object, for the shutdown log.
    running: Mutex<BTreeMap<u64, (&'static str, String)>>,
    /// Test hook: the next task of this name panics as it starts.
    panic_next: Mutex<Option<&'static str>>,
    progress: crate::progress::Registry,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The words a failed object shows when its task panicked: the panic's own message
/// stays in the server log (it may name internals), the reader gets what to do.
pub const PANICKED: &str = "stopped by an internal error in Ferry (the server log names it)";

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelled when Ferry begins to stop; long work and endless responses (event
    /// streams) watch it.
    pub fn stopping(&self) -> CancellationToken {
        self.0.stop.clone()
    }

    /// What the work running here has done so far, fed by the tasks themselves.
    pub fn progress(&self) -> &crate::progress::Registry {
        &self.0.progress
    }

    /// Runs `work` as the task `name` working on `object`. When it fails or panics the
    /// reason is logged with both and `recover` is given it, to leave the object
    /// readable (an upload failed with the reason, a run paused).
    pub fn spawn<W, R, RF>(
        &self,
        name: &'static str,
        object: impl Display,
        work: W,
        recover: R,
    ) -> JoinHandle<()>
    where
        W: Future<Output = Outcome> + Send + 'static,
        R: FnOnce(String) -> RF + Send + 'static,
        RF: Future<Output = ()> + Send + 'static,
    {
        let object = object.to_string();
        let number = self.0.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.0.running).insert(number, (name, object.clone()));
        let armed = {
            let mut next = lock(&self.0.panic_next);
            if *next == Some(name) {
                next.take();
                true
            } else {
                false
            }
        };
        let inner = self.0.clone();
        self.0.tracker.spawn(async move {
            let work = async move {
                if armed {
                    injected_panic(name);
                }
                work.await
            };
            let reason = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(())) => None,
                Ok(Err(failure)) => {
                    tracing::error!(task = name, object = %object, error = %failure.detail, "a background task failed");
                    Some(failure.shown)
                }
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic without a message".into());
                    tracing::error!(task = name, object = %object, panic = %message, "a background task panicked");
                    Some(PANICKED.to_string())
                }
            };
            if let Some(reason) = reason
                && AssertUnwindSafe(recover(reason)).catch_unwind().await.is_err()
            {
                tracing::error!(task = name, object = %object, "recovering from a failed task panicked");
            }
            lock(&inner.running).remove(&number);
        })
    }

    /// A task that only logs when it fails: what it works on needs no recovery.
    pub fn spawn_logged<W>(
        &self,
        name: &'static str,
        object: impl Display,
        work: W,
    ) -> JoinHandle<()>
    where
        W: Future<Output = Outcome> + Send + 'static,
    {
        self.spawn(name, object, work, |_| async {})
    }

    /// A test hook: the next task named `name` panics as it starts.
    #[doc(hidden)]
    pub fn panic_next(&self, name: &'static str) {
        *lock(&self.0.panic_next) = Some(name);
    }

    /// The tasks running now, by name and object.
    pub fn running(&self) -> Vec<(&'static str, String)> {
        lock(&self.0.running).values().cloned().collect()
    }

    /// Stops everything: signals every task, refuses new ones, and waits for them up
    /// to `deadline`; logs each task that did not stop by then.
    pub async fn shut_down(&self, deadline: Duration) {
        self.0.stop.cancel();
        self.0.tracker.close();
        if tokio::time::timeout(deadline, self.0.tracker.wait())
            .await
            .is_err()
        {
            for (name, object) in self.running() {
                tracing::warn!(task = name, object = %object, "a background task did not stop in time");
            }
        }
    }
}

/// The test hook's panic, as a bug in the task would panic.
#[expect(clippy::panic, reason = "the test hook stands for a bug that panics")]
fn injected_panic(name: &str) -> ! {
    panic!("a panic injected into {name} for a test")
}

/// A spawned task's result as its [`Outcome`].
pub fn reason<E: Into<Failure>>(result: Result<(), E>) -> Outcome {
    result.map_err(Into::into)
}
