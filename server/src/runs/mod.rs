//! The run engine: workers that claim a running run's records under a lease, open
//! and map them with the run's mapping version, push them with the SCIM client and
//! settle every outcome; the heartbeat that keeps their leases; the failure guard and
//! the stop on 401/403; the finish (groups and memberships, then a test run's
//! read-back); rollbacks; live progress for the run page; and the scheduler that
//! starts, pauses and resumes runs at their windows' edges and joins runs that
//! another instance (or this one, before a restart) began.
//!
//! Durability lives in the run table: a worker that dies leaves records in flight
//! under a lease that expires, another claims them, and a record claimed more than
//! once is looked up in the target before it is sent again.

mod delta;
mod finish;
mod progress;
mod reconcile;
mod rollback;
mod scheduler;
mod wave;
mod workers;

use progress::{Meter, average_rate};

use crate::progress::Work;
use crate::{
    keyring::Keyring,
    records,
    scim::{
        client::{Limits, ScimClient},
        connector::Targets,
        push::{Pusher, UserPush},
    },
    vault::Vault,
};
use chrono::Utc;
use domain::{
    DomainError,
    ids::RunId,
    mapping::CompiledMapping,
    ports::{RecordFilter, RunEngine, Store, TargetConnector},
    runs::{
        Claimed, FailureGuard, Moved, PauseReason, Phase, RecordState, Run, RunEvent, RunKind,
        RunState, Settled,
    },
    runs::{
        GroupSummary, MAX_BATCH, MAX_MISMATCHES, Mismatch, PasswordAction, Progress, ReadBack,
        RunSettings, apply_password, ask_password_attribute, diff, password_action,
    },
    scim::{
        outcome::{ErrorClass, Outcome},
        target::TargetRole,
    },
    service::advance,
    user_types::CompiledUserTypes,
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the engine paces itself.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// How long a claim holds records without a heartbeat.
    pub lease: Duration,
    /// How often the scheduler looks at the active runs.
    pub tick: Duration,
    /// This process's name, the same across restarts: its predecessor's leases lapse
    /// when it starts. Without one, leases are waited out.
    pub instance: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            tick: Duration::from_secs(1),
            instance: None,
        }
    }
}

/// Error classes Ferry gives records itself (the target's are `ErrorClass`).
pub mod classes {
    /// The record's user type stays behind.
    pub const LEFT_BEHIND: &str = "left_behind";
    /// A mapping rule rejected the record.
    pub const MAPPING: &str = "mapping";
    /// The record is no longer in the project (a newer export removed it).
    pub const MISSING_RECORD: &str = "missing_record";
    /// The user's password moved at a login before the wave reached them.
    pub const ALREADY_MOVED: &str = "already_moved";
    /// The target defines no attribute that asks a user for a new password.
    pub const NO_RESET_ATTRIBUTE: &str = "no_reset_attribute";
}

/// Seconds between two points of the rate chart.
const POINT_EVERY: Duration = Duration::from_secs(2);
/// Points kept (the chart's width): beyond it, every other point is dropped.
const MAX_POINTS: usize = 400;
/// The current rate is measured over this long.
const RATE_SPAN: Duration = Duration::from_secs(10);
/// Records opened and mapped per read-back or group page.
const PAGE: u32 = 1_000;

/// Cheap to clone.
#[derive(Clone)]
pub struct Runs(Arc<Inner>);

struct Inner {
    store: Arc<dyn Store>,
    keys: Keyring,
    targets: Targets,
    /// Names this process's leases: unique per start (`name~start` when named).
    instance: String,
    config: RunConfig,
    drives: Mutex<HashMap<RunId, Arc<Drive>>>,
    /// Spawns the drives, workers and followers; its stop signal stops them all.
    background: crate::background::Supervisor,
    shutdown: CancellationToken,
}

/// One run being worked on here.
struct Drive {
    stop: CancellationToken,
    meter: Mutex<Meter>,
    guard: Mutex<FailureGuard>,
    /// Users sent per second, at most: the next free slot.
    pace: Option<(f64, tokio::sync::Mutex<Instant>)>,
}

/// What a run needs at hand: the target's client and limits, the run's mapping and
/// user types, the password action per user type.
struct Context {
    run: Run,
    /// The vault of the run's project.
    vault: Arc<Vault>,
    settings: RunSettings,
    client: ScimClient,
    limits: Limits,
    mapping: CompiledMapping,
    user_types: CompiledUserTypes,
    actions: Vec<PasswordAction>,
    batch: u32,
    /// The look-ups by listing this instance's pushes share.
    listings: crate::scim::push::Listings,
    /// What an invitation wave sets on each user: the reset flag, and `is_migrated`
    /// (path and type) where the target defines it.
    reset: Option<(String, Option<(String, String)>)>,
    /// A reconciliation asks for users by `id` filters until the target shows it does
    /// not take them.
    by_filter: std::sync::atomic::AtomicBool,
}

/// A record ready to push, or settled without pushing.
enum Prepared {
    Push {
        seq: u64,
        user: UserPush,
        /// Its groups, one per line.
        groups: Option<String>,
        moved: Moved,
    },
    Settle(Settled),
}

/// What a batch came to.
/// A claimed batch, its records opened and mapped (a rollback's need nothing).
struct Ready {
    claimed: Vec<Claimed>,
    prepared: Vec<Prepared>,
}

#[derive(Default)]
struct Batch {
    settled: Vec<Settled>,
    /// Records settled while the batch was still being pushed (users found created
    /// by an earlier attempt), in order: not in `settled`.
    early: Vec<u64>,
    /// Some records were no longer this worker's when it settled them early.
    lost: bool,
    /// Records left unsettled that a request may have carried to the target (the
    /// credentials were refused while they were being looked up): they stay claimed
    /// until the worker releases them, so their claim counts as an attempt and the
    /// next one looks them up before sending.
    held: Vec<u64>,
    /// Set when the run must pause.
    pause: Option<PauseReason>,
}

/// A change the target accepted: its state, the user's id, the class it is counted
/// by (if any) and what was done.
fn changed(
    seq: u64,
    state: RecordState,
    scim_id: Option<String>,
    class: Option<&str>,
    detail: impl Into<String>,
) -> Settled {
    Settled {
        seq,
        state,
        scim_id,
        error_class: class.map(str::to_string),
        error_detail: Some(detail.into()),
        scim_type: None,
        groups: None,
        moved: None,
    }
}

fn settled(seq: u64, state: RecordState, class: &str, detail: impl Into<String>) -> Settled {
    Settled {
        seq,
        state,
        scim_id: None,
        error_class: Some(class.into()),
        error_detail: Some(detail.into()),
        scim_type: None,
        groups: None,
        moved: None,
    }
}

/// A strong password for one user, sent once and kept nowhere: 144 random bits and
/// one character of each class that common password policies ask for.
pub fn random_password() -> String {
    use base64::Engine as _;
    let bytes: [u8; 18] = rand::random();
    format!(
        "{}aZ7!",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

impl Runs {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Keyring,
        targets: Targets,
        config: RunConfig,
        background: crate::background::Supervisor,
    ) -> Self {
        // `name~start:worker`: the part before `~` is shared with the predecessors whose
        // leases lapse at start; the rest is unique per start.
        let start = &uuid::Uuid::now_v7().simple().to_string()[..12];
        let instance = match &config.instance {
            Some(name) => format!("{name}~{start}"),
            None => format!("{}-{start}", std::process::id()),
        };
        Self(Arc::new(Inner {
            store,
            keys,
            targets,
            instance,
            config,
            drives: Mutex::default(),
            shutdown: background.stopping(),
            background,
        }))
    }
}

/// Takes a run off this instance's drives when its drive ends, however it ends.
struct Driving {
    inner: Arc<Inner>,
    run: RunId,
}

impl Drop for Driving {
    fn drop(&mut self) {
        lock(&self.inner.drives).remove(&self.run);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl RunEngine for Runs {
    fn wake(&self, run: RunId) {
        let mut drives = lock(&self.0.drives);
        if drives.contains_key(&run) || self.0.shutdown.is_cancelled() {
            return;
        }
        let drive = Arc::new(Drive {
            stop: self.0.shutdown.child_token(),
            meter: Mutex::new(Meter::new(0, 0)),
            guard: Mutex::new(FailureGuard::new(1, 2)),
            pace: None,
        });
        drives.insert(run, drive);
        drop(drives);
        let driving = Driving {
            inner: self.0.clone(),
            run,
        };
        let inner = self.0.clone();
        self.0.background.spawn(
            "run drive",
            run,
            async move {
                // An error (the database away for a moment) ends this drive; the
                // scheduler's next round starts another.
                if let Err(err) = driving.inner.clone().drive(run).await {
                    tracing::error!(run = %run, error = %err, "the run's workers stopped on an error");
                }
                drop(driving);
                Ok(())
            },
            // A panic would come back with every new drive: the run is paused with
            // the reason, for someone to look at, not started again and again.
            move |reason| async move {
                let detail = format!("the run's workers stopped: {reason}");
                if let Err(err) = inner.pause(run, PauseReason::CannotRun { detail }).await {
                    tracing::error!(run = %run, error = %err, "cannot pause the run");
                }
            },
        );
    }

    fn stop(&self, run: RunId) {
        if let Some(drive) = lock(&self.0.drives).get(&run) {
            drive.stop.cancel();
        }
    }

    fn progress(&self, run: &Run) -> Progress {
        let drive = lock(&self.0.drives).get(&run.id).cloned();
        match drive {
            Some(drive) if run.state == RunState::Running => lock(&drive.meter).progress(run),
            _ => Progress {
                state: Some(run.state),
                counts: run.counts,
                total: run.total,
                average_rate: average_rate(run),
                ..Progress::default()
            },
        }
    }

    async fn open_extra_users(
        &self,
        run: &Run,
        sealed: &[u8],
    ) -> domain::Result<domain::runs::ExtraUsers> {
        let plain = self
            .0
            .keys
            .vault(run.project_id)
            .await?
            .open(sealed, readback_context(run.id).as_bytes())
            .map_err(|_| DomainError::Internal("the extra users cannot be opened".into()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| DomainError::Internal(format!("the extra users do not read: {e}")))
    }

    async fn open_readback(&self, run: &Run, sealed: &[u8]) -> domain::Result<ReadBack> {
        let plain = self
            .0
            .keys
            .vault(run.project_id)
            .await?
            .open(sealed, readback_context(run.id).as_bytes())
            .map_err(|_| DomainError::Internal("the read-back cannot be opened".into()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| DomainError::Internal(format!("the read-back does not read: {e}")))
    }
}

fn readback_context(run: RunId) -> String {
    format!("readback:{run}")
}

impl Inner {
    /// The sealed records of these users by source id; `None` when they cannot be read
    /// (logged): the batch waits, its records claimed again once their lease lapses.
    pub(super) async fn sealed_of(
        &self,
        run: &Run,
        ids: &[String],
    ) -> Option<HashMap<String, Vec<u8>>> {
        match self.store.sealed_records(run.project_id, ids).await {
            Ok(rows) => Some(rows.into_iter().collect()),
            Err(err) => {
                tracing::warn!(run = %run.id, error = %err, "the batch's records could not be read; it waits");
                None
            }
        }
    }

    async fn run(&self, id: RunId) -> domain::Result<Run> {
        self.store
            .run(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("run".into()))
    }

    /// Pauses the run (when still running) for `reason`.
    async fn pause(&self, id: RunId, reason: PauseReason) -> domain::Result<()> {
        let run = self.run(id).await?;
        if run.state != RunState::Running {
            return Ok(());
        }
        tracing::warn!(run = %id, reason = %reason.describe(), "pausing the run");
        match advance(
            self.store.as_ref(),
            &run,
            &RunEvent::Pause(reason),
            None,
            Utc::now(),
        )
        .await
        {
            Ok(_) | Err(DomainError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn drive(self: Arc<Self>, id: RunId) -> domain::Result<()> {
        let run = self.run(id).await?;
        if run.state != RunState::Running {
            return Ok(());
        }
        let context = match self.context(&run).await {
            Ok(context) => Arc::new(context),
            Err(detail) => return self.pause(id, PauseReason::CannotRun { detail }).await,
        };
        let drive = {
            let offset = run
                .started_at
                .map(|s| u64::try_from((Utc::now() - s).num_seconds()).unwrap_or(0))
                .unwrap_or(0);
            let tuning = &context.settings.tuning;
            Arc::new(Drive {
                stop: lock(&self.drives)
                    .get(&id)
                    .map(|d| d.stop.clone())
                    .unwrap_or_else(|| self.shutdown.child_token()),
                meter: Mutex::new(Meter::new(run.counts.settled(), offset)),
                guard: Mutex::new(FailureGuard::new(
                    tuning.failure_window,
                    tuning.failure_threshold,
                )),
                pace: tuning
                    .rate()
                    .map(|rate| (rate, tokio::sync::Mutex::new(Instant::now()))),
            })
        };
        lock(&self.drives).insert(id, drive.clone());
        tracing::info!(run = %id, kind = run.kind.as_str(), total = run.total, "working on a run");
        let run = loop {
            // Each worker's error or panic is logged by the supervisor; its records
            // are claimed again once its lease lapses.
            let workers = (0..context.settings.tuning.concurrency).map(|n| {
                let this = self.clone();
                let context = context.clone();
                let drive = drive.clone();
                self.background
                    .spawn_logged("run worker", format!("{id}:{n}"), async move {
                        crate::background::reason(this.work(context, n, &drive).await)
                    })
            });
            futures_util::future::join_all(workers).await;
            let run = self.run(id).await?;
            let held_elsewhere = run.counts.in_flight > 0 || run.counts.pending > 0;
            if run.state != RunState::Running || !held_elsewhere || drive.stop.is_cancelled() {
                break run;
            }
            // Records another instance holds: it settles them, or its lease expires
            // (it is gone) and they are claimed here.
            let wait = (self.config.lease / 4).min(Duration::from_secs(1));
            tokio::select! {
                () = drive.stop.cancelled() => break run,
                () = tokio::time::sleep(wait) => {}
            }
        };
        self.publish(&run, &drive);
        if run.state == RunState::Running && run.counts.pending == 0 && run.counts.in_flight == 0 {
            self.finish(&context, run, &drive).await?;
        } else if run.state == RunState::Cancelled {
            // What a cancelled run settled is kept: its failures wait for review and
            // the users it migrated are counted.
            self.fold_outcomes(&context).await?;
        }
        Ok(())
    }

    /// The client, mapping and user types of a run; an error says what to fix.
    async fn context(&self, run: &Run) -> Result<Context, String> {
        let failed = |e: DomainError| e.to_string();
        let settings = RunSettings::from_json(&run.settings)?;
        let role = TargetRole::parse(&run.target_role).map_err(failed)?;
        let target = self
            .store
            .target(run.project_id, role)
            .await
            .map_err(failed)?
            .ok_or_else(|| format!("the {} is no longer set up", role.label().to_lowercase()))?;
        let secrets = self
            .targets
            .open_secrets(run.project_id, role, &target.sealed_secrets)
            .await
            .map_err(failed)?;
        let vault = self.keys.vault(run.project_id).await.map_err(failed)?;
        let discovery = target.last_test.and_then(|r| r.discovery);
        let client = ScimClient::new(&target.settings, &secrets).map_err(|e| e.0)?;
        let limits = Limits::new(&target.settings, discovery.as_ref());
        let version = match run.mapping_version {
            Some(v) => self
                .store
                .mapping_version(run.project_id, Some(v))
                .await
                .map_err(failed)?
                .ok_or_else(|| format!("mapping version {v} is gone"))?,
            None => return Err("the run names no mapping version".into()),
        };
        let mapping = match run.kind {
            // A rollback maps nothing; its records carry the SCIM ids to delete.
            RunKind::Rollback | RunKind::InviteWave => {
                version.mapping.compile_lenient(discovery.as_ref()).0
            }
            _ => version
                .mapping
                .compile(discovery.as_ref())
                .map_err(|problems| {
                    format!(
                        "mapping version {} no longer checks against the target ({})",
                        version.version, problems[0].message
                    )
                })?,
        };
        let user_types = settings
            .user_types
            .compile(Utc::now())
            .map_err(|p| format!("the user types have problems ({})", p[0].message))?;
        let ask = ask_password_attribute(discovery.as_ref());
        let actions = settings
            .user_types
            .user_types
            .iter()
            .map(|s| password_action(s.password, ask.as_deref()))
            .collect();
        // A batch is one bulk request as large as the target takes (up to the most a
        // batch may hold): a target spends time on each request as well as on each
        // user (measured against scim2-server: 500 a request was 8% slower than 1,000).
        let batch = settings.tuning.batch_size.unwrap_or(if limits.bulk {
            limits.max_operations.clamp(1, MAX_BATCH)
        } else {
            50
        });
        // Under a rate limit a batch holds at most a second's worth of users, so that
        // the limit holds from the first request on, not only on average.
        let batch = match settings.tuning.rate() {
            Some(rate) => batch.min((rate.floor() as u32).max(1)),
            None => batch,
        };
        Ok(Context {
            run: run.clone(),
            vault,
            settings,
            client,
            limits,
            mapping,
            user_types,
            actions,
            batch,
            listings: Default::default(),
            reset: domain::password_service::reset_attribute(discovery.as_ref()).map(|flag| {
                (
                    flag,
                    domain::password_service::migrated_attribute(discovery.as_ref()),
                )
            }),
            by_filter: std::sync::atomic::AtomicBool::new(
                discovery.as_ref().is_none_or(|d| d.config.filter_supported),
            ),
        })
    }
}
