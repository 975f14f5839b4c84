//! The rules of runs (test runs, real runs, retries, rollbacks, invite waves) and of
//! the records in them. A run's state and each record's state change only through the
//! checked transitions here, and a run's counts move a record from one state to
//! another, never add or drop one: the states always add up to the run's total.
//! The automatic pause on a run of failures is decided here too, from the outcomes in
//! the order they settle.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A sample against the test target (or production, when an admin chooses).
    TestRun,
    /// Everyone who moves, against production, inside a downtime window.
    RealRun,
    /// The failed records of an earlier run, after data or mapping fixes.
    Retry,
    /// Deletes the users an earlier run created.
    Rollback,
    /// Sends password invitations in waves.
    InviteWave,
    /// Reads the users in the target back and compares them with what the current
    /// mapping makes of their records; what differs or is gone fails into review.
    Reconcile,
    /// At cutover, a newer export of the same source: its new users created, its
    /// changed ones PATCHed, those gone from it handled by the chosen policy.
    DeltaRun,
}

impl RunKind {
    pub const ALL: [RunKind; 7] = [
        RunKind::TestRun,
        RunKind::RealRun,
        RunKind::Retry,
        RunKind::Rollback,
        RunKind::InviteWave,
        RunKind::Reconcile,
        RunKind::DeltaRun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::TestRun => "test_run",
            RunKind::RealRun => "real_run",
            RunKind::Retry => "retry",
            RunKind::Rollback => "rollback",
            RunKind::InviteWave => "invite_wave",
            RunKind::Reconcile => "reconcile",
            RunKind::DeltaRun => "delta_run",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RunKind::TestRun => "Test run",
            RunKind::RealRun => "Real run",
            RunKind::Retry => "Retry",
            RunKind::Rollback => "Rollback",
            RunKind::InviteWave => "Invite wave",
            RunKind::Reconcile => "Reconciliation",
            RunKind::DeltaRun => "Cutover delta",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Draft,
    Scheduled,
    Running,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub const ALL: [RunState; 7] = [
        RunState::Draft,
        RunState::Scheduled,
        RunState::Running,
        RunState::Paused,
        RunState::Succeeded,
        RunState::Failed,
        RunState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Draft => "draft",
            RunState::Scheduled => "scheduled",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// What the state is called on screen: for what happened, not the stored name (a
    /// run that sent everyone and some failed on their data has finished, with
    /// failures to review; it did not fail).
    pub fn label(self) -> &'static str {
        match self {
            RunState::Draft => "draft",
            RunState::Scheduled => "scheduled",
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Succeeded => "finished",
            RunState::Failed => "finished with failures",
            RunState::Cancelled => "cancelled",
        }
    }

    /// No transition leaves it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }

    /// It holds the project's one active run.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Scheduled | RunState::Running | RunState::Paused
        )
    }
}

/// Why a run stopped sending without ending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseReason {
    /// Someone paused it.
    Manual,
    /// The downtime window ended; it resumes by hand or in the next window.
    WindowEnded,
    /// Too many of the last records failed.
    FailureRate { failed: u32, of: u32 },
    /// The target refused the credentials (401 or 403): nothing more can succeed
    /// until they are fixed.
    Unauthorized { status: u16 },
    /// The run could not begin work (the target's client, mapping or records could not
    /// be prepared); the detail says what to fix before resuming.
    CannotRun { detail: String },
}

impl PauseReason {
    pub fn describe(&self) -> String {
        match self {
            PauseReason::Manual => "paused by hand".into(),
            PauseReason::WindowEnded => "the downtime window ended".into(),
            PauseReason::FailureRate { failed, of } => {
                format!("{failed} of the last {of} records failed")
            }
            PauseReason::Unauthorized { status } => {
                format!("the target answered {status}: check the target's credentials, then resume")
            }
            PauseReason::CannotRun { detail } => format!("the run cannot go on: {detail}"),
        }
    }
}

/// What happens to a run.
#[derive(Clone, Debug, PartialEq)]
pub enum RunEvent {
    /// Given a window start (a draft becomes scheduled).
    Schedule,
    /// The window opened, or an admin started it now.
    Start,
    Pause(PauseReason),
    Resume,
    /// Every record is settled: succeeded when none failed, failed otherwise.
    Finish {
        failed: u64,
    },
    Cancel,
}

/// A transition that the rules refuse, with both ends named.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {from} run cannot {event}")]
pub struct Refused {
    pub from: &'static str,
    pub event: &'static str,
}

impl RunEvent {
    fn name(&self) -> &'static str {
        match self {
            RunEvent::Schedule => "be scheduled",
            RunEvent::Start => "start",
            RunEvent::Pause(_) => "pause",
            RunEvent::Resume => "resume",
            RunEvent::Finish { .. } => "finish",
            RunEvent::Cancel => "be cancelled",
        }
    }
}

impl RunState {
    /// The state after `event`, or why it cannot happen.
    pub fn on(self, event: &RunEvent) -> Result<RunState, Refused> {
        use RunState as S;
        let next = match (self, event) {
            (S::Draft, RunEvent::Schedule) => S::Scheduled,
            (S::Draft | S::Scheduled, RunEvent::Start) => S::Running,
            (S::Running, RunEvent::Pause(_)) => S::Paused,
            // A scheduled run whose window ends before it could start waits for the
            // next window, paused.
            (S::Scheduled, RunEvent::Pause(PauseReason::WindowEnded)) => S::Paused,
            (S::Paused, RunEvent::Resume) => S::Running,
            (S::Running, RunEvent::Finish { failed: 0 }) => S::Succeeded,
            (S::Running, RunEvent::Finish { .. }) => S::Failed,
            (S::Draft | S::Scheduled | S::Running | S::Paused, RunEvent::Cancel) => S::Cancelled,
            _ => {
                return Err(Refused {
                    from: self.as_str(),
                    event: event.name(),
                });
            }
        };
        Ok(next)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    Pending,
    /// Claimed by a worker under a lease.
    InFlight,
    Created,
    Updated,
    /// Existed in the target and the project's policy is to skip.
    Skipped,
    Failed,
    /// Deleted from the target by a rollback.
    Deleted,
}

impl RecordState {
    pub const ALL: [RecordState; 7] = [
        RecordState::Pending,
        RecordState::InFlight,
        RecordState::Created,
        RecordState::Updated,
        RecordState::Skipped,
        RecordState::Failed,
        RecordState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Pending => "pending",
            RecordState::InFlight => "in_flight",
            RecordState::Created => "created",
            RecordState::Updated => "updated",
            RecordState::Skipped => "skipped",
            RecordState::Failed => "failed",
            RecordState::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_settled(self) -> bool {
        !matches!(self, RecordState::Pending | RecordState::InFlight)
    }

    /// Whether a record may go from this state to `to`: pending records are claimed,
    /// claimed ones settle (or go back to pending when their lease expires or the
    /// run pauses before they were sent). Settled records never change: a retry is a
    /// new run.
    pub fn may_become(self, to: RecordState) -> bool {
        use RecordState as R;
        matches!(
            (self, to),
            (R::Pending, R::InFlight)
                | (R::InFlight, R::Pending)
                | (
                    R::InFlight,
                    R::Created | R::Updated | R::Skipped | R::Failed | R::Deleted
                )
        )
    }
}

/// How many of a run's records are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordCounts {
    pub pending: u64,
    pub in_flight: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    #[serde(default)]
    pub deleted: u64,
}

impl RecordCounts {
    /// A new run's counts: every record pending.
    pub fn new(total: u64) -> Self {
        Self {
            pending: total,
            ..Self::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.pending + self.in_flight + self.settled()
    }

    pub fn settled(&self) -> u64 {
        self.created + self.updated + self.skipped + self.failed + self.deleted
    }

    fn slot(&mut self, state: RecordState) -> &mut u64 {
        match state {
            RecordState::Pending => &mut self.pending,
            RecordState::InFlight => &mut self.in_flight,
            RecordState::Created => &mut self.created,
            RecordState::Updated => &mut self.updated,
            RecordState::Skipped => &mut self.skipped,
            RecordState::Failed => &mut self.failed,
            RecordState::Deleted => &mut self.deleted,
        }
    }

    pub fn get(&self, state: RecordState) -> u64 {
        let mut copy = *self;
        *copy.slot(state)
    }

    /// Moves `n` records from one state to another; refused (and nothing changed)
    /// when the transition is not allowed or fewer than `n` are in `from`.
    pub fn shift(&mut self, from: RecordState, to: RecordState, n: u64) -> Result<(), String> {
        if !from.may_become(to) {
            return Err(format!(
                "a {} record cannot become {}",
                from.as_str(),
                to.as_str()
            ));
        }
        let available = self.get(from);
        if available < n {
            return Err(format!(
                "{n} records cannot leave {}: only {available} are there",
                from.as_str()
            ));
        }
        *self.slot(from) -= n;
        *self.slot(to) += n;
        Ok(())
    }
}

/// Pauses a run when too many of its most recent records failed: over the last
/// `window` settled records, at least `threshold` failures. Records that failed for a
/// reason of their own (bad data) count like any other: a run of them still means
/// something is wrong worth a look.
#[derive(Clone, Debug)]
pub struct FailureGuard {
    window: usize,
    threshold: usize,
    recent: VecDeque<bool>,
    failures: usize,
}

impl FailureGuard {
    /// `window` of at least 1; a `threshold` above `window` never trips.
    pub fn new(window: u32, threshold: u32) -> Self {
        let window = window.max(1) as usize;
        Self {
            window,
            threshold: threshold.max(1) as usize,
            recent: VecDeque::with_capacity(window),
            failures: 0,
        }
    }

    /// Takes one settled record; the reason to pause once the window is full and the
    /// failures in it reach the threshold.
    pub fn settle(&mut self, failed: bool) -> Option<PauseReason> {
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.failures -= 1;
        }
        self.recent.push_back(failed);
        if failed {
            self.failures += 1;
        }
        (self.recent.len() == self.window && self.failures >= self.threshold).then(|| {
            PauseReason::FailureRate {
                failed: u32::try_from(self.failures).unwrap_or(u32::MAX),
                of: u32::try_from(self.window).unwrap_or(u32::MAX),
            }
        })
    }

    /// Starts over (after a resume: the records that tripped it are judged already).
    pub fn reset(&mut self) {
        self.recent.clear();
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_move_only_along_their_transitions() {
        use RunState as S;
        let allowed = [
            (S::Draft, RunEvent::Schedule, S::Scheduled),
            (S::Draft, RunEvent::Start, S::Running),
            (S::Scheduled, RunEvent::Start, S::Running),
            (
                S::Scheduled,
                RunEvent::Pause(PauseReason::WindowEnded),
                S::Paused,
            ),
            (S::Running, RunEvent::Pause(PauseReason::Manual), S::Paused),
            (
                S::Running,
                RunEvent::Pause(PauseReason::WindowEnded),
                S::Paused,
            ),
            (
                S::Running,
                RunEvent::Pause(PauseReason::Unauthorized { status: 401 }),
                S::Paused,
            ),
            (S::Paused, RunEvent::Resume, S::Running),
            (S::Running, RunEvent::Finish { failed: 0 }, S::Succeeded),
            (S::Running, RunEvent::Finish { failed: 3 }, S::Failed),
            (S::Draft, RunEvent::Cancel, S::Cancelled),
            (S::Scheduled, RunEvent::Cancel, S::Cancelled),
            (S::Running, RunEvent::Cancel, S::Cancelled),
            (S::Paused, RunEvent::Cancel, S::Cancelled),
        ];
        for (from, event, to) in &allowed {
            assert_eq!(from.on(event), Ok(*to), "{from:?} on {event:?}");
        }
        let events = [
            RunEvent::Schedule,
            RunEvent::Start,
            RunEvent::Pause(PauseReason::Manual),
            RunEvent::Pause(PauseReason::WindowEnded),
            RunEvent::Resume,
            RunEvent::Finish { failed: 0 },
            RunEvent::Cancel,
        ];
        // Everything else is refused, and says what was refused.
        for from in RunState::ALL {
            for event in &events {
                let listed = allowed.iter().any(|(f, e, _)| *f == from && e == event);
                if !listed {
                    let refused = from.on(event).unwrap_err();
                    assert_eq!(refused.from, from.as_str());
                    assert!(
                        refused
                            .to_string()
                            .starts_with(&format!("a {} run cannot", from.as_str()))
                    );
                }
            }
        }
        for state in [S::Succeeded, S::Failed, S::Cancelled] {
            assert!(state.is_final());
            assert!(events.iter().all(|e| state.on(e).is_err()));
        }
        assert!(S::Paused.is_active() && !S::Draft.is_active());
        assert_eq!(RunState::parse("paused"), Some(S::Paused));
        assert_eq!(RunKind::parse("rollback"), Some(RunKind::Rollback));
    }

    #[test]
    fn record_counts_always_add_up_to_the_total() {
        use RecordState as R;
        let mut counts = RecordCounts::new(10);
        counts.shift(R::Pending, R::InFlight, 6).unwrap();
        counts.shift(R::InFlight, R::Created, 3).unwrap();
        counts.shift(R::InFlight, R::Failed, 1).unwrap();
        counts.shift(R::InFlight, R::Skipped, 1).unwrap();
        // A lease expired: the last claimed record goes back to pending.
        counts.shift(R::InFlight, R::Pending, 1).unwrap();
        assert_eq!(counts.total(), 10);
        assert_eq!(counts.settled(), 5);
        assert_eq!(counts.pending, 5);

        // Refused moves change nothing.
        let before = counts;
        assert!(counts.shift(R::Created, R::Pending, 1).is_err());
        assert!(counts.shift(R::Pending, R::Created, 1).is_err());
        assert!(counts.shift(R::Failed, R::Updated, 1).is_err());
        let short = counts.shift(R::InFlight, R::Created, 1).unwrap_err();
        assert!(short.contains("only 0"), "{short}");
        assert_eq!(counts, before);
        assert_eq!(counts.total(), 10);

        for from in RecordState::ALL {
            for to in RecordState::ALL {
                if from.is_settled() {
                    assert!(!from.may_become(to), "{from:?} → {to:?}");
                }
            }
        }
    }

    #[test]
    fn the_failure_guard_trips_on_the_rate_over_the_last_records_only() {
        let mut guard = FailureGuard::new(10, 5);
        // Four failures in the first ten: no pause.
        for i in 0..10 {
            assert_eq!(guard.settle(i % 3 == 0), None, "record {i}");
        }
        // The window slides: old failures leave it as new ones arrive.
        assert_eq!(guard.settle(false), None);
        assert_eq!(guard.settle(true), None);
        let tripped = (0..10).find_map(|_| guard.settle(true));
        assert_eq!(
            tripped,
            Some(PauseReason::FailureRate { failed: 5, of: 10 })
        );
        assert_eq!(
            tripped.unwrap().describe(),
            "5 of the last 10 records failed"
        );
        guard.reset();
        // After a reset it waits for a full window again.
        for _ in 0..9 {
            assert_eq!(guard.settle(true), None);
        }
        assert!(guard.settle(true).is_some());
        // A threshold above the window never trips.
        let mut never = FailureGuard::new(3, 4);
        assert!((0..20).all(|_| never.settle(true).is_none()));
    }
}

/// A run as it is created: in draft, its records all pending.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub id: crate::ids::RunId,
    pub project_id: crate::ids::ProjectId,
    pub kind: RunKind,
    /// `production` or `test`.
    pub target_role: String,
    pub mapping_version: Option<u32>,
    /// The run this one retries or rolls back.
    pub parent: Option<crate::ids::RunId>,
    /// How the run runs (sample, concurrency, rate, failure guard, window) as JSON,
    /// kept as it was when the run was made.
    pub settings: String,
    pub created_by: Option<crate::ids::AccountId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: crate::ids::RunId,
    pub project_id: crate::ids::ProjectId,
    pub kind: RunKind,
    pub state: RunState,
    pub target_role: String,
    pub mapping_version: Option<u32>,
    pub parent: Option<crate::ids::RunId>,
    pub settings: String,
    pub pause_reason: Option<PauseReason>,
    pub total: u64,
    pub counts: RecordCounts,
    pub created_by: Option<crate::ids::AccountId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A record a worker claimed: its place in the run and its source id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub seq: u64,
    pub source_id: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// A request carrying it may have reached the target (an earlier worker sent its
    /// batch): the target is asked before it is sent again.
    pub sent: bool,
    /// When a request first carried it, if known.
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The user in the target, for a rollback.
    pub scim_id: Option<String>,
}

/// How a claimed record ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub seq: u64,
    /// Created, updated, skipped, failed or deleted.
    pub state: RecordState,
    pub scim_id: Option<String>,
    pub error_class: Option<String>,
    pub error_detail: Option<String>,
    /// The target's `scimType` of a failure, when it gave one.
    pub scim_type: Option<String>,
    /// The groups the user belongs to (names, one per line), kept for the groups that
    /// follow the users, so that the records need not be opened again.
    pub groups: Option<String>,
    /// The user type a moved user fell in, and its password strategy: what the
    /// password stage counts and the verification service checks.
    pub moved: Option<Moved>,
}

/// A moved user's user type (its name, never a value) and password strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    pub user_type: String,
    pub password: crate::user_types::PasswordStrategy,
}

/// A downtime window as people write it: local start and end in an IANA time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    /// `2026-12-05T22:00` (local time in `zone`).
    pub start: String,
    pub end: String,
    /// `Europe/Berlin`, `America/New_York`, `UTC`.
    pub zone: String,
}

/// A window placed on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Placed {
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
}

/// Where `now` is relative to a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opens in this long.
    Before(chrono::Duration),
    /// Closes in this long.
    Open(chrono::Duration),
    Over,
}

/// The most a window may last: a migration window is hours, a few days at most.
pub const MAX_WINDOW_DAYS: i64 = 14;

impl Window {
    /// Places the window on the timeline. A local time the zone skips (the hour
    /// clocks jump over) is refused; one it repeats (the hour they fall back) is the
    /// earlier of the two. Errors name the field.
    pub fn place(&self) -> Result<Placed, (&'static str, String)> {
        use chrono::{LocalResult, NaiveDateTime, TimeZone};
        let zone: chrono_tz::Tz = self.zone.trim().parse().map_err(|_| {
            (
                "zone",
                format!(
                    "{:?} is not an IANA time zone (Europe/Berlin, America/New_York, UTC)",
                    self.zone.trim()
                ),
            )
        })?;
        let at = |field: &'static str,
                  text: &str|
         -> Result<chrono::DateTime<chrono::Utc>, (&'static str, String)> {
            let text = text.trim();
            let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .ok_or_else(|| {
                    (
                        field,
                        format!("{text:?} is not a date and time such as 2026-12-05T22:00"),
                    )
                })?;
            match zone.from_local_datetime(&local) {
                LocalResult::Single(t) => Ok(t.with_timezone(&chrono::Utc)),
                LocalResult::Ambiguous(earlier, _) => Ok(earlier.with_timezone(&chrono::Utc)),
                LocalResult::None => Err((
                    field,
                    format!("{text} does not exist in {zone}: the clocks skip it"),
                )),
            }
        };
        let starts_at = at("start", &self.start)?;
        let ends_at = at("end", &self.end)?;
        if ends_at <= starts_at {
            return Err(("end", "the window must end after it starts".into()));
        }
        if ends_at - starts_at > chrono::Duration::days(MAX_WINDOW_DAYS) {
            return Err((
                "end",
                format!("a window lasts at most {MAX_WINDOW_DAYS} days"),
            ));
        }
        Ok(Placed { starts_at, ends_at })
    }
}

impl Placed {
    pub fn phase(&self, now: chrono::DateTime<chrono::Utc>) -> Phase {
        if now < self.starts_at {
            Phase::Before(self.starts_at - now)
        } else if now < self.ends_at {
            Phase::Open(self.ends_at - now)
        } else {
            Phase::Over
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn window(start: &str, end: &str, zone: &str) -> Window {
        Window {
            start: start.into(),
            end: end.into(),
            zone: zone.into(),
        }
    }

    #[test]
    fn windows_are_placed_in_their_zone_and_say_where_now_is() {
        let placed = window("2026-12-05T22:00", "2026-12-06T04:00", "Europe/Berlin")
            .place()
            .unwrap();
        assert_eq!(
            placed.starts_at,
            Utc.with_ymd_and_hms(2026, 12, 5, 21, 0, 0).unwrap()
        );
        assert_eq!(
            placed.ends_at,
            Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap()
        );
        let before = Utc.with_ymd_and_hms(2026, 12, 5, 20, 30, 0).unwrap();
        assert_eq!(
            placed.phase(before),
            Phase::Before(chrono::Duration::minutes(30))
        );
        let inside = Utc.with_ymd_and_hms(2026, 12, 6, 2, 0, 0).unwrap();
        assert_eq!(
            placed.phase(inside),
            Phase::Open(chrono::Duration::hours(1))
        );
        assert_eq!(placed.phase(placed.ends_at), Phase::Over);

        // Half-hour zones and the night the clocks fall back (the earlier 02:30).
        let india = window("2026-01-10 01:00", "2026-01-10 02:00", "Asia/Kolkata")
            .place()
            .unwrap();
        assert_eq!(
            india.starts_at,
            Utc.with_ymd_and_hms(2026, 1, 9, 19, 30, 0).unwrap()
        );
        let fold = window("2026-10-25T02:30", "2026-10-25T05:00", "Europe/Berlin")
            .place()
            .unwrap();
        assert_eq!(
            fold.starts_at,
            Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap()
        );
    }

    #[test]
    fn bad_windows_name_their_field() {
        let field = |w: Window| w.place().unwrap_err().0;
        assert_eq!(
            field(window(
                "2026-12-05T22:00",
                "2026-12-06T04:00",
                "Mars/Olympus"
            )),
            "zone"
        );
        assert_eq!(field(window("tonight", "2026-12-06T04:00", "UTC")), "start");
        assert_eq!(
            field(window("2026-12-05T22:00", "2026-12-05T21:00", "UTC")),
            "end"
        );
        assert_eq!(
            field(window("2026-12-01T00:00", "2026-12-20T00:00", "UTC")),
            "end"
        );
        // 02:30 on the night Berlin springs forward does not exist.
        let (f, message) = window("2026-03-29T02:30", "2026-03-29T05:00", "Europe/Berlin")
            .place()
            .unwrap_err();
        assert_eq!(f, "start");
        assert!(message.contains("skip"), "{message}");
    }
}
