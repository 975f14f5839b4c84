//! Work on a project's sealed records for the mapping and user-type pages: samples for
//! previews and live counts (random by content digest, by search, or by id), and the
//! impact of a mapping computed in the background over every record, opened and
//! evaluated on both cores, with progress and a sealed report; and support staff's
//! actions on more users than one request holds, carried out step by step.

use crate::{background::Supervisor, keyring::Keyring, records, scan, vault::Vault};
use async_trait::async_trait;
use chrono::Utc;
use domain::{
    DomainError,
    ids::ProjectId,
    import::NormalizedUser,
    mapping::{
        Mapping,
        impact::{Evaluator, ImpactCounter, ImpactReport, RecordImpact},
    },
    ports::{RecordWork, Sample, Sampled, Store},
    review::{NewReviewEvent, ReviewTask, TASK_STEP, TaskState},
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// A search looks at most at this many records.
pub const SEARCH_SCAN: u64 = 50_000;
/// Records asked for by id at once.
const MAX_IDS: usize = 100;

fn context(project: ProjectId) -> String {
    format!("impact:{project}")
}

fn joined(e: tokio::task::JoinError) -> DomainError {
    DomainError::Internal(format!("impact task: {e}"))
}

/// Cheap to clone.
#[derive(Clone)]
pub struct RecordWorker {
    store: Arc<dyn Store>,
    keys: Keyring,
    background: Supervisor,
}

fn open_all(
    vault: &Vault,
    project: ProjectId,
    rows: Vec<(String, Vec<u8>)>,
) -> domain::Result<Vec<NormalizedUser>> {
    rows.iter()
        .map(|(id, sealed)| records::open(vault, project, id, sealed))
        .collect()
}

impl RecordWorker {
    pub fn new(store: Arc<dyn Store>, keys: Keyring, background: Supervisor) -> Self {
        Self {
            store,
            keys,
            background,
        }
    }

    async fn random(&self, project: ProjectId, seed: u64, limit: u32) -> domain::Result<Sampled> {
        let total = self.store.count_records(project).await?;
        // A digest range holding about twice the records wanted, at a place the seed
        // chooses: digests are uniform, so the records in it are random. Up to twice the
        // records wanted, the range is every record (a share of one would leave no room
        // to place the range: the start's modulus would be zero).
        let share = 2.0 * f64::from(limit) / total.max(1) as f64;
        let (from, to) = if share >= 1.0 {
            (String::new(), "g".to_string())
        } else {
            let width = (u128::MAX as f64 * share) as u128;
            let start = {
                use std::hash::{BuildHasher, Hasher};
                let mut h = std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default()
                    .build_hasher();
                h.write_u64(seed);
                let high = u128::from(h.finish());
                h.write_u64(seed.rotate_left(17));
                ((high << 64) | u128::from(h.finish()))
                    .checked_rem(u128::MAX - width)
                    .unwrap_or(0)
            };
            (format!("{start:032x}"), format!("{:032x}", start + width))
        };
        let rows = self
            .store
            .sealed_records_by_digest(project, &from, &to, limit)
            .await?;
        let scanned = rows.len() as u64;
        let vault = self.keys.vault(project).await?;
        let records = tokio::task::spawn_blocking(move || open_all(&vault, project, rows))
            .await
            .map_err(joined)??;
        Ok(Sampled { records, scanned })
    }

    async fn search(&self, project: ProjectId, text: &str, limit: u32) -> domain::Result<Sampled> {
        let wanted = text.trim().to_lowercase();
        let limit = limit as usize;
        let vault = self.keys.vault(project).await?;
        let mut found = open_all(
            &vault,
            project,
            self.store
                .sealed_records(project, &[text.trim().to_string()])
                .await?,
        )?;
        let mut scanned = 0u64;
        let mut after: Option<String> = None;
        while found.len() < limit && scanned < SEARCH_SCAN {
            let page = self
                .store
                .records_with_upload(project, after.as_deref(), scan::PAGE)
                .await?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = Some(last.clone());
            scanned += page.len() as u64;
            let vault = vault.clone();
            let wanted = wanted.clone();
            let matches = tokio::task::spawn_blocking(move || {
                let mut matches = Vec::new();
                for (id, _, sealed) in &page {
                    let user = records::open(&vault, project, id, sealed)?;
                    if matches_text(&user, &wanted) {
                        matches.push(user);
                    }
                }
                Ok::<_, DomainError>(matches)
            })
            .await
            .map_err(joined)??;
            for user in matches {
                if found.len() < limit && !found.iter().any(|f| f.source_id == user.source_id) {
                    found.push(user);
                }
            }
        }
        Ok(Sampled {
            records: found,
            scanned,
        })
    }

    /// Computes the impact in the background; the store already says it is running.
    /// However it ends (a panic included), the impact is left computed or failed with
    /// the reason, never computing for good.
    pub fn spawn(
        &self,
        project: ProjectId,
        evaluator: Evaluator,
        mapping: Mapping,
        user_types: usize,
    ) {
        let (this, store) = (self.clone(), self.store.clone());
        scan::spawn(
            &self.background,
            "mapping impact",
            crate::progress::Work::Impact(project),
            project,
            move |done| async move {
                this.compute(project, Arc::new(evaluator), &mapping, user_types, done)
                    .await
            },
            move |outcome: Result<Vec<u8>, String>| {
                let store = store.clone();
                async move {
                    let outcome = outcome.as_deref().map_err(String::as_str);
                    store.finish_impact(project, outcome, Utc::now()).await
                }
            },
        );
    }

    /// Reads every record page by page (the next page fetched while this one is
    /// evaluated) and returns the sealed report.
    pub async fn compute(
        &self,
        project: ProjectId,
        evaluator: Arc<Evaluator>,
        mapping: &Mapping,
        user_types: usize,
        done: Arc<AtomicU64>,
    ) -> domain::Result<Vec<u8>> {
        let stop = self.background.stopping();
        let project_vault = self.keys.vault(project).await?;
        let counter = scan::scan(
            &self.store,
            project,
            &stop,
            &done,
            ImpactCounter::new(mapping, user_types),
            |mut counter, page| {
                let (vault, store, done) =
                    (project_vault.clone(), self.store.clone(), done.clone());
                let evaluator = evaluator.clone();
                async move {
                    let count = page.len() as u64;
                    let counter = tokio::task::spawn_blocking(move || {
                        let page: Vec<(String, Vec<u8>)> = page
                            .into_iter()
                            .map(|(id, _, sealed)| (id, sealed))
                            .collect();
                        let impacts = evaluate_page(&vault, project, &page, &evaluator)?;
                        for ((id, _), impact) in page.iter().zip(impacts) {
                            counter.add(id, impact, &evaluator.user_types);
                        }
                        Ok::<_, DomainError>(counter)
                    })
                    .await
                    .map_err(joined)??;
                    store
                        .save_impact_progress(project, done.load(Ordering::Relaxed) + count)
                        .await?;
                    Ok(counter)
                }
            },
        )
        .await?;
        let report = counter.finish();
        let json = serde_json::to_vec(&report)
            .map_err(|e| DomainError::Internal(format!("impact encoding: {e}")))?;
        Ok(project_vault.seal(&json, context(project).as_bytes()))
    }

    /// Impacts a stopped server left computing are marked failed, to be started again.
    /// Goes on with the review actions a stopped server left running, from where each
    /// got to.
    pub async fn resume_review_tasks(&self) -> domain::Result<()> {
        for task in self.store.running_review_tasks().await? {
            tracing::info!(task = %task.id, done = task.done, "going on with a review action");
            self.spawn_review_task(task);
        }
        Ok(())
    }

    pub async fn settle_interrupted(&self) -> domain::Result<()> {
        for project in self.store.running_impacts().await? {
            tracing::info!(project = %project, "an impact computation was interrupted");
            self.store
                .finish_impact(
                    project,
                    Err("the server stopped while the impact was computed; start it again"),
                    Utc::now(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Opens and evaluates a page on two threads, each taking half; results in page order.
fn evaluate_page(
    vault: &Vault,
    project: ProjectId,
    page: &[(String, Vec<u8>)],
    evaluator: &Evaluator,
) -> domain::Result<Vec<RecordImpact>> {
    let half = page.len().div_ceil(2);
    let work = |part: &[(String, Vec<u8>)]| -> domain::Result<Vec<RecordImpact>> {
        part.iter()
            .map(|(id, sealed)| {
                records::open(vault, project, id, sealed).map(|user| evaluator.evaluate(&user))
            })
            .collect()
    };
    let (first, second) = page.split_at(half);
    let (a, b) = std::thread::scope(|scope| {
        let other = scope.spawn(|| work(second));
        let mine = work(first);
        (mine, other.join())
    });
    let mut impacts = a?;
    impacts.extend(b.map_err(|_| DomainError::Internal("an impact thread panicked".into()))??);
    Ok(impacts)
}

fn matches_text(user: &NormalizedUser, wanted: &str) -> bool {
    let has = |t: &str| t.to_lowercase().contains(wanted);
    has(&user.source_id)
        || user.username.as_deref().is_some_and(has)
        || user.emails.iter().any(|e| has(&e.value))
        || user.given_name.as_deref().is_some_and(has)
        || user.family_name.as_deref().is_some_and(has)
        || user.display_name.as_deref().is_some_and(has)
}

#[async_trait]
impl RecordWork for RecordWorker {
    async fn sample(
        &self,
        project: ProjectId,
        sample: &Sample,
        limit: u32,
    ) -> domain::Result<Sampled> {
        match sample {
            Sample::Random { seed } => self.random(project, *seed, limit).await,
            Sample::Search { text } => self.search(project, text, limit).await,
            Sample::Ids { ids } => {
                let ids: Vec<String> = ids.iter().take(MAX_IDS).cloned().collect();
                let rows = self.store.sealed_records(project, &ids).await?;
                let scanned = rows.len() as u64;
                let records = open_all(&*self.keys.vault(project).await?, project, rows)?;
                Ok(Sampled { records, scanned })
            }
        }
    }

    fn spawn_impact(
        &self,
        project: ProjectId,
        evaluator: Evaluator,
        mapping: Mapping,
        user_types: usize,
    ) {
        self.spawn(project, evaluator, mapping, user_types);
    }

    fn impact_progress(&self, project: ProjectId) -> Option<u64> {
        self.background
            .progress()
            .done(crate::progress::Work::Impact(project))
    }

    async fn open_impact(&self, project: ProjectId, sealed: &[u8]) -> domain::Result<ImpactReport> {
        let json = self
            .keys
            .vault(project)
            .await?
            .open(sealed, context(project).as_bytes())
            .map_err(|e| DomainError::Internal(format!("impact report: {e}")))?;
        serde_json::from_slice(&json)
            .map_err(|e| DomainError::Internal(format!("impact report: {e}")))
    }

    fn search_digest(&self, project: ProjectId, key: &str) -> String {
        records::search_digest(self.keys.master(), project, key)
    }

    async fn open_record(
        &self,
        project: ProjectId,
        source_id: &str,
        sealed: &[u8],
    ) -> domain::Result<NormalizedUser> {
        records::open(
            &*self.keys.vault(project).await?,
            project,
            source_id,
            sealed,
        )
    }

    async fn seal_record(
        &self,
        project: ProjectId,
        user: &NormalizedUser,
    ) -> domain::Result<Vec<u8>> {
        records::seal(&*self.keys.vault(project).await?, project, user).map(|s| s.data)
    }

    fn spawn_review_task(&self, task: ReviewTask) {
        let (store, recover_store) = (self.store.clone(), self.store.clone());
        let stop = self.background.stopping();
        let id = task.id;
        self.background.spawn(
            "review action",
            id,
            async move { crate::background::reason(review_task(store, task, stop).await) },
            move |why| async move {
                if let Err(err) = recover_store
                    .finish_review_task(id, TaskState::Failed, Some(&why), Utc::now(), None)
                    .await
                {
                    tracing::error!(task = %id, error = %err, "a failed review action could not be marked failed");
                }
            },
        );
    }
}

/// Acts on everything the task's filter matches, a step at a time in legacy-id order,
/// recording after each step how far it got. Stopping Ferry leaves it running, to go
/// on after the restart from where it was; a cancelled task stops at its next step.
async fn review_task(
    store: Arc<dyn Store>,
    task: ReviewTask,
    stop: tokio_util::sync::CancellationToken,
) -> domain::Result<()> {
    let actor = task.created_by.ok_or_else(|| {
        DomainError::Internal("the review action names no member who started it".into())
    })?;
    let event = NewReviewEvent {
        kind: task.action.code(),
        detail: task.detail.clone(),
    };
    let (mut cursor, mut done) = (task.cursor.clone(), task.done);
    loop {
        if stop.is_cancelled() {
            return Ok(());
        }
        let page = store
            .queue(task.project_id, &task.filter, cursor.as_deref(), TASK_STEP)
            .await?;
        let Some(last) = page.last().map(|i| i.source_id.clone()) else {
            break;
        };
        let ids: Vec<String> = page.into_iter().map(|i| i.source_id).collect();
        store
            .queue_act(
                task.project_id,
                &ids,
                &task.action,
                &event,
                actor,
                Utc::now(),
                None,
            )
            .await?;
        done += ids.len() as u64;
        if !store.advance_review_task(task.id, done, &last).await? {
            // Cancelled by someone: what was done stays done.
            return Ok(());
        }
        if ids.len() < TASK_STEP as usize {
            break;
        }
        cursor = Some(last);
    }
    store
        .finish_review_task(task.id, TaskState::Succeeded, None, Utc::now(), None)
        .await?;
    Ok(())
}
