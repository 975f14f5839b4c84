//! The use-cases of runs: test runs on a sample, the real run with its pre-flight
//! checks and downtime window, controls (start now, pause, resume, cancel), the run
//! page's view, failed records by class, the crosswalk, retries and rollbacks.
//! Owners and administrators run and control; support staff see runs and their
//! failed records in the projects assigned to them.

use super::Ferry;
use crate::numbers::grouped;
use crate::{
    DomainError, Result,
    accounts::Actor,
    assess::AssessmentStatus,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{ProjectId, RunId},
    pagination::{Page, PageRequest},
    ports::{ClassCount, RecordFilter, RunRecord, RunRecords, Sample, Store},
    roles::Permission,
    runs::{
        GroupSummary, MAX_SAMPLE, Preflight, Progress, ReadBack, RealRunRequest, ReconcileRequest,
        RunSettings, SampleHow, SampleSpec, TestRunRequest, Tuning, ask_password_attribute,
        stratify,
    },
    runs::{NewRun, Phase, Placed, Run, RunEvent, RunKind, RunState, Window},
    scim::target::{StoredTarget, TargetRole, TargetSecrets},
    user_types::{PasswordStrategy, UserTypes},
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Records listed per page at most.
pub const MAX_RECORDS_PAGE: u32 = 1_000;
/// A discovery older than this is refreshed before a real run.
const DISCOVERY_FRESH_HOURS: i64 = 24;

/// Where the run's window stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WindowView {
    pub window: Window,
    pub placed: Placed,
    /// `before`, `open` or `over`.
    pub phase: String,
    /// Until it opens (before) or closes (open).
    pub seconds: u64,
}

/// One run as its page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunView {
    pub run: Run,
    pub settings: RunSettings,
    pub progress: Progress,
    /// Why it is paused, in words.
    pub paused_because: Option<String>,
    pub window: Option<WindowView>,
    /// Failed and skipped records per class.
    pub classes: Vec<ClassCount>,
    pub groups: Option<GroupSummary>,
    /// A test run's read-back (owners and administrators only: it quotes values).
    pub readback: Option<ReadBack>,
    /// A reconciliation's users in the target that no run recorded (owners and
    /// administrators only).
    pub extra_users: Option<crate::runs::ExtraUsers>,
    /// Whether the actor may control it.
    pub may_control: bool,
}

/// A page of a run's records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordsPage {
    pub records: Vec<RunRecord>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next_after: Option<u64>,
}

/// What an administrator does to a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// A scheduled run starts before its window.
    StartNow,
    Pause,
    Resume,
    Cancel,
}

/// Moves a run by `event` after the rules allow it, audited (as Ferry's own doing
/// without an actor), compared and set in the store: a run another instance moved
/// first answers a conflict.
pub async fn advance(
    store: &dyn Store,
    run: &Run,
    event: &RunEvent,
    actor: Option<&Actor>,
    now: DateTime<Utc>,
) -> Result<Run> {
    let to = run
        .state
        .on(event)
        .map_err(|refused| DomainError::Conflict(refused.to_string()))?;
    let reason = match event {
        RunEvent::Pause(reason) => Some(reason),
        _ => None,
    };
    let detail = match reason {
        Some(reason) => format!(
            "{} → {}: {}",
            run.state.as_str(),
            to.as_str(),
            reason.describe()
        ),
        None => format!("{} → {}", run.state.as_str(), to.as_str()),
    };
    let audit = match actor {
        Some(actor) => NewAuditEntry::by(
            actor,
            now,
            AuditAction::RunStateChanged,
            ObjectKind::Run,
            run.id,
        ),
        None => NewAuditEntry::anonymous(
            None,
            now,
            AuditAction::RunStateChanged,
            ObjectKind::Run,
            run.id,
        ),
    }
    .in_project(run.project_id)
    .detail(detail);
    store
        .set_run_state(run.id, run.state, to, reason, now, &audit)
        .await
}

/// A run about to be made: what it is, where its records come from, whether it waits
/// for its window.
pub(super) struct Launch<'a> {
    pub(super) project: ProjectId,
    pub(super) kind: RunKind,
    pub(super) target_role: String,
    pub(super) mapping_version: Option<u32>,
    pub(super) parent: Option<RunId>,
    pub(super) settings: &'a RunSettings,
    pub(super) records: RunRecords<'a>,
    pub(super) schedule: bool,
    /// A decision taken with it, for its audit entry (colliding records accepted).
    pub(super) note: Option<String>,
}

/// The colliding records the data check passed on because an administrator accepted
/// them, in words for the run's audit entry.
fn accepted_collisions(preflight: &Preflight) -> Option<String> {
    preflight
        .checks
        .iter()
        .find(|c| c.name == "data" && c.passed)
        .and_then(|c| c.acceptable)
        .map(|n| format!("accepted {n} colliding records to fail into review"))
}

/// The error class of records a mapping rule rejected (the run engine's).
const MAPPING_CLASS: &str = "mapping";

/// What retrying a run's failed records would do, shown before it is confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryPlan {
    /// Records sent again (the number to confirm).
    pub failed: u64,
    /// `production` or `test`: where they go.
    pub target_role: String,
    /// The mapping version the retry uses (the latest).
    pub mapping_version: u32,
    /// What changed since the run, in words; empty when nothing did, and records that
    /// failed on their data would fail the same way again.
    pub changed: Vec<String>,
    /// Of the failed records, those a mapping rule rejected.
    pub failed_on_mapping: u64,
    /// Against production: the pre-flight checks that concern a retry, run now (the
    /// retry is refused unless they pass).
    pub checks: Option<Preflight>,
}

/// What a run needs from the project before it may be made.
struct Ready {
    mapping_version: u32,
    user_types: UserTypes,
}

impl Ferry {
    async fn may_view_runs(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        self.project(actor, project).await.map(|_| ())
    }

    async fn may_run(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await.map(|_| ())
    }

    async fn run_in(&self, project: ProjectId, id: RunId) -> Result<Run> {
        self.store
            .run(id)
            .await?
            .filter(|j| j.project_id == project)
            .ok_or_else(|| DomainError::NotFound("run".into()))
    }

    /// The latest mapping version without problems and user types that compile.
    async fn ready(&self, project: ProjectId) -> Result<Ready> {
        let version = self
            .store
            .mapping_version(project, None)
            .await?
            .ok_or_else(|| {
                DomainError::invalid(
                    "mapping",
                    "no mapping is saved yet: save one on the Mapping page",
                )
            })?;
        let view = self.view_of_saved(project, &version).await?;
        if let Some(problem) = view.first() {
            return Err(DomainError::invalid(
                "mapping",
                format!(
                    "mapping version {} has {} problem(s); fix them first ({})",
                    version.version,
                    view.len(),
                    problem.message
                ),
            ));
        }
        let user_types = self.saved_user_types(project).await?;
        if let Some(problem) = user_types.problems.first() {
            return Err(DomainError::invalid(
                "user_types",
                format!(
                    "the user types have problems; fix them first ({})",
                    problem.message
                ),
            ));
        }
        Ok(Ready {
            mapping_version: version.version,
            user_types: user_types.user_types,
        })
    }

    async fn view_of_saved(
        &self,
        project: ProjectId,
        version: &crate::mapping::versions::MappingVersion,
    ) -> Result<Vec<crate::mapping::RuleProblem>> {
        let discovery = self.production_discovery(project).await?;
        let mut problems = version
            .mapping
            .compile(discovery.as_ref())
            .err()
            .unwrap_or_default();
        problems.extend(
            self.confidential_problems(project, &version.mapping)
                .await?,
        );
        Ok(problems)
    }

    async fn run_target(&self, project: ProjectId, role: TargetRole) -> Result<StoredTarget> {
        self.store.target(project, role).await?.ok_or_else(|| {
            DomainError::invalid(
                "target",
                format!(
                    "no {} is set up: set it up on the Target page first",
                    role.label().to_lowercase()
                ),
            )
        })
    }

    pub(super) async fn no_active_run(&self, project: ProjectId) -> Result<()> {
        let recent = self
            .store
            .runs(project, PageRequest::new(Some(0), Some(100)))
            .await?;
        match recent.items.iter().find(|j| j.state.is_active()) {
            Some(active) => Err(DomainError::Conflict(format!(
                "another run of this project is {} ({}): finish, pause and cancel, or wait for it first",
                active.state.as_str(),
                active.kind.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// Creates the run, audited, then starts it (or schedules it) and wakes the engine.
    async fn launch(&self, actor: &Actor, what: Launch<'_>) -> Result<Run> {
        self.launch_by(Some(actor), what).await
    }

    /// Creates and starts (or schedules) a run for `actor`, or for Ferry itself when
    /// a plan starts it (`None`).
    pub(super) async fn launch_by(&self, actor: Option<&Actor>, what: Launch<'_>) -> Result<Run> {
        let engine = self.workers.runs.as_ref();
        let run = NewRun {
            id: RunId(self.secrets.new_uuid()),
            project_id: what.project,
            kind: what.kind,
            target_role: what.target_role,
            mapping_version: what.mapping_version,
            parent: what.parent,
            settings: what.settings.to_json(),
            created_by: actor.map(|a| a.account_id),
            created_at: self.now(),
        };
        let (records, schedule) = (what.records, what.schedule);
        let now = self.now();
        let audit = match actor {
            Some(actor) => {
                NewAuditEntry::by(actor, now, AuditAction::RunCreated, ObjectKind::Run, run.id)
            }
            None => NewAuditEntry::scheduled(now, AuditAction::RunCreated, ObjectKind::Run, run.id),
        };
        let audit = audit.in_project(run.project_id).detail(format!(
            "{} against the {} target{}",
            run.kind.as_str(),
            run.target_role,
            what.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default()
        ));
        let created = self.store.create_run(&run, records, &audit).await?;
        if created.total == 0 {
            let cancelled =
                advance(self.store.as_ref(), &created, &RunEvent::Cancel, actor, now).await?;
            return Err(DomainError::invalid(
                "records",
                format!(
                    "the run would hold no records, so it was cancelled (run {})",
                    cancelled.id
                ),
            ));
        }
        let event = if schedule {
            RunEvent::Schedule
        } else {
            RunEvent::Start
        };
        let run = advance(self.store.as_ref(), &created, &event, actor, now).await?;
        if run.state == RunState::Running {
            engine.wake(run.id);
        }
        Ok(run)
    }

    /// A project's runs, newest first.
    pub async fn runs(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<Run>> {
        self.may_view_runs(actor, project).await?;
        self.store.runs(project, page).await
    }

    /// One run with its live progress, classes of failures and what its finish found.
    pub async fn run(&self, actor: &Actor, project: ProjectId, id: RunId) -> Result<RunView> {
        let engine = self.workers.runs.as_ref();
        self.may_view_runs(actor, project).await?;
        let run = self.run_in(project, id).await?;
        let settings = RunSettings::from_json(&run.settings).map_err(DomainError::Internal)?;
        let now = self.now();
        let window = match (&settings.window, settings.placed) {
            (Some(window), Some(placed)) => {
                let (phase, seconds) = match placed.phase(now) {
                    Phase::Before(d) => ("before", d),
                    Phase::Open(d) => ("open", d),
                    Phase::Over => ("over", Duration::zero()),
                };
                Some(WindowView {
                    window: window.clone(),
                    placed,
                    phase: phase.into(),
                    seconds: u64::try_from(seconds.num_seconds()).unwrap_or(0),
                })
            }
            _ => None,
        };
        let may_control = actor.role.allows(Permission::ManageProjects);
        let (summary, sealed) = self.store.run_finish(id).await?;
        let (readback, extra_users) = match sealed {
            Some(sealed) if may_control && run.kind == RunKind::Reconcile => {
                (None, Some(engine.open_extra_users(&run, &sealed).await?))
            }
            Some(sealed) if may_control => (Some(engine.open_readback(&run, &sealed).await?), None),
            _ => (None, None),
        };
        let mut classes = self.store.error_classes(id).await?;
        // The target's words may quote a user's values.
        if !self.sees_personal_data(actor).await? {
            for class in &mut classes {
                class.example = class.example.as_deref().map(crate::review::pattern);
            }
        }
        Ok(RunView {
            progress: engine.progress(&run),
            paused_because: run.pause_reason.as_ref().map(|r| r.describe()),
            classes,
            groups: summary.and_then(|s| serde_json::from_str(&s).ok()),
            readback,
            extra_users,
            may_control,
            window,
            settings,
            run,
        })
    }

    /// The run's progress alone (for the event stream's first message).
    pub async fn run_progress(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
    ) -> Result<Progress> {
        let engine = self.workers.runs.as_ref();
        self.may_view_runs(actor, project).await?;
        let run = self.run_in(project, id).await?;
        Ok(engine.progress(&run))
    }

    /// A reconciliation: every user the production runs put in the target (or a random
    /// sample of them) read back by its SCIM id and compared with what the latest
    /// mapping makes of its record, as a run of the engine — paced, paused, resumed and
    /// cancelled like any other. What differs or is gone fails into the review queue.
    /// At cutover: a newer export of the same source becomes a delta run against
    /// production — its new users created, its changed ones PATCHed where the target
    /// differs, those gone from it handled by `missing` — once a real run finished.
    pub async fn start_delta(
        &self,
        actor: &Actor,
        project: ProjectId,
        request: crate::runs::delta::DeltaRequest,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        check_pace(request.max_users_per_minute)?;
        let upload_id: crate::ids::UploadId = request
            .upload
            .parse()
            .map_err(|_| DomainError::invalid("upload", "not an upload id"))?;
        let upload = self
            .store
            .upload(upload_id)
            .await?
            .filter(|u| u.project_id == project)
            .ok_or_else(|| DomainError::NotFound("upload".into()))?;
        if upload.status != crate::uploads::UploadStatus::Parsed || upload.purged_at.is_some() {
            return Err(DomainError::invalid(
                "upload",
                "the newer export must be read (and not purged) before its delta runs",
            ));
        }
        let runs = self
            .store
            .runs(project, PageRequest::new(Some(0), Some(200)))
            .await?
            .items;
        let real = runs
            .iter()
            .filter(|r| {
                r.kind == RunKind::RealRun
                    && r.target_role == TargetRole::Production.as_str()
                    && matches!(r.state, RunState::Succeeded | RunState::Failed)
            })
            .filter_map(|r| r.finished_at)
            .max();
        let Some(real) = real else {
            return Err(DomainError::invalid(
                "upload",
                "a delta follows a real run: run the real migration first",
            ));
        };
        if upload.created_at < real {
            return Err(DomainError::invalid(
                "upload",
                "this export was uploaded before the real run: upload the newer export first",
            ));
        }
        let (mapping_version, settings) = self
            .production_settings(
                project,
                Tuning {
                    max_users_per_minute: request.max_users_per_minute,
                    groups: false,
                    ..Tuning::default()
                },
            )
            .await?;
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::DeltaRun,
                target_role: TargetRole::Production.as_str().into(),
                mapping_version: Some(mapping_version),
                parent: None,
                settings: &settings,
                records: RunRecords::Delta {
                    upload: upload_id,
                    missing: request.missing.decision(),
                },
                schedule: false,
                note: Some(format!(
                    "{}; users gone from it: {}",
                    upload.file_name,
                    request.missing.label()
                )),
            },
        )
        .await
    }

    /// The settings of a run against production with `tuning`: the latest mapping and
    /// user types ready, no other run active, the target's policy for users it has.
    async fn production_settings(
        &self,
        project: ProjectId,
        tuning: Tuning,
    ) -> Result<(u32, RunSettings)> {
        let ready = self.ready(project).await?;
        self.no_active_run(project).await?;
        let target = self.run_target(project, TargetRole::Production).await?;
        Ok((
            ready.mapping_version,
            RunSettings {
                tuning,
                user_types: ready.user_types,
                policy: target.settings.on_existing,
                sample: None,
                window: None,
                placed: None,
            },
        ))
    }

    pub async fn start_reconciliation(
        &self,
        actor: &Actor,
        project: ProjectId,
        request: ReconcileRequest,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        if request.sample == Some(0) {
            return Err(DomainError::invalid(
                "sample",
                "at least 1 user (or empty for every user)",
            ));
        }
        check_pace(request.max_users_per_minute)?;
        let (mapping_version, settings) = self
            .production_settings(
                project,
                Tuning {
                    max_users_per_minute: request.max_users_per_minute,
                    groups: false,
                    // Findings are what a reconciliation is for: only a target that has
                    // lost every user of a long stretch pauses it.
                    failure_window: 100_000,
                    failure_threshold: 100_000,
                    ..Tuning::default()
                },
            )
            .await?;
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::Reconcile,
                target_role: TargetRole::Production.as_str().into(),
                mapping_version: Some(mapping_version),
                parent: None,
                settings: &settings,
                records: RunRecords::InTarget {
                    sample: request.sample,
                },
                schedule: false,
                note: Some(match request.sample {
                    Some(n) => format!("{} users chosen at random", grouped(u64::from(n))),
                    None => "every user in the target".into(),
                }),
            },
        )
        .await
    }

    /// A test run: a sample of the moving users, with the latest mapping, against the
    /// test target (or production), started at once.
    pub async fn start_test_run(
        &self,
        actor: &Actor,
        project: ProjectId,
        request: TestRunRequest,
    ) -> Result<Run> {
        let work = self.workers.records.as_ref();
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        request
            .tuning
            .check()
            .map_err(|(field, message)| DomainError::invalid(field, message))?;
        if !(1..=MAX_SAMPLE).contains(&request.size) {
            return Err(DomainError::invalid(
                "size",
                format!("a test run takes between 1 and {MAX_SAMPLE} records"),
            ));
        }
        let role = TargetRole::parse(&request.target)
            .map_err(|_| DomainError::invalid("target", "the target is `test` or `production`"))?;
        let ready = self.ready(project).await?;
        let target = self.run_target(project, role).await?;
        self.no_active_run(project).await?;
        // A new seed, recorded with the run, when none is given.
        let seed = request
            .seed
            .unwrap_or_else(|| self.secrets.new_uuid().as_u64_pair().1 >> 11);
        let placed = ready
            .user_types
            .compile(self.now())
            .map_err(|p| DomainError::invalid("user_types", p[0].message.clone()))?;
        // Candidates: a random draw several times the size, so that after leaving out
        // the users who stay behind there are enough (and every type is represented).
        let draw = request.size.saturating_mul(4).min(4 * MAX_SAMPLE);
        let sampled = work.sample(project, &Sample::Random { seed }, draw).await?;
        let candidates: Vec<(String, Option<usize>)> = sampled
            .records
            .iter()
            .map(|u| (u.source_id.clone(), placed.place(u)))
            .collect();
        let ids: Vec<String> = match request.how {
            SampleHow::Stratified => {
                stratify(&candidates, |s| placed.included(s), request.size as usize)
            }
            SampleHow::Random => candidates
                .iter()
                .filter(|(_, s)| s.is_some_and(|s| placed.included(s)))
                .take(request.size as usize)
                .map(|(id, _)| id.clone())
                .collect(),
        };
        if ids.is_empty() {
            return Err(DomainError::invalid(
                "size",
                "no record of a moving user type was found: check the user types on the Goals page",
            ));
        }
        let settings = RunSettings {
            tuning: request.tuning,
            user_types: ready.user_types,
            policy: target.settings.on_existing,
            sample: Some(SampleSpec {
                size: request.size,
                how: request.how,
                seed,
            }),
            window: None,
            placed: None,
        };
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::TestRun,
                target_role: role.as_str().into(),
                mapping_version: Some(ready.mapping_version),
                parent: None,
                settings: &settings,
                records: RunRecords::Ids(&ids),
                schedule: false,
                note: None,
            },
        )
        .await
    }

    /// The checks a real run must pass, run now. The production target's connection is
    /// tested live (and its discovery kept, so it is fresh).
    ///
    /// `accept_collisions`: colliding records the administrator accepts to fail into
    /// review; the data check then passes when exactly that many collide.
    pub async fn preflight(
        &self,
        actor: &Actor,
        project: ProjectId,
        accept_collisions: Option<u64>,
    ) -> Result<Preflight> {
        self.may_run(actor, project).await?;
        self.checks_before_run(actor, project, accept_collisions)
            .await
    }

    /// The pre-flight checks themselves, for whoever may start the run asking.
    pub(super) async fn checks_before_run(
        &self,
        actor: &Actor,
        project: ProjectId,
        accept_collisions: Option<u64>,
    ) -> Result<Preflight> {
        let connector = self.workers.targets.as_ref();
        let mut checks = Preflight { checks: Vec::new() };
        let now = self.now();
        let stored = self.store.target(project, TargetRole::Production).await?;
        let report = match &stored {
            None => {
                checks.add(
                    "target",
                    "Target reachable and authorised",
                    Err("no production target is set up".into()),
                );
                None
            }
            Some(stored) => {
                let secrets: TargetSecrets = connector
                    .open_secrets(project, TargetRole::Production, &stored.sealed_secrets)
                    .await?;
                let report = connector
                    .test_connection(&stored.settings, &secrets, now)
                    .await;
                let audit = NewAuditEntry::by(
                    actor,
                    now,
                    AuditAction::TargetTested,
                    ObjectKind::Project,
                    project,
                )
                .in_project(project)
                .detail(format!(
                    "production: {} (pre-flight)",
                    if report.passed() { "passed" } else { "failed" }
                ));
                self.store
                    .save_connection_report(project, TargetRole::Production, &report, &audit)
                    .await?;
                checks.add(
                    "target",
                    "Target reachable and authorised",
                    if report.passed() {
                        Ok(format!("{} answered every step", stored.settings.base_url))
                    } else {
                        let failed = report
                            .steps
                            .iter()
                            .find(|s| s.status == crate::scim::discovery::StepStatus::Failed);
                        Err(match failed {
                            Some(step) => format!("{}: {}", step.kind.label(), step.detail),
                            None => "the connection test did not pass".into(),
                        })
                    },
                );
                Some(report)
            }
        };
        let discovery = report.as_ref().and_then(|r| r.discovery.as_ref());
        checks.add(
            "discovery",
            "Target limits and schemas known",
            match (discovery, &report) {
                (Some(d), Some(r))
                    if now - r.tested_at < Duration::hours(DISCOVERY_FRESH_HOURS) =>
                {
                    Ok(format!(
                        "bulk {}, {} operations and {} bytes per request, {} user schemas",
                        if d.config.bulk_supported {
                            "supported"
                        } else {
                            "not supported"
                        },
                        d.config.max_operations,
                        d.config.max_payload_size,
                        d.user_schemas().len()
                    ))
                }
                _ => Err("the target's configuration and schemas could not be read".into()),
            },
        );
        let ready = self.ready(project).await;
        checks.add(
            "mapping",
            "Mapping valid",
            match &ready {
                Ok(r) => Ok(format!(
                    "version {} checks against the target",
                    r.mapping_version
                )),
                Err(DomainError::Invalid { field, message }) if field == "mapping" => {
                    Err(message.clone())
                }
                Err(DomainError::Invalid { .. }) => {
                    Ok("the latest version checks against the target".into())
                }
                Err(e) => return Err(e.clone()),
            },
        );
        let user_types = self.saved_user_types(project).await?;
        let moving_types = user_types
            .user_types
            .user_types
            .iter()
            .filter(|s| s.include)
            .count();
        checks.add(
            "user_types",
            "User types valid",
            match user_types.problems.first() {
                Some(p) => Err(p.message.clone()),
                None if moving_types == 0 => Err("no user type moves".into()),
                None => Ok(format!("{moving_types} user type(s) move")),
            },
        );
        let (data, acceptable) = self
            .data_check(project, &user_types.user_types, accept_collisions)
            .await?;
        checks.add("data", "No blocking data issues", data);
        if let Some(check) = checks.checks.last_mut() {
            check.acceptable = acceptable;
        }
        let ask = ask_password_attribute(discovery);
        let resets = user_types
            .user_types
            .user_types
            .iter()
            .filter(|s| s.include && s.password == PasswordStrategy::ForcedReset)
            .count();
        checks.add(
            "passwords",
            "Password handling",
            Ok(match (resets, ask) {
                (0, _) => "no user type uses a forced reset".into(),
                (_, Some(path)) => {
                    format!("forced resets set {path}: the target invites each user")
                }
                (_, None) => {
                    "the target defines no askPassword attribute: users of forced-reset types \
                              get a random password and reset it through the target's \"forgot \
                              password\""
                        .into()
                }
            }),
        );
        checks.add(
            "active_run",
            "No other run active",
            match self.no_active_run(project).await {
                Ok(()) => Ok("none".into()),
                Err(e) => Err(e.to_string()),
            },
        );
        use super::plan::PlanStanding;
        checks.add(
            "plan",
            "Plan approved and its acceptable impact met",
            match self.plan_standing(project).await? {
                // A team that writes a plan is held to it; one that does not is not
                // stopped for it (the Plan page says what the checks would be).
                PlanStanding::None => Ok("no plan saved: once one is, the run waits for \
                                          an owner's approval of its latest version"
                    .into()),
                PlanStanding::Approved(v) => Ok(format!(
                    "version {v} approved; every acceptable-impact number stated is met"
                )),
                PlanStanding::NotApproved(v) => Err(format!(
                    "the plan's latest version ({v}) is not approved: an owner approves it \
                     on the Plan page"
                )),
                PlanStanding::Unmet(v, unmet) => Err(format!(
                    "version {v} is approved, but the latest impact does not meet it: {}",
                    unmet
                        .iter()
                        .map(|t| match t.actual {
                            Some(actual) => format!("{} is {actual} (limit {})", t.label, t.limit),
                            None => format!("{}: {}", t.label, t.detail),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            },
        );
        Ok(checks)
    }

    /// Uploads read, records present, and the impact of the current mapping and user
    /// types computed without collisions on unique attributes.
    /// With the number of colliding records an administrator may accept, if any.
    async fn data_check(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
        accept_collisions: Option<u64>,
    ) -> Result<(std::result::Result<String, String>, Option<u64>)> {
        let work = self.workers.records.as_ref();
        let uploads = self
            .store
            .list_uploads(project, PageRequest::new(Some(0), Some(500)))
            .await?;
        if let Some(reading) = uploads.items.iter().find(|u| {
            matches!(
                u.status,
                crate::uploads::UploadStatus::Stored | crate::uploads::UploadStatus::Parsing
            )
        }) {
            return Ok((
                Err(format!("{} is still being read", reading.file_name)),
                None,
            ));
        }
        let records = self.store.count_records(project).await?;
        if records == 0 {
            return Ok((
                Err("the project has no records: upload an export".into()),
                None,
            ));
        }
        let latest = self.store.mapping_version(project, None).await?;
        let impact = self.store.impact(project).await?;
        let current = match (impact, &latest) {
            (Some(row), Some(v))
                if row.status == AssessmentStatus::Ready
                    && row.mapping == v.mapping
                    && row.user_types == *user_types =>
            {
                row.sealed_report
            }
            _ => None,
        };
        let (Some(sealed), Some(latest)) = (current, latest) else {
            return Ok((
                Err(
                    "compute the impact of the latest mapping and user types first (Mapping page)"
                        .into(),
                ),
                None,
            ));
        };
        let report = work.open_impact(project, &sealed).await?;
        let (outcome, acceptable) =
            Self::impact_blockers(&report, &latest.mapping, accept_collisions);
        Ok((
            outcome.map(|ok| format!("{} records read; {ok}", grouped(records))),
            acceptable,
        ))
    }

    /// The collisions and rejects of the current impact, for the data check: colliding
    /// records block the run unless an administrator accepts exactly as many to fail
    /// into review; the words say which rule and what to do.
    fn impact_blockers(
        report: &crate::mapping::impact::ImpactReport,
        mapping: &crate::mapping::Mapping,
        accept_collisions: Option<u64>,
    ) -> (std::result::Result<String, String>, Option<u64>) {
        let moving = format!(
            "{} users move; {} will fail their mapping and go to review",
            grouped(report.accepted + report.rejected),
            grouped(report.rejected)
        );
        let colliding: u64 = report.rules.iter().map(|r| r.collisions).sum();
        let Some(example) = report.collisions.first() else {
            return (Ok(moving), None);
        };
        let rules: Vec<String> = report
            .rules
            .iter()
            .filter(|r| r.collisions > 0)
            .map(|r| {
                let target = mapping
                    .rules
                    .get(r.rule)
                    .map_or(r.target.as_str(), |rule| rule.target.as_str());
                format!("{target} (rule {})", r.rule + 1)
            })
            .collect();
        if accept_collisions == Some(colliding) {
            return (
                Ok(format!(
                    "{moving}; {} colliding on {} accepted to fail into review",
                    grouped(colliding),
                    rules.join(", ")
                )),
                Some(colliding),
            );
        }
        (
            Err(format!(
                "{} records take a value another record took, on {} (for example {} and {}). \
                 Change that rule on the Mapping page so each record gets its own value \
                 (the legacy id, source_id, is unique), or accept that these records fail \
                 into review",
                grouped(colliding),
                rules.join(", "),
                example.first,
                example.second
            )),
            Some(colliding),
        )
    }

    /// The real run: every record of the project, against production, in a downtime
    /// window or now. Refused unless every pre-flight check passes.
    pub async fn start_real_run(
        &self,
        actor: &Actor,
        project: ProjectId,
        request: RealRunRequest,
    ) -> Result<(Run, Preflight)> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        request
            .tuning
            .check()
            .map_err(|(field, message)| DomainError::invalid(field, message))?;
        let placed = match &request.window {
            Some(window) => Some(self.place_window(window)?),
            None => None,
        };
        let preflight = self
            .preflight(actor, project, request.accept_collisions)
            .await?;
        preflight.require()?;
        let ready = self.ready(project).await?;
        let target = self.run_target(project, TargetRole::Production).await?;
        let settings = RunSettings {
            tuning: request.tuning,
            user_types: ready.user_types,
            policy: target.settings.on_existing,
            sample: None,
            window: request.window.clone(),
            placed,
        };
        let run = self
            .launch(
                actor,
                Launch {
                    project,
                    kind: RunKind::RealRun,
                    target_role: TargetRole::Production.as_str().into(),
                    mapping_version: Some(ready.mapping_version),
                    parent: None,
                    settings: &settings,
                    records: RunRecords::Project,
                    schedule: placed.is_some(),
                    note: accepted_collisions(&preflight),
                },
            )
            .await?;
        Ok((run, preflight))
    }

    /// Places a window on the timeline; one that is over already is refused.
    fn place_window(&self, window: &Window) -> Result<Placed> {
        let placed = window
            .place()
            .map_err(|(field, message)| DomainError::invalid(format!("window.{field}"), message))?;
        if placed.phase(self.now()) == Phase::Over {
            return Err(DomainError::invalid(
                "window.end",
                "the window is over already",
            ));
        }
        Ok(placed)
    }

    /// Replaces a run's settings (its window), audited with `detail`.
    async fn replace_settings(
        &self,
        actor: &Actor,
        run: &Run,
        settings: &RunSettings,
        detail: String,
    ) -> Result<Run> {
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::RunRescheduled,
            ObjectKind::Run,
            run.id,
        )
        .in_project(run.project_id)
        .detail(detail);
        self.store
            .set_run_settings(run.id, run.state, &settings.to_json(), &audit)
            .await
    }

    /// Gives a scheduled or paused run a new window (a paused one resumes when it opens).
    pub async fn reschedule(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
        window: Window,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        let run = self.run_in(project, id).await?;
        if !matches!(run.state, RunState::Scheduled | RunState::Paused) {
            return Err(DomainError::Conflict(format!(
                "a {} run cannot be given a window",
                run.state.as_str()
            )));
        }
        let placed = self.place_window(&window)?;
        let mut settings = RunSettings::from_json(&run.settings).map_err(DomainError::Internal)?;
        settings.window = Some(window.clone());
        settings.placed = Some(placed);
        let detail = format!("{} to {} ({})", window.start, window.end, window.zone);
        self.replace_settings(actor, &run, &settings, detail).await
    }

    /// Start now, pause, resume or cancel.
    pub async fn control_run(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
        control: Control,
    ) -> Result<Run> {
        let engine = self.workers.runs.as_ref();
        self.may_run(actor, project).await?;
        let run = self.run_in(project, id).await?;
        let event = match control {
            Control::StartNow => RunEvent::Start,
            Control::Pause => RunEvent::Pause(crate::runs::PauseReason::Manual),
            Control::Resume => RunEvent::Resume,
            Control::Cancel => RunEvent::Cancel,
        };
        if control == Control::Resume
            && let Some(crate::runs::PauseReason::WindowEnded) = run.pause_reason
            && let Ok(settings) = RunSettings::from_json(&run.settings)
            && let Some(placed) = settings.placed
            && placed.phase(self.now()) == Phase::Over
        {
            // Resuming by hand after the window is allowed: the admin decided to go on
            // outside it; the scheduler will not pause it again for the old window.
            let mut settings = settings;
            settings.placed = None;
            settings.window = None;
            self.replace_settings(
                actor,
                &run,
                &settings,
                "resumed outside its window: no window any more".into(),
            )
            .await?;
        }
        let run = advance(self.store.as_ref(), &run, &event, Some(actor), self.now()).await?;
        match run.state {
            RunState::Running => engine.wake(run.id),
            _ => engine.stop(run.id),
        }
        Ok(run)
    }

    /// A run's records in order, filtered by state and error class.
    pub async fn run_records(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
        filter: &RecordFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<RecordsPage> {
        self.may_view_runs(actor, project).await?;
        self.run_in(project, id).await?;
        let limit = limit.clamp(1, MAX_RECORDS_PAGE);
        let mut records = self.store.run_records(id, filter, after, limit).await?;
        let next_after = (records.len() == limit as usize)
            .then(|| records.last().map(|r| r.seq))
            .flatten();
        // The target's words may quote a user's values.
        if !self.sees_personal_data(actor).await? {
            for record in &mut records {
                record.error_detail = record.error_detail.as_deref().map(crate::review::pattern);
            }
        }
        Ok(RecordsPage {
            records,
            next_after,
        })
    }

    /// Checks the actor may download the crosswalk (and audits it); the pages follow
    /// through [`Ferry::crosswalk_page`].
    pub async fn open_crosswalk(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
    ) -> Result<Run> {
        self.may_run(actor, project).await?;
        let run = self.run_in(project, id).await?;
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::CrosswalkDownloaded,
            ObjectKind::Run,
            id,
        )
        .in_project(project);
        self.store.append_audit(&audit).await?;
        Ok(run)
    }

    /// A page of the crosswalk: records with a SCIM id (created, updated, skipped)
    /// among the next `limit` after `after`, and where the next page starts (`None`
    /// at the end).
    pub async fn crosswalk_page(
        &self,
        run: &Run,
        after: Option<u64>,
        limit: u32,
    ) -> Result<(Vec<RunRecord>, Option<u64>)> {
        let filter = RecordFilter::default();
        let mut page = self
            .store
            .run_records(run.id, &filter, after, limit)
            .await?;
        let next = (page.len() == limit as usize)
            .then(|| page.last().map(|r| r.seq))
            .flatten();
        page.retain(|r| r.scim_id.is_some() && r.state != crate::runs::RecordState::Deleted);
        Ok((page, next))
    }

    /// The failed records of a finished (or paused) run as a new run, with the latest
    /// mapping and user types.
    /// What retrying a run's failed records would do and what changed since the run:
    /// shown before the retry is confirmed.
    pub async fn retry_plan(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
    ) -> Result<RetryPlan> {
        self.may_run(actor, project).await?;
        let parent = self.retryable(project, id).await?;
        let ready = self.ready(project).await?;
        let old = RunSettings::from_json(&parent.settings).map_err(DomainError::Internal)?;
        let mut changed = Vec::new();
        match parent.mapping_version {
            Some(v) if v == ready.mapping_version => {}
            Some(v) => changed.push(format!(
                "the mapping: version {} (the run used version {v})",
                ready.mapping_version
            )),
            None => changed.push(format!("the mapping: version {}", ready.mapping_version)),
        }
        if old.user_types != ready.user_types {
            changed.push("the user types".into());
        }
        let classes = self.store.error_classes(id).await?;
        let on_data: u64 = classes
            .iter()
            .filter(|c| {
                c.state == crate::runs::RecordState::Failed && c.error_class == MAPPING_CLASS
            })
            .map(|c| c.count)
            .sum();
        let checks = self.retry_checks(actor, project, &parent).await?;
        Ok(RetryPlan {
            failed: parent.counts.failed,
            target_role: parent.target_role.clone(),
            mapping_version: ready.mapping_version,
            changed,
            failed_on_mapping: on_data,
            checks,
        })
    }

    /// A retry against production passes the real run's checks that concern it (the
    /// target reachable and described, the mapping and user types sound, no other run
    /// active); the data check is about every record, not these.
    async fn retry_checks(
        &self,
        actor: &Actor,
        project: ProjectId,
        parent: &Run,
    ) -> Result<Option<Preflight>> {
        if parent.target_role != TargetRole::Production.as_str() {
            return Ok(None);
        }
        Ok(Some(self.retry_preflight(actor, project).await?))
    }

    /// The real run's checks that concern a retry against production: the target
    /// reachable and described, the mapping and user types sound, no other run active
    /// (the data check is about every record, not the retried ones).
    pub(super) async fn retry_preflight(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Preflight> {
        let mut checks = self.checks_before_run(actor, project, None).await?;
        checks.checks.retain(|c| c.name != "data");
        Ok(checks)
    }

    /// A finished run whose failed records may be retried.
    async fn retryable(&self, project: ProjectId, id: RunId) -> Result<Run> {
        let parent = self.run_in(project, id).await?;
        if !parent.state.is_final() {
            return Err(DomainError::Conflict(
                "the run is still active: cancel it or let it finish before retrying its failures"
                    .into(),
            ));
        }
        if parent.counts.failed == 0 {
            return Err(DomainError::invalid(
                "records",
                "the run has no failed records",
            ));
        }
        if parent.kind == RunKind::Rollback {
            return Err(DomainError::invalid(
                "kind",
                "a rollback is retried by rolling back again",
            ));
        }
        Ok(parent)
    }

    /// Retries a finished run's failed records with the latest mapping and user types.
    /// `confirm` must be the number of failed records, as the retry plan showed it.
    pub async fn retry_failed(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
        confirm: u64,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        let parent = self.retryable(project, id).await?;
        if confirm != parent.counts.failed {
            return Err(DomainError::invalid(
                "confirm",
                format!(
                    "confirm the number of failed records the retry sends again ({})",
                    parent.counts.failed
                ),
            ));
        }
        if let Some(checks) = self.retry_checks(actor, project, &parent).await? {
            checks.require()?;
        }
        let ready = self.ready(project).await?;
        self.no_active_run(project).await?;
        let role = TargetRole::parse(&parent.target_role).unwrap_or(TargetRole::Production);
        let target = self.run_target(project, role).await?;
        let old = RunSettings::from_json(&parent.settings).map_err(DomainError::Internal)?;
        // A reconciliation's failures are users in the target that differ (or are
        // gone): sent again, they replace what the target holds, at a push's pace.
        let found = parent.kind == RunKind::Reconcile;
        let settings = RunSettings {
            tuning: if found { Tuning::default() } else { old.tuning },
            user_types: ready.user_types,
            policy: if found {
                crate::scim::target::ExistingPolicy::Update
            } else {
                target.settings.on_existing
            },
            sample: None,
            window: None,
            placed: None,
        };
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::Retry,
                target_role: parent.target_role.clone(),
                mapping_version: Some(ready.mapping_version),
                parent: Some(parent.id),
                settings: &settings,
                records: RunRecords::FailedOf(parent.id),
                schedule: false,
                note: None,
            },
        )
        .await
    }

    /// A retry run of exactly these users against production, with the latest mapping,
    /// user types and corrections; users an earlier attempt may have created are
    /// looked up by their `externalId` before they are sent. Whoever may act on the
    /// review queue may start it; it passes the checks a retry passes.
    pub(super) async fn launch_chosen_retry(
        &self,
        actor: &Actor,
        project: ProjectId,
        chosen: &[(String, bool)],
        replace: bool,
    ) -> Result<Run> {
        self.retry_preflight(actor, project).await?.require()?;
        let ready = self.ready(project).await?;
        self.no_active_run(project).await?;
        let target = self.run_target(project, TargetRole::Production).await?;
        let settings = RunSettings {
            tuning: Default::default(),
            user_types: ready.user_types,
            policy: if replace {
                crate::scim::target::ExistingPolicy::Update
            } else {
                target.settings.on_existing
            },
            sample: None,
            window: None,
            placed: None,
        };
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::Retry,
                target_role: TargetRole::Production.as_str().into(),
                mapping_version: Some(ready.mapping_version),
                parent: None,
                settings: &settings,
                records: RunRecords::Reviewed(chosen),
                schedule: false,
                note: Some(format!(
                    "{} user(s) chosen in the review queue",
                    grouped(chosen.len() as u64)
                )),
            },
        )
        .await
    }

    /// Deletes from the target the users a finished run created. `confirm` must be
    /// the number of users it created, as the page showed it.
    pub async fn rollback(
        &self,
        actor: &Actor,
        project: ProjectId,
        id: RunId,
        confirm: u64,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_run(actor, project).await?;
        let parent = self.run_in(project, id).await?;
        if !parent.state.is_final() {
            return Err(DomainError::Conflict(
                "the run is still active: cancel it or let it finish before rolling it back".into(),
            ));
        }
        if parent.kind == RunKind::Rollback {
            return Err(DomainError::invalid(
                "kind",
                "a rollback cannot be rolled back",
            ));
        }
        // A delta run's rollback also undoes what it changed and deleted.
        let delta = parent.kind == RunKind::DeltaRun;
        let undone = if delta {
            parent.counts.created + parent.counts.updated + parent.counts.deleted
        } else {
            parent.counts.created
        };
        if undone == 0 {
            return Err(DomainError::invalid(
                "records",
                if delta {
                    "the delta run changed nothing in the target"
                } else {
                    "the run created no users"
                },
            ));
        }
        if confirm != undone {
            return Err(DomainError::invalid(
                "confirm",
                if delta {
                    format!("type the number of users the rollback puts back ({undone}) to confirm")
                } else {
                    format!("type the number of users the rollback deletes ({undone}) to confirm")
                },
            ));
        }
        self.no_active_run(project).await?;
        let old = RunSettings::from_json(&parent.settings).map_err(DomainError::Internal)?;
        let settings = RunSettings {
            sample: None,
            window: None,
            placed: None,
            ..old
        };
        self.launch(
            actor,
            Launch {
                project,
                kind: RunKind::Rollback,
                target_role: parent.target_role.clone(),
                mapping_version: parent.mapping_version,
                parent: Some(parent.id),
                settings: &settings,
                records: if delta {
                    RunRecords::UndoOf(parent.id)
                } else {
                    RunRecords::CreatedOf(parent.id)
                },
                schedule: false,
                note: None,
            },
        )
        .await
    }
}

/// A pace of users a minute: at least 1, or none for no limit.
fn check_pace(per_minute: Option<u32>) -> Result<()> {
    if per_minute == Some(0) {
        return Err(DomainError::invalid(
            "max_users_per_minute",
            "at least 1 (or empty for no limit)",
        ));
    }
    Ok(())
}
