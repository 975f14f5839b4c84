//! The run engine: workers that claim a running job's records under a lease, open
//! and map them with the job's mapping version, push them with the SCIM client and
//! settle every outcome; the heartbeat that keeps their leases; the failure guard and
//! the stop on 401/403; the finish (groups and memberships, then a test run's
//! read-back); rollbacks; live progress for the run page; and the scheduler that
//! starts, pauses and resumes runs at their windows' edges and joins runs that
//! another instance (or this one, before a restart) began.
//!
//! Durability lives in the job table: a worker that dies leaves records in flight
//! under a lease that expires, another claims them, and a record claimed more than
//! once is looked up in the target before it is sent again.

use crate::progress::Work;
use crate::{
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
    ids::JobId,
    jobs::{
        Claimed, FailureGuard, Job, JobEvent, JobKind, JobState, PauseReason, Phase, RecordState,
        Settled,
    },
    mapping::CompiledMapping,
    ports::{RecordFilter, RunEngine, Store, TargetConnector},
    runs::{
        GroupSummary, MAX_BATCH, MAX_MISMATCHES, Mismatch, PasswordAction, Progress, ReadBack,
        RunSettings, apply_password, ask_password_attribute, diff, password_action,
    },
    scim::{
        outcome::{ErrorClass, Outcome},
        target::TargetRole,
    },
    segments::CompiledSegments,
    service::advance,
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the engine paces itself.
#[derive(Clone, Copy, Debug)]
pub struct RunConfig {
    /// How long a claim holds records without a heartbeat.
    pub lease: Duration,
    /// How often the scheduler looks at the active jobs.
    pub tick: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            tick: Duration::from_secs(1),
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
    vault: Vault,
    targets: Targets,
    /// Names this process's leases: unique per start.
    instance: String,
    config: RunConfig,
    drives: Mutex<HashMap<JobId, Arc<Drive>>>,
    /// Spawns the drives, workers and followers; its stop signal stops them all.
    background: crate::background::Supervisor,
    shutdown: CancellationToken,
}

/// One job being worked on here.
struct Drive {
    stop: CancellationToken,
    meter: Mutex<Meter>,
    guard: Mutex<FailureGuard>,
    /// Users sent per second, at most: the next free slot.
    pace: Option<(f64, tokio::sync::Mutex<Instant>)>,
}

/// The rate of one job as seen here.
struct Meter {
    started: Instant,
    /// Settled records when this instance began, and since.
    base: u64,
    recent: VecDeque<(Instant, u64)>,
    points: Vec<(u64, u64)>,
    last_point: Option<Instant>,
    /// Seconds the job had run before this instance began (for the chart's axis).
    offset: u64,
}

impl Meter {
    fn new(settled: u64, offset: u64) -> Self {
        Self {
            started: Instant::now(),
            base: settled,
            recent: VecDeque::from([(Instant::now(), settled)]),
            points: vec![(offset, settled)],
            last_point: Some(Instant::now()),
            offset,
        }
    }

    fn observe(&mut self, settled: u64) {
        let now = Instant::now();
        self.recent.push_back((now, settled));
        while self.recent.len() > 2 && now.duration_since(self.recent[0].0) > RATE_SPAN {
            self.recent.pop_front();
        }
        if self
            .last_point
            .is_none_or(|t| now.duration_since(t) >= POINT_EVERY)
        {
            self.last_point = Some(now);
            let at = self.offset + now.duration_since(self.started).as_secs();
            self.points.push((at, settled));
            if self.points.len() > MAX_POINTS {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
            }
        }
    }

    fn progress(&self, job: &Job) -> Progress {
        let settled = job.counts.settled();
        let elapsed = self.started.elapsed().as_secs_f64();
        let average = (elapsed > 0.5).then(|| (settled - self.base.min(settled)) as f64 / elapsed);
        let current = match (self.recent.front(), self.recent.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                Some((b.1.saturating_sub(a.1)) as f64 / b.0.duration_since(a.0).as_secs_f64())
            }
            _ => None,
        };
        let remaining = job.total - settled.min(job.total);
        Progress {
            state: Some(job.state),
            counts: job.counts,
            total: job.total,
            current_rate: current,
            average_rate: average,
            eta_seconds: current
                .filter(|r| *r > 0.0)
                .map(|r| (remaining as f64 / r).ceil() as u64),
            rate_points: self.points.clone(),
            live: true,
        }
    }
}

/// What a run needs at hand: the target's client and limits, the job's mapping and
/// user types, the password action per user type.
struct Context {
    job: Job,
    settings: RunSettings,
    client: ScimClient,
    limits: Limits,
    mapping: CompiledMapping,
    segments: CompiledSegments,
    actions: Vec<PasswordAction>,
    batch: u32,
}

/// A record ready to push, or settled without pushing.
enum Prepared {
    Push {
        seq: u64,
        user: UserPush,
        /// Its groups, one per line.
        groups: Option<String>,
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

fn settled(seq: u64, state: RecordState, class: &str, detail: impl Into<String>) -> Settled {
    Settled {
        seq,
        state,
        scim_id: None,
        error_class: Some(class.into()),
        error_detail: Some(detail.into()),
        groups: None,
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
        vault: Vault,
        targets: Targets,
        config: RunConfig,
        background: crate::background::Supervisor,
    ) -> Self {
        let instance = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[..12]
        );
        Self(Arc::new(Inner {
            store,
            vault,
            targets,
            instance,
            config,
            drives: Mutex::default(),
            shutdown: background.stopping(),
            background,
        }))
    }

    /// The live progress of a job, as a channel the event stream follows. Fed by the
    /// workers while the job runs here; otherwise one task per job reads its counts
    /// every few seconds for all who follow it.
    pub fn subscribe(&self, job: JobId) -> watch::Receiver<Progress> {
        let (feed, fresh) = self
            .0
            .background
            .progress()
            .get_or_insert(Work::Run(job), || watch::channel(Progress::default()).0);
        let receiver = feed.subscribe();
        if !fresh {
            return receiver;
        }
        let inner = self.0.clone();
        self.0
            .background
            .spawn_logged("run progress follower", job, async move {
                inner.follow(job).await;
                Ok(())
            });
        receiver
    }

    /// Starts the scheduler: every tick it starts scheduled jobs whose window opened,
    /// pauses running ones whose window ended, resumes paused ones whose new window
    /// opened, and works on running jobs no worker here is on (after a restart, or
    /// beside another instance).
    pub fn start_scheduler(&self) {
        let this = self.clone();
        self.0
            .background
            .spawn_logged("run scheduler", "every run", async move {
                let mut tick = tokio::time::interval(this.0.config.tick);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = this.0.shutdown.cancelled() => return Ok(()),
                        _ = tick.tick() => {
                            if let Err(err) = this.schedule().await {
                                tracing::error!(error = %err, "the scheduler's round failed");
                            }
                        }
                    }
                }
            });
    }

    /// One round of the scheduler.
    pub async fn schedule(&self) -> domain::Result<()> {
        let now = Utc::now();
        for job in self.0.store.active_jobs().await? {
            let settings = RunSettings::from_json(&job.settings).ok();
            let phase = settings
                .as_ref()
                .and_then(|s| s.placed)
                .map(|p| p.phase(now));
            let event = match (job.state, phase, &job.pause_reason) {
                (JobState::Scheduled, Some(Phase::Open(_)), _) => Some(JobEvent::Start),
                (JobState::Scheduled | JobState::Running, Some(Phase::Over), _) => {
                    Some(JobEvent::Pause(PauseReason::WindowEnded))
                }
                (JobState::Paused, Some(Phase::Open(_)), Some(PauseReason::WindowEnded)) => {
                    Some(JobEvent::Resume)
                }
                _ => None,
            };
            let job = match event {
                Some(event) => {
                    match advance(self.0.store.as_ref(), &job, &event, None, now).await {
                        Ok(moved) => {
                            tracing::info!(job = %job.id, from = job.state.as_str(), to = moved.state.as_str(), "the scheduler moved a run");
                            moved
                        }
                        // Another instance moved it first.
                        Err(DomainError::Conflict(_)) => continue,
                        Err(err) => return Err(err),
                    }
                }
                None => job,
            };
            match job.state {
                JobState::Running => self.wake(job.id),
                _ => self.stop(job.id),
            }
        }
        Ok(())
    }
}

/// Takes a job off this instance's drives when its drive ends, however it ends.
struct Driving {
    inner: Arc<Inner>,
    job: JobId,
}

impl Drop for Driving {
    fn drop(&mut self) {
        lock(&self.inner.drives).remove(&self.job);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RunEngine for Runs {
    fn wake(&self, job: JobId) {
        let mut drives = lock(&self.0.drives);
        if drives.contains_key(&job) || self.0.shutdown.is_cancelled() {
            return;
        }
        let drive = Arc::new(Drive {
            stop: self.0.shutdown.child_token(),
            meter: Mutex::new(Meter::new(0, 0)),
            guard: Mutex::new(FailureGuard::new(1, 2)),
            pace: None,
        });
        drives.insert(job, drive);
        drop(drives);
        let driving = Driving {
            inner: self.0.clone(),
            job,
        };
        let inner = self.0.clone();
        self.0.background.spawn(
            "run drive",
            job,
            async move {
                // An error (the database away for a moment) ends this drive; the
                // scheduler's next round starts another.
                if let Err(err) = driving.inner.clone().drive(job).await {
                    tracing::error!(job = %job, error = %err, "the run's workers stopped on an error");
                }
                drop(driving);
                Ok(())
            },
            // A panic would come back with every new drive: the run is paused with
            // the reason, for someone to look at, not started again and again.
            move |reason| async move {
                let detail = format!("the run's workers stopped: {reason}");
                if let Err(err) = inner.pause(job, PauseReason::CannotRun { detail }).await {
                    tracing::error!(job = %job, error = %err, "cannot pause the run");
                }
            },
        );
    }

    fn stop(&self, job: JobId) {
        if let Some(drive) = lock(&self.0.drives).get(&job) {
            drive.stop.cancel();
        }
    }

    fn progress(&self, job: &Job) -> Progress {
        let drive = lock(&self.0.drives).get(&job.id).cloned();
        match drive {
            Some(drive) if job.state == JobState::Running => lock(&drive.meter).progress(job),
            _ => Progress {
                state: Some(job.state),
                counts: job.counts,
                total: job.total,
                average_rate: average_rate(job),
                ..Progress::default()
            },
        }
    }

    fn open_readback(&self, job: &Job, sealed: &[u8]) -> domain::Result<ReadBack> {
        let plain = self
            .0
            .vault
            .open(sealed, readback_context(job.id).as_bytes())
            .map_err(|_| DomainError::Internal("the read-back cannot be opened".into()))?;
        serde_json::from_slice(&plain)
            .map_err(|e| DomainError::Internal(format!("the read-back does not read: {e}")))
    }
}

/// Records settled per second from start to finish (or to now).
fn average_rate(job: &Job) -> Option<f64> {
    let start = job.started_at?;
    let end = job.finished_at.unwrap_or_else(Utc::now);
    let seconds = (end - start).num_milliseconds() as f64 / 1000.0;
    (seconds > 0.5).then(|| job.counts.settled() as f64 / seconds)
}

fn readback_context(job: JobId) -> String {
    format!("readback:{job}")
}

impl Inner {
    fn publish(&self, job: &Job, drive: &Drive) {
        let progress = {
            let mut meter = lock(&drive.meter);
            meter.observe(job.counts.settled());
            meter.progress(job)
        };
        if let Some(feed) = self.feed(job.id) {
            feed.send_replace(progress);
        }
    }

    /// The channel the followers of `job` listen on, while anyone does.
    fn feed(&self, job: JobId) -> Option<Arc<watch::Sender<Progress>>> {
        self.background.progress().get(Work::Run(job))
    }

    /// Feeds followers of a job no worker here runs: its counts every few seconds,
    /// until nobody follows or it ends.
    async fn follow(self: Arc<Self>, id: JobId) {
        loop {
            let Some(feed) = self.feed(id) else { return };
            if feed.receiver_count() == 0 || self.shutdown.is_cancelled() {
                self.background.progress().remove(Work::Run(id), &feed);
                return;
            }
            let driven = lock(&self.drives).get(&id).cloned();
            if driven.is_none() {
                match self.store.job(id).await {
                    Ok(Some(job)) => {
                        let progress = Progress {
                            state: Some(job.state),
                            counts: job.counts,
                            total: job.total,
                            average_rate: average_rate(&job),
                            ..Progress::default()
                        };
                        feed.send_replace(progress);
                    }
                    Ok(None) => {
                        self.background.progress().remove(Work::Run(id), &feed);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(job = %id, error = %err, "reading a run's progress failed")
                    }
                }
            }
            tokio::time::sleep(POINT_EVERY).await;
        }
    }

    async fn job(&self, id: JobId) -> domain::Result<Job> {
        self.store
            .job(id)
            .await?
            .ok_or_else(|| DomainError::NotFound("job".into()))
    }

    /// Pauses the job (when still running) for `reason`.
    async fn pause(&self, id: JobId, reason: PauseReason) -> domain::Result<()> {
        let job = self.job(id).await?;
        if job.state != JobState::Running {
            return Ok(());
        }
        tracing::warn!(job = %id, reason = %reason.describe(), "pausing the run");
        match advance(
            self.store.as_ref(),
            &job,
            &JobEvent::Pause(reason),
            None,
            Utc::now(),
        )
        .await
        {
            Ok(_) | Err(DomainError::Conflict(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn drive(self: Arc<Self>, id: JobId) -> domain::Result<()> {
        let job = self.job(id).await?;
        if job.state != JobState::Running {
            return Ok(());
        }
        let context = match self.context(&job).await {
            Ok(context) => Arc::new(context),
            Err(detail) => return self.pause(id, PauseReason::CannotRun { detail }).await,
        };
        let drive = {
            let offset = job
                .started_at
                .map(|s| u64::try_from((Utc::now() - s).num_seconds()).unwrap_or(0))
                .unwrap_or(0);
            let tuning = &context.settings.tuning;
            Arc::new(Drive {
                stop: lock(&self.drives)
                    .get(&id)
                    .map(|d| d.stop.clone())
                    .unwrap_or_else(|| self.shutdown.child_token()),
                meter: Mutex::new(Meter::new(job.counts.settled(), offset)),
                guard: Mutex::new(FailureGuard::new(
                    tuning.failure_window,
                    tuning.failure_threshold,
                )),
                pace: tuning
                    .max_users_per_second
                    .map(|rate| (f64::from(rate), tokio::sync::Mutex::new(Instant::now()))),
            })
        };
        lock(&self.drives).insert(id, drive.clone());
        tracing::info!(job = %id, kind = job.kind.as_str(), total = job.total, "working on a run");
        let job = loop {
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
            let job = self.job(id).await?;
            let held_elsewhere = job.counts.in_flight > 0 || job.counts.pending > 0;
            if job.state != JobState::Running || !held_elsewhere || drive.stop.is_cancelled() {
                break job;
            }
            // Records another instance holds: it settles them, or its lease expires
            // (it is gone) and they are claimed here.
            let wait = (self.config.lease / 4).min(Duration::from_secs(1));
            tokio::select! {
                () = drive.stop.cancelled() => break job,
                () = tokio::time::sleep(wait) => {}
            }
        };
        self.publish(&job, &drive);
        if job.state == JobState::Running && job.counts.pending == 0 && job.counts.in_flight == 0 {
            self.finish(&context, job, &drive).await?;
        }
        Ok(())
    }

    /// The client, mapping and user types of a job; an error says what to fix.
    async fn context(&self, job: &Job) -> Result<Context, String> {
        let failed = |e: DomainError| e.to_string();
        let settings = RunSettings::from_json(&job.settings)?;
        let role = TargetRole::parse(&job.target_role).map_err(failed)?;
        let target = self
            .store
            .target(job.project_id, role)
            .await
            .map_err(failed)?
            .ok_or_else(|| format!("the {} is no longer set up", role.label().to_lowercase()))?;
        let secrets = self
            .targets
            .open_secrets(job.project_id, role, &target.sealed_secrets)
            .map_err(failed)?;
        let discovery = target.last_test.and_then(|r| r.discovery);
        let client = ScimClient::new(&target.settings, &secrets).map_err(|e| e.0)?;
        let limits = Limits::new(&target.settings, discovery.as_ref());
        let version = match job.mapping_version {
            Some(v) => self
                .store
                .mapping_version(job.project_id, Some(v))
                .await
                .map_err(failed)?
                .ok_or_else(|| format!("mapping version {v} is gone"))?,
            None => return Err("the run names no mapping version".into()),
        };
        let mapping = match job.kind {
            // A rollback maps nothing; its records carry the SCIM ids to delete.
            JobKind::Rollback => version.mapping.compile_lenient(discovery.as_ref()).0,
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
        let segments = settings
            .segments
            .compile(Utc::now())
            .map_err(|p| format!("the user types have problems ({})", p[0].message))?;
        let ask = ask_password_attribute(discovery.as_ref());
        let actions = settings
            .segments
            .segments
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
        let batch = match settings.tuning.max_users_per_second {
            Some(rate) => batch.min(rate.max(1)),
            None => batch,
        };
        Ok(Context {
            job: job.clone(),
            settings,
            client,
            limits,
            mapping,
            segments,
            actions,
            batch,
        })
    }

    /// One worker: claims a batch, pushes it while its lease is renewed, settles it;
    /// until nothing is left, the job stops running, or a pause is called for. The
    /// next batch is claimed, opened and mapped while the current one is pushed, so
    /// the target never waits for the database or the mapping.
    async fn work(&self, context: Arc<Context>, n: u32, drive: &Drive) -> domain::Result<()> {
        let id = context.job.id;
        let owner = format!("{}:{n}", self.instance);
        let lease = chrono::Duration::from_std(self.config.lease)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        let result = self.work_batches(&context, &owner, lease, drive).await;
        // Whatever is still claimed (a batch readied ahead, records held back by a
        // 401) goes back to pending.
        self.store.release(id, &owner).await?;
        result
    }

    async fn work_batches(
        &self,
        context: &Arc<Context>,
        owner: &str,
        lease: chrono::Duration,
        drive: &Drive,
    ) -> domain::Result<()> {
        let id = context.job.id;
        if drive.stop.is_cancelled() || self.job(id).await?.state != JobState::Running {
            return Ok(());
        }
        // `None` when nothing is pending: what is in flight then is another worker's
        // (the drive waits for those of other instances once every worker here is done).
        let mut next = self.ready(context, owner, lease).await?;
        while let Some(current) = next.take() {
            let started = Instant::now();
            if let Some((rate, slot)) = &drive.pace {
                let at = {
                    let mut slot = slot.lock().await;
                    let at = (*slot).max(Instant::now());
                    *slot = at + Duration::from_secs_f64(current.claimed.len() as f64 / rate);
                    at
                };
                tokio::time::sleep_until(at.into()).await;
            }
            let claimed: Vec<u64> = current.claimed.iter().map(|c| c.seq).collect();
            let ahead = async {
                let clock = Instant::now();
                let next = self.ready(context, owner, lease).await;
                (next, clock.elapsed())
            };
            let ((batch, pushed), (following, readied)) = self
                .with_heartbeat(id, owner, lease, async {
                    let push = async {
                        let clock = Instant::now();
                        let batch = self.send(context, owner, current, &drive.stop).await;
                        (batch, clock.elapsed())
                    };
                    Ok(tokio::join!(push, ahead))
                })
                .await?;
            // The outcomes are kept first, whatever became of readying the next batch.
            let settle = Instant::now();
            let kept = self
                .store
                .settle(id, owner, &batch.settled, Utc::now())
                .await?;
            let settled = settle.elapsed();
            next = following?;
            if batch.lost || (kept as usize) < batch.settled.len() {
                // Records settled by nobody here were taken up by another worker after
                // this one's lease lapsed; that worker settles them. This one stops.
                tracing::warn!(
                    job = %id,
                    owner,
                    kept,
                    outcomes = batch.settled.len(),
                    "records were no longer this worker's; it stops"
                );
                break;
            }
            tracing::debug!(
                job = %id,
                owner,
                records = claimed.len(),
                push_ms = pushed.as_millis(),
                ready_next_ms = readied.as_millis(),
                settle_ms = settled.as_millis(),
                batch_ms = started.elapsed().as_millis(),
                "a batch settled"
            );
            // Records not settled (the target refused the credentials before they
            // were sent) go back to pending for after the pause; those a request may
            // have carried stay claimed until the worker releases them.
            if batch.settled.len() + batch.early.len() + batch.held.len() < claimed.len() {
                let unsent: Vec<u64> = claimed
                    .iter()
                    .copied()
                    .filter(|seq| {
                        batch.settled.binary_search_by_key(seq, |s| s.seq).is_err()
                            && batch.early.binary_search(seq).is_err()
                            && !batch.held.contains(seq)
                    })
                    .collect();
                self.store.unclaim(id, owner, &unsent).await?;
            }
            let mut pause = batch.pause;
            {
                // In the records' order: the users settled early (found, so created)
                // among the others, never all in one block, which would make the
                // batch's failures look like a run of them.
                let mut ended: Vec<(u64, bool)> = batch
                    .settled
                    .iter()
                    .filter(|s| s.error_class.as_deref() != Some(classes::LEFT_BEHIND))
                    .map(|s| (s.seq, s.state == RecordState::Failed))
                    .chain(batch.early.iter().map(|seq| (*seq, false)))
                    .collect();
                ended.sort_unstable_by_key(|(seq, _)| *seq);
                let mut guard = lock(&drive.guard);
                for (_, failed) in ended {
                    if let Some(reason) = guard.settle(failed)
                        && pause.is_none()
                    {
                        pause = Some(reason);
                    }
                }
            }
            let job = self.job(id).await?;
            self.publish(&job, drive);
            if let Some(reason) = pause {
                if matches!(reason, PauseReason::FailureRate { .. }) {
                    lock(&drive.guard).reset();
                }
                self.pause(id, reason).await?;
                drive.stop.cancel();
                break;
            }
            if drive.stop.is_cancelled() || job.state != JobState::Running {
                break;
            }
        }
        // The batch readied ahead of a stop was never sent.
        if let Some(ahead) = next {
            let seqs: Vec<u64> = ahead.claimed.iter().map(|c| c.seq).collect();
            self.store.unclaim(id, owner, &seqs).await?;
        }
        Ok(())
    }

    /// Claims the next batch and, for a push, opens and maps its records; `None`
    /// when nothing is pending.
    async fn ready(
        &self,
        context: &Arc<Context>,
        owner: &str,
        lease: chrono::Duration,
    ) -> domain::Result<Option<Ready>> {
        let now = Utc::now();
        let claimed = self
            .store
            .claim(context.job.id, owner, context.batch, now, now + lease)
            .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let prepared = match context.job.kind {
            JobKind::Rollback => Vec::new(),
            _ => self.prepare(context, &claimed).await?,
        };
        Ok(Some(Ready { claimed, prepared }))
    }

    /// Runs `work` while renewing `owner`'s lease a few times per lease.
    async fn with_heartbeat<T>(
        &self,
        id: JobId,
        owner: &str,
        lease: chrono::Duration,
        work: impl std::future::Future<Output = domain::Result<T>>,
    ) -> domain::Result<T> {
        let mut work = std::pin::pin!(work);
        let mut beat = tokio::time::interval(self.config.lease / 3);
        beat.tick().await;
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = beat.tick() => {
                    match self.store.heartbeat(id, owner, Utc::now() + lease).await {
                        Ok(_) => renewed = Instant::now(),
                        // A worker whose lease runs out must not go on: another takes
                        // its records up (looking up what may have been sent).
                        Err(err) if renewed.elapsed() >= self.config.lease * 2 / 3 => {
                            return Err(DomainError::Internal(format!(
                                "the lease on the run's records could not be renewed: {err}"
                            )));
                        }
                        Err(err) => {
                            tracing::warn!(job = %id, error = %err, "renewing a lease failed; trying again");
                        }
                    }
                }
            }
        }
    }

    async fn send(
        &self,
        context: &Arc<Context>,
        owner: &str,
        ready: Ready,
        stop: &CancellationToken,
    ) -> Batch {
        match context.job.kind {
            JobKind::Rollback => self.delete(context, &ready.claimed).await,
            _ => self.push(context, owner, ready.prepared, stop).await,
        }
    }

    /// Opens, places and maps a batch's records, off the async threads.
    async fn prepare(
        &self,
        context: &Arc<Context>,
        claimed: &[Claimed],
    ) -> domain::Result<Vec<Prepared>> {
        let project = context.job.project_id;
        let ids: Vec<String> = claimed.iter().map(|c| c.source_id.clone()).collect();
        let sealed: HashMap<String, Vec<u8>> = self
            .store
            .sealed_records(project, &ids)
            .await?
            .into_iter()
            .collect();
        let (vault, ctx, batch) = (self.vault.clone(), context.clone(), claimed.to_vec());
        tokio::task::spawn_blocking(move || {
            batch
                .iter()
                .map(|c| prepare(&vault, &ctx, c, sealed.get(&c.source_id)))
                .collect()
        })
        .await
        .map_err(|e| DomainError::Internal(format!("mapping a batch: {e}")))
    }

    /// Pushes the users that move; the others are settled as prepared.
    async fn push(
        &self,
        context: &Arc<Context>,
        owner: &str,
        prepared: Vec<Prepared>,
        stop: &CancellationToken,
    ) -> Batch {
        let mut out = Vec::with_capacity(prepared.len());
        let mut users = Vec::new();
        let mut seqs = Vec::new();
        for p in prepared {
            match p {
                Prepared::Settle(s) => out.push(s),
                Prepared::Push { seq, user, groups } => {
                    seqs.push((seq, groups));
                    users.push(user);
                }
            }
        }
        if users.is_empty() {
            return Batch {
                settled: out,
                ..Batch::default()
            };
        }
        // Marked as sent as the batch leaves: after a crash, only batches that may
        // have reached the target are looked up. A batch that cannot be marked is not
        // sent.
        let leaving: Vec<u64> = seqs.iter().map(|(seq, _)| *seq).collect();
        // A failed mark (a deadlock between instances on PostgreSQL, say) is tried
        // once more; failing again, the batch goes back unsent and is claimed later.
        let mut marked = self
            .store
            .mark_sent(context.job.id, owner, &leaving, Utc::now())
            .await;
        if marked.is_err() {
            marked = self
                .store
                .mark_sent(context.job.id, owner, &leaving, Utc::now())
                .await;
        }
        if let Err(err) = marked {
            tracing::warn!(job = %context.job.id, error = %err, "a batch could not be marked as sent; it goes back unsent");
            return Batch {
                settled: out,
                ..Batch::default()
            };
        }
        // Users found created by an earlier attempt are settled as their look-ups
        // answer: a crash during the rest of the batch does not look them up again.
        let (found, mut reported) = tokio::sync::mpsc::unbounded_channel();
        let pushing = async {
            Pusher::new(&context.client, context.limits, context.settings.policy)
                .with_stop(stop.clone())
                .with_found(found)
                .push(&users, &[])
                .await
        };
        let settling = async {
            let (mut early, mut lost) = (Vec::new(), false);
            while let Some(found) = reported.recv().await {
                let outcomes: Vec<Settled> = found
                    .into_iter()
                    .map(|(i, id)| Settled {
                        seq: seqs[i].0,
                        state: RecordState::Created,
                        scim_id: Some(id),
                        error_class: None,
                        error_detail: None,
                        groups: seqs[i].1.clone(),
                    })
                    .collect();
                match self
                    .store
                    .settle(context.job.id, owner, &outcomes, Utc::now())
                    .await
                {
                    Ok(kept) => {
                        lost |= (kept as usize) < outcomes.len();
                        early.extend(outcomes.iter().map(|o| o.seq));
                    }
                    // Settled with the rest of the batch instead.
                    Err(err) => {
                        tracing::warn!(job = %context.job.id, error = %err, "users found could not be settled at once");
                    }
                }
            }
            early.sort_unstable();
            (early, lost)
        };
        let (report, (early, lost)) = tokio::join!(pushing, settling);
        let stopped = report.stopped.is_some();
        let interrupted = report.interrupted;
        let mut held = Vec::new();
        for (((seq, groups), outcome), sent) in seqs.into_iter().zip(report.users).zip(report.sent)
        {
            if early.binary_search(&seq).is_ok() {
                continue;
            }
            let done = match outcome {
                Outcome::Created { id } => Settled {
                    seq,
                    state: RecordState::Created,
                    scim_id: Some(id),
                    error_class: None,
                    error_detail: None,
                    groups,
                },
                Outcome::Updated { id, changed } => Settled {
                    seq,
                    state: RecordState::Updated,
                    scim_id: Some(id),
                    error_class: None,
                    error_detail: Some(if changed.is_empty() {
                        "the user exists (same externalId) and was already up to date".into()
                    } else {
                        format!(
                            "the user exists (same externalId); replaced {} (never its \
                             password or status)",
                            changed.join(", ")
                        )
                    }),
                    groups,
                },
                Outcome::Skipped { id } => Settled {
                    scim_id: Some(id),
                    groups,
                    ..settled(
                        seq,
                        RecordState::Skipped,
                        ErrorClass::AlreadyExists.as_str(),
                        "the user exists in the target and the policy is to skip",
                    )
                },
                // Not settled because the target refused the credentials: back to
                // pending, for after the pause; held while it may have been sent.
                // Waiting when the run paused or was cancelled: given back the same way.
                Outcome::Failed(f)
                    if (stopped && f.class == ErrorClass::Unauthorized)
                        || (interrupted && f.class == ErrorClass::Throttled) =>
                {
                    if sent {
                        held.push(seq);
                    }
                    continue;
                }
                Outcome::Failed(f) => settled(seq, RecordState::Failed, f.class.as_str(), f.detail),
            };
            out.push(done);
        }
        out.sort_by_key(|s| s.seq);
        Batch {
            settled: out,
            early,
            lost,
            held,
            // Interrupted: whoever stopped the run has set its state already.
            pause: report
                .stopped
                .filter(|_| !interrupted)
                .map(|f| PauseReason::Unauthorized {
                    status: f.status.unwrap_or(401),
                }),
        }
    }
}

/// Opens one record, places it in its user type and maps it.
fn prepare(
    vault: &Vault,
    context: &Context,
    claimed: &Claimed,
    sealed: Option<&Vec<u8>>,
) -> Prepared {
    {
        let seq = claimed.seq;
        let Some(sealed) = sealed else {
            return Prepared::Settle(settled(
                seq,
                RecordState::Failed,
                classes::MISSING_RECORD,
                "the record is no longer in the project (a newer export removed it)",
            ));
        };
        let user = match records::open(vault, context.job.project_id, &claimed.source_id, sealed) {
            Ok(user) => user,
            Err(err) => {
                tracing::error!(job = %context.job.id, seq, error = %err, "a record did not open");
                return Prepared::Settle(settled(
                    seq,
                    RecordState::Failed,
                    classes::MISSING_RECORD,
                    "the stored record cannot be opened with this server key",
                ));
            }
        };
        let segment = context.segments.place(&user);
        let Some(segment) = segment.filter(|s| context.segments.included(*s)) else {
            let why = match segment.and_then(|s| context.settings.segments.segments.get(s)) {
                Some(s) => format!("the user type {:?} stays behind", s.name),
                None => "the user is in no user type".into(),
            };
            return Prepared::Settle(settled(
                seq,
                RecordState::Skipped,
                classes::LEFT_BEHIND,
                why,
            ));
        };
        let mut mapped = context.mapping.map(&user);
        if !mapped.failures.is_empty() {
            let detail = mapped
                .failures
                .iter()
                .map(|f| format!("rule {}: {}", f.rule + 1, f.message))
                .collect::<Vec<_>>()
                .join("; ");
            return Prepared::Settle(settled(seq, RecordState::Failed, classes::MAPPING, detail));
        }
        if let Some(action) = context.actions.get(segment) {
            apply_password(&mut mapped.resource, action, random_password);
        }
        let text = |key: &str| {
            mapped
                .resource
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let groups = (!user.groups.is_empty()).then(|| user.groups.join("\n"));
        Prepared::Push {
            seq,
            groups,
            user: UserPush {
                external_id: text("externalId"),
                user_name: text("userName"),
                maybe_sent: claimed.sent,
                sent_at: claimed.sent_at,
                data: mapped.resource,
            },
        }
    }
}

impl Inner {
    /// A rollback's batch: each user deleted by its SCIM id (one already gone counts
    /// as deleted); 401/403 stops it.
    async fn delete(&self, context: &Context, claimed: &[Claimed]) -> Batch {
        let mut out = Vec::with_capacity(claimed.len());
        for c in claimed {
            let Some(scim_id) = &c.scim_id else {
                out.push(settled(
                    c.seq,
                    RecordState::Failed,
                    ErrorClass::Protocol.as_str(),
                    "the run recorded no SCIM id for this user",
                ));
                continue;
            };
            let path = format!("/Users/{scim_id}");
            let result = context.client.delete(&path).await;
            let done = match result {
                Ok(()) => Settled {
                    seq: c.seq,
                    state: RecordState::Deleted,
                    scim_id: Some(scim_id.clone()),
                    error_class: None,
                    error_detail: None,
                    groups: None,
                },
                Err(call) if call.class() == ErrorClass::NotFound => Settled {
                    seq: c.seq,
                    state: RecordState::Deleted,
                    scim_id: Some(scim_id.clone()),
                    error_class: None,
                    error_detail: Some("the user was gone already".into()),
                    groups: None,
                },
                Err(call) if call.class() == ErrorClass::Unauthorized => {
                    return Batch {
                        settled: out,
                        pause: Some(PauseReason::Unauthorized {
                            status: call.failure.status.unwrap_or(401),
                        }),
                        ..Batch::default()
                    };
                }
                Err(call) => Settled {
                    scim_id: Some(scim_id.clone()),
                    ..settled(
                        c.seq,
                        RecordState::Failed,
                        call.class().as_str(),
                        call.failure.detail,
                    )
                },
            };
            out.push(done);
        }
        Batch {
            settled: out,
            ..Batch::default()
        }
    }

    /// Every record settled: groups and memberships follow the users, a test run's
    /// users are read back, and the job finishes. One instance does it, under a lease
    /// of its own; a repeat after a crash finds the groups and adds nothing twice.
    async fn finish(&self, context: &Context, job: Job, drive: &Drive) -> domain::Result<()> {
        let owner = format!("{}:finish", self.instance);
        let lease = chrono::Duration::from_std(self.config.lease * 10)
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        let now = Utc::now();
        if !self
            .store
            .claim_finish(job.id, &owner, now, now + lease)
            .await?
        {
            return Ok(());
        }
        let groups = if context.settings.tuning.groups && job.kind != JobKind::Rollback {
            Some(self.groups(context).await?)
        } else {
            None
        };
        let readback = if job.kind == JobKind::TestRun {
            let found = self.read_back(context).await?;
            let json =
                serde_json::to_vec(&found).map_err(|e| DomainError::Internal(e.to_string()))?;
            Some(self.vault.seal(&json, readback_context(job.id).as_bytes()))
        } else {
            None
        };
        let summary = serde_json::to_string(&groups.unwrap_or_default())
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        self.store
            .save_finish(job.id, &summary, readback.as_deref())
            .await?;
        let job = self.job(job.id).await?;
        if job.state == JobState::Running {
            let event = JobEvent::Finish {
                failed: job.counts.failed,
            };
            match advance(self.store.as_ref(), &job, &event, None, Utc::now()).await {
                Ok(done) => {
                    tracing::info!(job = %job.id, state = done.state.as_str(), "the run finished");
                    self.publish(&done, drive);
                }
                Err(DomainError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Pages through the job's records in `states` that have a SCIM id, opened.
    async fn each_sent(
        &self,
        context: &Context,
        mut visit: impl FnMut(&domain::ports::JobRecord, domain::import::NormalizedUser),
    ) -> domain::Result<()> {
        for state in [
            RecordState::Created,
            RecordState::Updated,
            RecordState::Skipped,
        ] {
            let filter = RecordFilter {
                state: Some(state),
                error_class: None,
            };
            let mut after = None;
            loop {
                let page = self
                    .store
                    .job_records(context.job.id, &filter, after, PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                let ids: Vec<String> = page.iter().map(|r| r.source_id.clone()).collect();
                let sealed: HashMap<String, Vec<u8>> = self
                    .store
                    .sealed_records(context.job.project_id, &ids)
                    .await?
                    .into_iter()
                    .collect();
                for record in &page {
                    if record.scim_id.is_none() {
                        continue;
                    }
                    if let Some(data) = sealed.get(&record.source_id)
                        && let Ok(user) = records::open(
                            &self.vault,
                            context.job.project_id,
                            &record.source_id,
                            data,
                        )
                    {
                        visit(record, user);
                    }
                }
                if page.len() < PAGE as usize {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Creates the groups of the users this run placed (or finds them) and adds the
    /// members.
    async fn groups(&self, context: &Context) -> domain::Result<GroupSummary> {
        // Names and SCIM ids kept when the users settled: no record is opened again.
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .memberships(context.job.id, after, PAGE * 10)
                .await?;
            let Some((last, _, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            let full = page.len() == (PAGE * 10) as usize;
            for (_, scim_id, groups) in page {
                for group in groups.lines().filter(|g| !g.is_empty()) {
                    members
                        .entry(group.to_string())
                        .or_default()
                        .push(scim_id.clone());
                }
            }
            if !full {
                break;
            }
        }
        let pusher = Pusher::new(&context.client, context.limits, context.settings.policy);
        let mut summary = GroupSummary::default();
        for (name, ids) in &members {
            let (outcome, added) = pusher.sync_group(name, ids).await;
            summary.memberships += added;
            match outcome {
                Outcome::Created { .. } => summary.created += 1,
                Outcome::Updated { .. } | Outcome::Skipped { .. } => summary.updated += 1,
                Outcome::Failed(f) => {
                    summary.failed += 1;
                    if summary.errors.len() < 20 {
                        summary.errors.push(format!("{name}: {}", f.detail));
                    }
                    if f.class == ErrorClass::Unauthorized {
                        break;
                    }
                }
            }
        }
        Ok(summary)
    }

    /// Reads every user the test run created or updated back from the target and
    /// compares it with what the mapping makes of the record now (the same mapping
    /// version: what was sent, less the password).
    async fn read_back(&self, context: &Context) -> domain::Result<ReadBack> {
        let mut sent: Vec<(String, String, serde_json::Value)> = Vec::new();
        self.each_sent(context, |record, user| {
            if record.state == RecordState::Skipped {
                return;
            }
            if let Some(id) = &record.scim_id {
                sent.push((
                    record.source_id.clone(),
                    id.clone(),
                    context.mapping.map(&user).resource,
                ));
            }
        })
        .await?;
        let mut found = ReadBack::default();
        for (source_id, scim_id, resource) in sent {
            found.checked += 1;
            match context.client.get(&format!("/Users/{scim_id}")).await {
                Ok(kept) => {
                    let differences = diff(&resource, &kept);
                    if differences.is_empty() {
                        found.matching += 1;
                    }
                    for (path, sent, received) in differences {
                        if found.mismatches.len() < MAX_MISMATCHES {
                            found.mismatches.push(Mismatch {
                                source_id: source_id.clone(),
                                scim_id: scim_id.clone(),
                                path,
                                sent,
                                received,
                            });
                        } else {
                            found.more_mismatches += 1;
                        }
                    }
                }
                Err(call) if call.class() == ErrorClass::NotFound => found.missing += 1,
                Err(call) => {
                    found.unreadable += 1;
                    if found.unreadable_reason.is_none() {
                        found.unreadable_reason = Some(call.failure.detail);
                    }
                }
            }
        }
        Ok(found)
    }
}
