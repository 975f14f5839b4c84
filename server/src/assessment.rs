//! Computing a project's assessment report in the background: reading its records
//! page by page (opened on every core), feeding them to the domain's `Assessor`,
//! saving findings and progress as it goes, and keeping the report sealed.

use crate::{background::Supervisor, keyring::Keyring, records, scan, vault::Vault};
use chrono::Utc;
use domain::{
    DomainError,
    assess::{AssessOptions, AssessmentStatus, Assessor, Finding, Report},
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{ProjectId, UploadId},
    import::NormalizedUser,
    ports::{AssessmentRunner, Store},
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use tokio::sync::broadcast;

/// Findings saved per transaction.
const FINDINGS_BATCH: usize = 5_000;

fn context(project: ProjectId) -> String {
    format!("assessment:{project}")
}

/// Runs assessments. Cheap to clone.
#[derive(Clone)]
pub struct Assessments {
    store: Arc<dyn Store>,
    keys: Keyring,
    background: Supervisor,
}

impl Assessments {
    pub fn new(store: Arc<dyn Store>, keys: Keyring, background: Supervisor) -> Self {
        Self {
            store,
            keys,
            background,
        }
    }

    /// Records done so far by the assessment running for `project`, from memory.
    pub fn progress(&self, project: ProjectId) -> Option<u64> {
        self.background
            .progress()
            .done(crate::progress::Work::Assessment(project))
    }

    /// Computes the report in the background; the store already says it is running.
    /// However it ends (a panic included), the assessment is left finished or failed
    /// with the reason, never running for good.
    pub fn spawn(&self, project: ProjectId, options: AssessOptions) {
        let (this, store) = (self.clone(), self.store.clone());
        scan::spawn(
            &self.background,
            "assessment",
            crate::progress::Work::Assessment(project),
            project,
            move |done| async move { this.compute(project, options, done).await },
            move |outcome: Result<Vec<u8>, String>| {
                let store = store.clone();
                async move {
                    let outcome = outcome.as_deref().map_err(String::as_str);
                    store.finish_assessment(project, outcome, Utc::now()).await
                }
            },
        );
    }

    /// Runs the whole assessment; returns the sealed report. Three stages overlap:
    /// the next page is fetched while the current one is opened (decrypted, unpacked,
    /// parsed) on one thread and fed to the assessor on another.
    pub async fn compute(
        &self,
        project: ProjectId,
        options: AssessOptions,
        done: Arc<AtomicU64>,
    ) -> domain::Result<Vec<u8>> {
        let started = std::time::Instant::now();
        let mut assessor = Assessor::new(options, Utc::now());
        assessor.expect(self.store.count_records(project).await?);
        let joined =
            |e: tokio::task::JoinError| DomainError::Internal(format!("assessment task: {e}"));
        let stop = self.background.stopping();
        let project_vault = self.keys.vault(project).await?;
        let (assessor, findings, _) = scan::scan(
            &self.store,
            project,
            &stop,
            &done,
            (assessor, Vec::<(u64, Finding)>::new(), 0u64),
            |(mut assessor, mut findings, mut seq), page| {
                let (vault, store, done) =
                    (project_vault.clone(), self.store.clone(), done.clone());
                async move {
                    let count = page.len() as u64;
                    let (opened, assessor, page_findings) =
                        tokio::task::spawn_blocking(move || {
                            let mut found = Vec::new();
                            let opened =
                                assess_page(&vault, project, page, &mut assessor, &mut found);
                            (opened, assessor, found)
                        })
                        .await
                        .map_err(joined)?;
                    opened?;
                    for finding in page_findings {
                        seq += 1;
                        findings.push((seq, finding));
                    }
                    if findings.len() >= FINDINGS_BATCH {
                        let records_done = done.load(Ordering::Relaxed) + count;
                        store
                            .save_assessment_progress(project, records_done, &findings)
                            .await?;
                        findings.clear();
                    }
                    Ok((assessor, findings, seq))
                }
            },
        )
        .await?;
        let records_done = done.load(Ordering::Relaxed);
        self.store
            .save_assessment_progress(project, records_done, &findings)
            .await?;
        let report = tokio::task::spawn_blocking(move || assessor.finish())
            .await
            .map_err(joined)?;
        tracing::info!(
            project = %project,
            records = records_done,
            seconds = started.elapsed().as_secs_f64(),
            "assessment computed"
        );
        self.seal(project, &report).await
    }

    pub async fn seal(&self, project: ProjectId, report: &Report) -> domain::Result<Vec<u8>> {
        let json = serde_json::to_vec(report)
            .map_err(|e| DomainError::Internal(format!("report encoding: {e}")))?;
        Ok(self
            .keys
            .vault(project)
            .await?
            .seal(&json, context(project).as_bytes()))
    }

    pub async fn open(&self, project: ProjectId, sealed: &[u8]) -> domain::Result<Report> {
        let json = self
            .keys
            .vault(project)
            .await?
            .open(sealed, context(project).as_bytes())
            .map_err(|e| DomainError::Internal(format!("assessment report: {e}")))?;
        serde_json::from_slice(&json)
            .map_err(|e| DomainError::Internal(format!("assessment report: {e}")))
    }

    /// Keeps reports current: once an upload of a project that has a report is read,
    /// the report is computed again (audited as Ferry's own doing), with the options
    /// it was last computed with. Ends when Ferry stops.
    pub fn keep_current(&self, mut settled: broadcast::Receiver<(ProjectId, UploadId)>) {
        let this = self.clone();
        let stop = self.background.stopping();
        self.background
            .spawn_logged("assessment refresher", "every project", async move {
                loop {
                    tokio::select! {
                        message = settled.recv() => match message {
                            Ok((project, _)) => {
                                if let Err(err) = this.refresh(project).await {
                                    tracing::warn!(project = %project, error = %err, "cannot refresh the assessment");
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => return Ok(()),
                        },
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            });
    }

    /// Computes a project's report again if it has one that is not being computed.
    pub async fn refresh(&self, project: ProjectId) -> domain::Result<()> {
        let Some(row) = self.store.assessment(project).await? else {
            return Ok(());
        };
        if row.status == AssessmentStatus::Running {
            return Ok(());
        }
        let options = match row.sealed_report {
            Some(sealed) => self
                .open(project, &sealed)
                .await
                .map(|report| report.options)
                .unwrap_or_default(),
            None => Default::default(),
        };
        let total = self.store.count_records(project).await?;
        if total == 0 {
            return Ok(());
        }
        if self
            .begin(project, total, "after an upload was read")
            .await?
        {
            self.spawn(project, options);
        }
        Ok(())
    }

    /// Marks the assessment running as Ferry's own doing (audited without an actor);
    /// false when one is running already, which then counts the records itself.
    pub async fn begin(&self, project: ProjectId, total: u64, why: &str) -> domain::Result<bool> {
        let now = Utc::now();
        let audit = NewAuditEntry::anonymous(
            None,
            now,
            AuditAction::AssessmentStarted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!("{total} records, {why}"));
        match self
            .store
            .start_assessment(project, total, now, &audit)
            .await
        {
            Ok(()) => Ok(true),
            Err(DomainError::Conflict(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Assessments a stopped server left running are marked failed, to be started again.
    pub async fn settle_interrupted(&self) -> domain::Result<()> {
        for project in self.store.running_assessments().await? {
            tracing::info!(project = %project, "an assessment was interrupted");
            self.store
                .finish_assessment(
                    project,
                    Err("the server stopped while the assessment ran; start it again"),
                    Utc::now(),
                )
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl AssessmentRunner for Assessments {
    fn spawn(&self, project: ProjectId, options: AssessOptions) {
        Assessments::spawn(self, project, options);
    }

    fn progress(&self, project: ProjectId) -> Option<u64> {
        Assessments::progress(self, project)
    }

    async fn open_report(&self, project: ProjectId, sealed: &[u8]) -> domain::Result<Report> {
        self.open(project, sealed).await
    }
}

/// Records opened per hand-over between the opening and the assessing thread.
const SLICE: usize = 250;

/// Opens a page of sealed records on one thread and feeds them, in order, to the
/// assessor on this one.
fn assess_page(
    vault: &Vault,
    project: ProjectId,
    page: Vec<(String, UploadId, Vec<u8>)>,
    assessor: &mut Assessor,
    found: &mut Vec<Finding>,
) -> domain::Result<()> {
    std::thread::scope(|scope| {
        let (slices, opened) =
            std::sync::mpsc::sync_channel::<domain::Result<Vec<(UploadId, NormalizedUser)>>>(4);
        let page = &page;
        scope.spawn(move || {
            for slice in page.chunks(SLICE) {
                let users = slice
                    .iter()
                    .map(|(id, upload, sealed)| {
                        records::open(vault, project, id, sealed).map(|user| (*upload, user))
                    })
                    .collect();
                if slices.send(users).is_err() {
                    return;
                }
            }
        });
        for users in opened {
            for (upload, user) in users? {
                assessor.add(upload, &user, &mut |f| found.push(f));
            }
        }
        Ok(())
    })
}
