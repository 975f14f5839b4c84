//! How far a project's migration has got: each step of the journey (uploads,
//! assessment, target, user types, mapping, test run, plan, real run, review,
//! passwords, reconciliation)
//! with its state, what it
//! holds in words, and the next thing to do — worked out from facts the store already
//! keeps, so that a newcomer always sees where they are and where to go.

use crate::numbers::grouped;
use crate::{
    projects::Stage,
    runs::{Run, RunKind, RunState},
    uploads::{Upload, UploadStatus},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One step of the journey, in the order it is walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Uploads,
    Assessment,
    Target,
    UserTypes,
    Mapping,
    TestRun,
    Plan,
    RealRun,
    Review,
    Passwords,
    Reconcile,
}

impl Step {
    pub const ALL: [Step; 11] = [
        Step::Uploads,
        Step::Assessment,
        Step::Target,
        Step::UserTypes,
        Step::Mapping,
        Step::TestRun,
        Step::Plan,
        Step::RealRun,
        Step::Review,
        Step::Passwords,
        Step::Reconcile,
    ];

    /// The step's name in the API and the page (`test_run`).
    pub fn key(self) -> &'static str {
        match self {
            Step::Uploads => "uploads",
            Step::Assessment => "assessment",
            Step::Target => "target",
            Step::UserTypes => "user_types",
            Step::Mapping => "mapping",
            Step::TestRun => "test_run",
            Step::Plan => "plan",
            Step::RealRun => "real_run",
            Step::Review => "review",
            Step::Passwords => "passwords",
            Step::Reconcile => "reconcile",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Step::Uploads => "Upload an export",
            Step::Assessment => "Assess the data",
            Step::Target => "Connect the target",
            Step::UserTypes => "Decide who moves",
            Step::Mapping => "Map the attributes",
            Step::TestRun => "Run a test",
            Step::Plan => "Approve the plan",
            Step::RealRun => "Run the migration",
            Step::Review => "Review the failures",
            Step::Passwords => "Move the passwords",
            Step::Reconcile => "Prove it: reconcile",
        }
    }

    /// The page the step is done on.
    pub fn stage(self) -> Stage {
        match self {
            Step::Uploads => Stage::Uploads,
            Step::Assessment => Stage::Assessment,
            Step::Target => Stage::Target,
            Step::UserTypes => Stage::Goals,
            Step::Mapping => Stage::Mapping,
            Step::TestRun | Step::RealRun | Step::Reconcile => Stage::Runs,
            Step::Plan => Stage::Plan,
            Step::Review => Stage::Review,
            Step::Passwords => Stage::Passwords,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Done,
    /// Under way (an upload being read, a run running).
    Working,
    /// Started but something must be fixed first.
    NeedsAttention,
    NotStarted,
}

impl StepState {
    pub fn label(self) -> &'static str {
        match self {
            StepState::Done => "done",
            StepState::Working => "under way",
            StepState::NeedsAttention => "needs attention",
            StepState::NotStarted => "not started",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepStatus {
    pub step: Step,
    pub state: StepState,
    /// What the step holds, or what is wrong with it, in words.
    pub summary: String,
}

/// Every step's status, and the first one left to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Journey {
    pub steps: Vec<StepStatus>,
    /// The step to take next: the first not done (`None` once the migration ran).
    pub next: Option<Step>,
}

impl Journey {
    pub fn done(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.state == StepState::Done)
            .count()
    }
}

/// What the journey is worked out from.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The newest uploads, newest first.
    pub uploads: Vec<Upload>,
    pub records: u64,
    /// The assessment's state and when it began, if one was ever computed.
    pub assessment: Option<(crate::assess::AssessmentStatus, DateTime<Utc>)>,
    /// The production target: `None` when not saved; else whether its last
    /// connection test passed (`None`: never tested).
    pub target: Option<Option<bool>>,
    /// User types: `None` when never saved; else their problems.
    pub user_type_problems: Option<usize>,
    /// Mapping: `None` when no version was saved; else its problems.
    pub mapping_problems: Option<usize>,
    /// The newest runs, newest first.
    pub runs: Vec<Run>,
    /// Where the users stand with support staff's review.
    pub review: crate::review::ReviewSummary,
    pub passwords: PasswordFacts,
    /// The plan: `None` when never saved; else its latest version and whether it
    /// is approved.
    pub plan: Option<(u32, bool)>,
}

/// What the Passwords step is worked out from.
#[derive(Clone, Debug, Default)]
pub struct PasswordFacts {
    /// Some moving user type's passwords move silently at first login.
    pub silent_types: bool,
    /// Some moving user type's users choose a new password by invitation.
    pub reset_types: bool,
    /// The verification service answers the login script.
    pub service_on: bool,
    /// Invitation waves start by themselves.
    pub waves_planned: bool,
    /// Users whose password moved in production (verified at a login, or reset).
    pub moved: u64,
}

fn status(step: Step, state: StepState, summary: impl Into<String>) -> StepStatus {
    StepStatus {
        step,
        state,
        summary: summary.into(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

impl Journey {
    pub fn of(facts: &Facts) -> Journey {
        let steps = vec![
            uploads(facts),
            assessment(facts),
            target(facts),
            user_types(facts),
            mapping(facts),
            runs(facts, Step::TestRun),
            plan(facts),
            runs(facts, Step::RealRun),
            review(facts),
            passwords(facts),
            reconcile(facts),
        ];
        // A test run is advice, not a gate; once the real run has run, what is left
        // is its failures, then passwords that cannot move until something is set up
        // (passwords that move as users log in need nobody).
        let next = if steps
            .iter()
            .any(|s| s.step == Step::RealRun && s.state == StepState::Done)
        {
            steps
                .iter()
                .find(|s| {
                    (s.step == Step::Review && s.state != StepState::Done)
                        || (s.step == Step::Passwords && s.state == StepState::NeedsAttention)
                        || (s.step == Step::Reconcile && s.state != StepState::Done)
                })
                .map(|s| s.step)
        } else {
            // The plan is advice too: a project that never saved one is not held.
            steps
                .iter()
                .find(|s| {
                    s.state != StepState::Done
                        && s.step != Step::Reconcile
                        && !(s.step == Step::Plan && s.state == StepState::NotStarted)
                })
                .map(|s| s.step)
        };
        Journey { steps, next }
    }
}

fn uploads(facts: &Facts) -> StepStatus {
    let reading = facts
        .uploads
        .iter()
        .filter(|u| matches!(u.status, UploadStatus::Stored | UploadStatus::Parsing))
        .count();
    let read = facts
        .uploads
        .iter()
        .filter(|u| u.status == UploadStatus::Parsed)
        .count();
    let users = plural(facts.records, "user", "users");
    if reading > 0 {
        return status(
            Step::Uploads,
            StepState::Working,
            format!("{reading} being read; {users} so far"),
        );
    }
    match facts.uploads.first() {
        None => status(
            Step::Uploads,
            StepState::NotStarted,
            "No export uploaded yet",
        ),
        Some(newest) if newest.status == UploadStatus::Failed => status(
            Step::Uploads,
            StepState::NeedsAttention,
            format!(
                "The newest upload could not be read ({}); {users} from earlier uploads",
                newest.file_name
            ),
        ),
        Some(_) if facts.records == 0 => status(
            Step::Uploads,
            StepState::NeedsAttention,
            "No user could be read from the uploads",
        ),
        Some(_) => status(
            Step::Uploads,
            StepState::Done,
            format!("{users} from {}", plural(read as u64, "upload", "uploads")),
        ),
    }
}

fn assessment(facts: &Facts) -> StepStatus {
    use crate::assess::AssessmentStatus;
    let newest_read = facts
        .uploads
        .iter()
        .filter_map(|u| u.parse_finished_at)
        .max();
    match facts.assessment {
        _ if facts.records == 0 => status(
            Step::Assessment,
            StepState::NotStarted,
            "Waits for an export",
        ),
        None => status(Step::Assessment, StepState::NotStarted, "Not computed yet"),
        Some((AssessmentStatus::Running, _)) => {
            status(Step::Assessment, StepState::Working, "Being computed")
        }
        Some((AssessmentStatus::Failed, _)) => status(
            Step::Assessment,
            StepState::NeedsAttention,
            "The last computation failed: compute it again",
        ),
        Some((AssessmentStatus::Ready, began)) if newest_read.is_some_and(|at| at > began) => {
            status(
                Step::Assessment,
                StepState::NeedsAttention,
                "Out of date: an upload was read since it was computed",
            )
        }
        Some((AssessmentStatus::Ready, _)) => {
            status(Step::Assessment, StepState::Done, "Computed for every user")
        }
    }
}

fn target(facts: &Facts) -> StepStatus {
    match facts.target {
        None => status(
            Step::Target,
            StepState::NotStarted,
            "No production target saved",
        ),
        Some(None) => status(
            Step::Target,
            StepState::NeedsAttention,
            "Saved; test its connection",
        ),
        Some(Some(false)) => status(
            Step::Target,
            StepState::NeedsAttention,
            "The last connection test failed",
        ),
        Some(Some(true)) => status(Step::Target, StepState::Done, "Connection tested"),
    }
}

fn user_types(facts: &Facts) -> StepStatus {
    match facts.user_type_problems {
        None => status(
            Step::UserTypes,
            StepState::NotStarted,
            "Not saved: say who moves and how their passwords follow",
        ),
        Some(0) => status(Step::UserTypes, StepState::Done, "Saved"),
        Some(n) => status(
            Step::UserTypes,
            StepState::NeedsAttention,
            format!("Saved with {}", plural(n as u64, "problem", "problems")),
        ),
    }
}

fn mapping(facts: &Facts) -> StepStatus {
    match facts.mapping_problems {
        None => status(
            Step::Mapping,
            StepState::NotStarted,
            "A suggestion waits: review it and save it",
        ),
        Some(0) => status(Step::Mapping, StepState::Done, "Saved"),
        Some(n) => status(
            Step::Mapping,
            StepState::NeedsAttention,
            format!(
                "The saved version has {}",
                plural(n as u64, "problem", "problems")
            ),
        ),
    }
}

fn runs(facts: &Facts, step: Step) -> StepStatus {
    let kind = if step == Step::TestRun {
        RunKind::TestRun
    } else {
        RunKind::RealRun
    };
    let mine: Vec<&Run> = facts.runs.iter().filter(|r| r.kind == kind).collect();
    let what = if step == Step::TestRun {
        "test run"
    } else {
        "real run"
    };
    if let Some(active) = mine.iter().find(|r| {
        matches!(
            r.state,
            RunState::Scheduled | RunState::Running | RunState::Paused
        )
    }) {
        let words = match active.state {
            RunState::Scheduled => format!("A {what} is scheduled"),
            RunState::Paused => format!("A {what} is paused"),
            _ => format!(
                "A {what} is running: {} of {} settled",
                grouped(active.counts.settled()),
                grouped(active.total)
            ),
        };
        return status(step, StepState::Working, words);
    }
    match mine
        .iter()
        .find(|r| matches!(r.state, RunState::Succeeded | RunState::Failed))
    {
        Some(run) => {
            let failed = run.counts.failed;
            let words = if failed == 0 {
                format!(
                    "The last {what} finished: {} created",
                    grouped(run.counts.created)
                )
            } else {
                format!(
                    "The last {what} finished: {} created, {} failed",
                    grouped(run.counts.created),
                    grouped(failed)
                )
            };
            status(step, StepState::Done, words)
        }
        None => status(step, StepState::NotStarted, format!("No {what} yet")),
    }
}

fn plan(facts: &Facts) -> StepStatus {
    match facts.plan {
        None => status(
            Step::Plan,
            StepState::NotStarted,
            "No plan saved: requirements, risks, the window and an owner's approval",
        ),
        Some((version, true)) => status(
            Step::Plan,
            StepState::Done,
            format!("Version {version} approved"),
        ),
        Some((version, false)) => status(
            Step::Plan,
            StepState::NeedsAttention,
            format!("Version {version} waits for an owner's approval"),
        ),
    }
}

fn reconcile(facts: &Facts) -> StepStatus {
    let mine: Vec<&Run> = facts
        .runs
        .iter()
        .filter(|r| r.kind == RunKind::Reconcile)
        .collect();
    if let Some(active) = mine.iter().find(|r| r.state.is_active()) {
        return status(
            Step::Reconcile,
            StepState::Working,
            format!(
                "A reconciliation is {}: {} of {} read back",
                active.state.label(),
                grouped(active.counts.settled()),
                grouped(active.total)
            ),
        );
    }
    match mine
        .iter()
        .find(|r| r.state.is_final() && r.state != RunState::Cancelled)
    {
        None => status(
            Step::Reconcile,
            StepState::NotStarted,
            "After the real run, read every user back from the target",
        ),
        Some(run) if run.counts.failed == 0 => status(
            Step::Reconcile,
            StepState::Done,
            format!(
                "The last reconciliation found all {} as sent",
                plural(run.counts.skipped, "user", "users")
            ),
        ),
        Some(run) => status(
            Step::Reconcile,
            StepState::NeedsAttention,
            format!(
                "The last reconciliation found {} different or gone",
                plural(run.counts.failed, "user", "users")
            ),
        ),
    }
}

fn review(facts: &Facts) -> StepStatus {
    let r = &facts.review;
    let real_run_done = facts.runs.iter().any(|run| {
        run.kind == RunKind::RealRun && matches!(run.state, RunState::Succeeded | RunState::Failed)
    });
    if r.waiting > 0 {
        let since = r
            .oldest_waiting_since
            .map(|at| format!(", the oldest since {}", at.format("%Y-%m-%d")))
            .unwrap_or_default();
        return status(
            Step::Review,
            StepState::NeedsAttention,
            format!(
                "{} for review{since}",
                plural(r.waiting, "user waits", "users wait")
            ),
        );
    }
    if !real_run_done {
        return status(
            Step::Review,
            StepState::NotStarted,
            "Failed users of the real run come here",
        );
    }
    status(
        Step::Review,
        StepState::Done,
        format!(
            "Every user accounted for: {} migrated, {} skipped on purpose",
            grouped(r.migrated),
            grouped(r.skipped)
        ),
    )
}

fn passwords(facts: &Facts) -> StepStatus {
    let p = &facts.passwords;
    if facts.user_type_problems.is_none() {
        return status(
            Step::Passwords,
            StepState::NotStarted,
            "Waits for the user types, which say how passwords follow",
        );
    }
    if !p.silent_types && !p.reset_types {
        return status(
            Step::Passwords,
            StepState::Done,
            "No moving user type keeps or resets a password",
        );
    }
    // Users in the target whose type moves a password, counted when a production run
    // finished (a rollback's deletions and a user found again are not counted twice).
    let created = facts.review.password_users;
    if created == 0 {
        return status(
            Step::Passwords,
            StepState::NotStarted,
            "Passwords follow once a real run has created the users",
        );
    }
    let moved = p.moved.min(created);
    if moved == created {
        return status(
            Step::Passwords,
            StepState::Done,
            format!("Every password moved: {}", plural(created, "user", "users")),
        );
    }
    let share = format!(
        "{} of {} moved ({:.0} %)",
        grouped(moved),
        plural(created, "password", "passwords"),
        moved as f64 * 100.0 / created as f64
    );
    let mut missing = Vec::new();
    if p.silent_types && !p.service_on {
        missing.push("switch the verification service on");
    }
    if p.reset_types && !p.waves_planned {
        missing.push("plan the invitation waves");
    }
    if missing.is_empty() {
        status(Step::Passwords, StepState::Working, share)
    } else {
        status(
            Step::Passwords,
            StepState::NeedsAttention,
            format!("{share}: {}", missing.join(" and ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        assess::AssessmentStatus,
        ids::{ProjectId, RunId, UploadId},
        runs::RecordCounts,
    };
    use uuid::Uuid;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap()
    }

    fn upload(status: UploadStatus, read_at: Option<i64>) -> Upload {
        Upload {
            id: UploadId(Uuid::nil()),
            project_id: ProjectId(Uuid::nil()),
            file_name: "users.csv".into(),
            size_bytes: 10,
            sha256: String::new(),
            status,
            format: None,
            source: None,
            bytes_read: 10,
            rows_ok: 2,
            rows_failed: 0,
            records_new: 2,
            records_changed: 0,
            records_unchanged: 0,
            records_missing: 0,
            error: None,
            created_by: None,
            created_at: at(0),
            parse_started_at: read_at.map(at),
            parse_finished_at: read_at.map(at),
            purged_at: None,
        }
    }

    fn run(kind: RunKind, state: RunState, created: u64, failed: u64) -> Run {
        Run {
            id: RunId(Uuid::nil()),
            project_id: ProjectId(Uuid::nil()),
            kind,
            state,
            target_role: "production".into(),
            mapping_version: Some(1),
            parent: None,
            settings: String::new(),
            pause_reason: None,
            total: created + failed,
            counts: RecordCounts {
                created,
                failed,
                ..RecordCounts::default()
            },
            created_by: None,
            created_at: at(30),
            started_at: Some(at(30)),
            finished_at: None,
        }
    }

    fn state(journey: &Journey, step: Step) -> (StepState, String) {
        let s = journey.steps.iter().find(|s| s.step == step).unwrap();
        (s.state, s.summary.clone())
    }

    #[test]
    fn a_new_project_starts_with_an_upload() {
        let journey = Journey::of(&Facts::default());
        assert_eq!(journey.next, Some(Step::Uploads));
        assert_eq!(journey.done(), 0);
        assert_eq!(journey.steps.len(), Step::ALL.len());
    }

    #[test]
    fn each_step_says_what_it_holds_and_the_first_left_comes_next() {
        let mut facts = Facts {
            uploads: vec![upload(UploadStatus::Parsed, Some(1))],
            records: 2,
            assessment: Some((AssessmentStatus::Ready, at(2))),
            target: Some(Some(true)),
            user_type_problems: None,
            mapping_problems: Some(0),
            runs: vec![],
            review: Default::default(),
            passwords: Default::default(),
            plan: None,
        };
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Uploads),
            (StepState::Done, "2 users from 1 upload".into())
        );
        assert_eq!(journey.next, Some(Step::UserTypes));
        // A newer upload read after the assessment makes it out of date.
        facts
            .uploads
            .insert(0, upload(UploadStatus::Parsed, Some(5)));
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Assessment).0,
            StepState::NeedsAttention
        );
        assert_eq!(journey.next, Some(Step::Assessment));
        // A newest upload that failed asks for attention, earlier users still count.
        facts.uploads.insert(0, upload(UploadStatus::Failed, None));
        let (s, words) = state(&Journey::of(&facts), Step::Uploads);
        assert_eq!(s, StepState::NeedsAttention);
        assert!(words.contains("could not be read"), "{words}");
        assert!(words.contains("2 users"), "{words}");
        // A target never tested, user types with problems.
        facts.target = Some(None);
        facts.user_type_problems = Some(2);
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Target),
            (
                StepState::NeedsAttention,
                "Saved; test its connection".into()
            )
        );
        assert_eq!(state(&journey, Step::UserTypes).1, "Saved with 2 problems");
    }

    #[test]
    fn runs_under_way_and_finished_and_the_end_of_the_journey() {
        let mut facts = Facts {
            runs: vec![run(RunKind::TestRun, RunState::Running, 40, 0)],
            ..Facts::default()
        };
        let (s, words) = state(&Journey::of(&facts), Step::TestRun);
        assert_eq!(s, StepState::Working);
        assert!(words.contains("40 of 40 settled"), "{words}");
        facts.runs = vec![
            run(RunKind::RealRun, RunState::Failed, 9_198, 53),
            run(RunKind::TestRun, RunState::Succeeded, 99, 0),
        ];
        let journey = Journey::of(&facts);
        // Finished with failures is finished; what is left is its failures.
        assert_eq!(
            state(&journey, Step::RealRun),
            (
                StepState::Done,
                "The last real run finished: 9,198 created, 53 failed".into()
            )
        );
        facts.review.waiting = 1;
        let (_, words) = state(&Journey::of(&facts), Step::Review);
        assert_eq!(words, "1 user waits for review");
        facts.review.waiting = 53;
        facts.review.oldest_waiting_since = Some(at(3));
        let journey = Journey::of(&facts);
        let (s, words) = state(&journey, Step::Review);
        assert_eq!(s, StepState::NeedsAttention);
        assert!(
            words.starts_with("53 users wait for review, the oldest since "),
            "{words}"
        );
        assert_eq!(journey.next, Some(Step::Review));
        // Worked through: every user migrated or skipped ends the journey.
        facts.review.waiting = 0;
        facts.review.migrated = 9_240;
        facts.review.skipped = 11;
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Review),
            (
                StepState::Done,
                "Every user accounted for: 9,240 migrated, 11 skipped on purpose".into()
            )
        );
        // Then the proof: a reconciliation that finds a user changed asks for
        // attention; one that finds everyone as sent ends the journey.
        assert_eq!(journey.next, Some(Step::Reconcile));
        let mut reconciled = run(RunKind::Reconcile, RunState::Failed, 0, 2);
        reconciled.counts.skipped = 9_238;
        facts.runs.insert(0, reconciled);
        let (s, words) = state(&Journey::of(&facts), Step::Reconcile);
        assert_eq!(s, StepState::NeedsAttention);
        assert_eq!(
            words,
            "The last reconciliation found 2 users different or gone"
        );
        let mut clean = run(RunKind::Reconcile, RunState::Succeeded, 0, 0);
        clean.counts.skipped = 9_240;
        facts.runs.insert(0, clean);
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Reconcile),
            (
                StepState::Done,
                "The last reconciliation found all 9,240 users as sent".into()
            )
        );
        assert_eq!(journey.next, None);
    }

    #[test]
    fn a_saved_plan_waits_for_its_approval_and_no_plan_holds_nobody() {
        let mut facts = Facts {
            runs: vec![run(RunKind::TestRun, RunState::Succeeded, 99, 0)],
            uploads: vec![upload(UploadStatus::Parsed, Some(1))],
            records: 2,
            assessment: Some((AssessmentStatus::Ready, at(2))),
            target: Some(Some(true)),
            user_type_problems: Some(0),
            mapping_problems: Some(0),
            ..Facts::default()
        };
        let journey = Journey::of(&facts);
        assert_eq!(state(&journey, Step::Plan).0, StepState::NotStarted);
        assert_eq!(journey.next, Some(Step::RealRun));
        facts.plan = Some((2, false));
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Plan),
            (
                StepState::NeedsAttention,
                "Version 2 waits for an owner's approval".into()
            )
        );
        assert_eq!(journey.next, Some(Step::Plan));
        facts.plan = Some((2, true));
        let journey = Journey::of(&facts);
        assert_eq!(state(&journey, Step::Plan).0, StepState::Done);
        assert_eq!(journey.next, Some(Step::RealRun));
    }

    #[test]
    fn passwords_follow_the_real_run_until_every_one_moved() {
        let mut facts = Facts {
            user_type_problems: Some(0),
            passwords: PasswordFacts {
                silent_types: true,
                reset_types: true,
                ..PasswordFacts::default()
            },
            review: Default::default(),
            ..Facts::default()
        };
        assert_eq!(
            state(&Journey::of(&facts), Step::Passwords).0,
            StepState::NotStarted
        );
        facts.runs = vec![run(RunKind::RealRun, RunState::Succeeded, 210, 0)];
        facts.review.migrated = 210;
        facts.review.password_users = 200;
        facts.passwords.moved = 50;
        let journey = Journey::of(&facts);
        assert_eq!(
            state(&journey, Step::Passwords),
            (
                StepState::NeedsAttention,
                "50 of 200 passwords moved (25 %): switch the verification service on and \
                 plan the invitation waves"
                    .into()
            )
        );
        // Once the review is done, what keeps passwords from moving comes next.
        assert_eq!(journey.next, Some(Step::Passwords));
        facts.passwords.service_on = true;
        facts.passwords.waves_planned = true;
        let journey = Journey::of(&facts);
        assert_eq!(state(&journey, Step::Passwords).0, StepState::Working);
        // Passwords moving at logins need nobody: what is left is the proof.
        assert_eq!(journey.next, Some(Step::Reconcile));
        facts.passwords.moved = 200;
        assert_eq!(
            state(&Journey::of(&facts), Step::Passwords),
            (StepState::Done, "Every password moved: 200 users".into())
        );
        facts.passwords = PasswordFacts::default();
        assert_eq!(
            state(&Journey::of(&facts), Step::Passwords).0,
            StepState::Done
        );
    }
}
