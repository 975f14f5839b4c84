//! One pass over a project's sealed records, page by page in source-id order: the
//! computation that assessments and mapping impacts (and reconciliation after them)
//! plug into. The next page is fetched while the current one is worked on; progress is
//! counted as pages finish; a stop ends the pass between pages.

use crate::{background::Supervisor, progress::Work};
use domain::{DomainError, ids::ProjectId, ids::UploadId, ports::Store};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio_util::sync::CancellationToken;

/// Records read per page.
pub const PAGE: u32 = 5_000;

/// One page: each record's source id, the upload it came from, and its sealed bytes.
pub type Page = Vec<(String, UploadId, Vec<u8>)>;

/// What a pass ends with when Ferry stops during it.
pub const STOPPED: &str = "Ferry stopped while this was computed; start it again";

/// Runs a computation over `project`'s records in the background, under the
/// supervisor as the task `name`: its records done are counted in the progress
/// registry as `work`; `finish` saves its sealed result, or the reason it failed. However
/// it ends (a panic, a failed save included), `finish` is given a reason, so the
/// computation never stays "running" for good.
pub fn spawn<C, CF, F, FF>(
    background: &Supervisor,
    name: &'static str,
    work: Work,
    project: ProjectId,
    compute: C,
    finish: F,
) where
    C: FnOnce(Arc<AtomicU64>) -> CF,
    CF: Future<Output = domain::Result<Vec<u8>>> + Send + 'static,
    F: Fn(Result<Vec<u8>, String>) -> FF + Clone + Send + 'static,
    FF: Future<Output = domain::Result<()>> + Send + 'static,
{
    let tracked = background.progress().count(work);
    let computing = compute(tracked.entry().clone());
    let recover = finish.clone();
    background.spawn(
        name,
        project,
        async move {
            let started = std::time::Instant::now();
            let outcome = match computing.await {
                Ok(sealed) => {
                    tracing::info!(task = name, project = %project, seconds = started.elapsed().as_secs_f64(), "computed");
                    Ok(sealed)
                }
                Err(err) => {
                    tracing::warn!(task = name, project = %project, error = %err, "the computation failed");
                    Err(err.to_string())
                }
            };
            let settled = finish(outcome).await;
            drop(tracked);
            crate::background::reason(settled)
        },
        move |reason| async move {
            if let Err(err) = recover(Err(reason)).await {
                tracing::error!(task = name, project = %project, error = %err, "cannot mark the computation failed");
            }
        },
    );
}

/// Hands every page of `project`'s records to `work` with the state it returned for
/// the page before, adding each page's records to `done` once worked on. Returns the
/// last state, or the first error.
pub async fn scan<S, F, Fut>(
    store: &Arc<dyn Store>,
    project: ProjectId,
    stop: &CancellationToken,
    done: &AtomicU64,
    mut state: S,
    mut work: F,
) -> domain::Result<S>
where
    F: FnMut(S, Page) -> Fut,
    Fut: Future<Output = domain::Result<S>>,
{
    let fetch = |after: Option<String>| {
        let store = store.clone();
        async move {
            store
                .records_with_upload(project, after.as_deref(), PAGE)
                .await
        }
    };
    let mut page = fetch(None).await?;
    loop {
        let Some((last, _, _)) = page.last() else {
            return Ok(state);
        };
        if stop.is_cancelled() {
            return Err(DomainError::Conflict(STOPPED.into()));
        }
        let after = last.clone();
        let count = page.len() as u64;
        let (next, worked) = tokio::join!(fetch(Some(after)), work(state, page));
        state = worked?;
        done.fetch_add(count, Ordering::Relaxed);
        page = next?;
    }
}
