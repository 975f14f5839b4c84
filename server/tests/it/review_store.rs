//! The review queue's store on SQLite and PostgreSQL: the latest outcome wins whatever
//! order runs are folded in, a repeat changes nothing, a test run's failure does not
//! undo a migration to production, resolved users failing again are open again, a
//! retry's records that may have reached the target are claimed as sent (looked up
//! first); and an action on more than 100,000 users goes on in the background, step by
//! step, to the last user, with its progress kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::{Duration, TimeZone, Utc};
use common::{TestClock, TestDb, postgres_db, service, sqlite_db, store};
use domain::{
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::{ProjectId, RunId},
    ports::{RunRecords, Store},
    projects::ProjectDraft,
    review::{
        NewReviewEvent, Outcome, QueueFilter, QueuedFailure, ReviewAction, ReviewState, Selection,
        StoredFilter, TaskState, View,
    },
    runs::{NewRun, RunKind},
};
use std::sync::Arc;

fn failure(id: &str, at: chrono::DateTime<Utc>, class: &str) -> QueuedFailure {
    QueuedFailure {
        source_id: id.into(),
        at,
        error_class: class.into(),
        scim_type: None,
        detail: format!("{class} detail"),
        user_type: None,
        digests: vec![format!("digest-of-{id}")],
    }
}

async fn new_run(
    store: &Arc<dyn Store>,
    owner: &domain::accounts::Actor,
    project: ProjectId,
    role: &str,
    ids: RunRecords<'_>,
) -> RunId {
    let id = RunId(uuid::Uuid::now_v7());
    let at = Utc::now();
    store
        .create_run(
            &NewRun {
                id,
                project_id: project,
                kind: RunKind::RealRun,
                target_role: role.into(),
                mapping_version: None,
                parent: None,
                settings: "{}".into(),
                created_by: Some(owner.account_id),
                created_at: at,
            },
            ids,
            &NewAuditEntry::by(owner, at, AuditAction::RunCreated, ObjectKind::Run, id)
                .in_project(project),
        )
        .await
        .unwrap();
    id
}

async fn story(db: TestDb) {
    let store = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Review", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let t = |minutes: i64| {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
    };
    let first = new_run(&store, &owner, project, "production", RunRecords::Ids(&[])).await;
    let second = new_run(&store, &owner, project, "production", RunRecords::Ids(&[])).await;
    let test = new_run(&store, &owner, project, "test", RunRecords::Ids(&[])).await;
    let everyone = StoredFilter {
        view: View::All,
        ..Default::default()
    };

    // The first run fails a and b; the second migrates a and fails b again.
    store
        .queue_outcomes(
            project,
            first,
            "production",
            &[failure("a", t(1), "mapping"), failure("b", t(1), "network")],
            &[],
        )
        .await
        .unwrap();
    store
        .queue_outcomes(
            project,
            second,
            "production",
            &[failure("b", t(5), "invalid_data")],
            &[("a".into(), t(5))],
        )
        .await
        .unwrap();
    // The first run folded in again (a finish repeated after a crash): older, ignored.
    store
        .queue_outcomes(
            project,
            first,
            "production",
            &[failure("a", t(1), "mapping"), failure("b", t(1), "network")],
            &[],
        )
        .await
        .unwrap();
    let a = store.queue_item(project, "a").await.unwrap().unwrap();
    assert_eq!(
        (a.outcome, a.state, a.run_id),
        (Outcome::Migrated, ReviewState::Resolved, second)
    );
    let b = store.queue_item(project, "b").await.unwrap().unwrap();
    assert_eq!(
        (b.outcome, b.error_class.as_str(), b.run_id),
        (Outcome::Failed, "invalid_data", second)
    );
    assert_eq!(b.first_failed_at, t(1), "the first failure is kept");
    let history: Vec<String> = store
        .queue_events(project, "b")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(history, ["failed", "failed"], "the repeat added nothing");

    // A test run's failure does not undo the migration of a to production.
    store
        .queue_outcomes(
            project,
            test,
            "test",
            &[failure("a", t(9), "invalid_data")],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .queue_item(project, "a")
            .await
            .unwrap()
            .unwrap()
            .outcome,
        Outcome::Migrated
    );

    // Resolved by hand, b fails again: open again. Skipped stays skipped.
    let note = NewReviewEvent {
        kind: "state",
        detail: "marked resolved".into(),
    };
    let audit = NewAuditEntry::by(
        &owner,
        t(10),
        AuditAction::ReviewActed,
        ObjectKind::Project,
        project,
    );
    store
        .queue_act(
            project,
            &["b".into()],
            &ReviewAction::SetState {
                state: ReviewState::Resolved,
            },
            &note,
            owner.account_id,
            t(10),
            Some(&audit),
        )
        .await
        .unwrap();
    store
        .queue_outcomes(
            project,
            second,
            "production",
            &[
                failure("b", t(11), "invalid_data"),
                failure("c", t(11), "mapping"),
            ],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store.queue_item(project, "b").await.unwrap().unwrap().state,
        ReviewState::Open
    );
    let skip = ReviewAction::Skip {
        reason: "gone".into(),
    };
    let note = NewReviewEvent {
        kind: "skipped",
        detail: "skipped: gone".into(),
    };
    store
        .queue_act(
            project,
            &["c".into()],
            &skip,
            &note,
            owner.account_id,
            t(12),
            None,
        )
        .await
        .unwrap();
    store
        .queue_outcomes(
            project,
            second,
            "production",
            &[failure("c", t(13), "mapping")],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store.queue_item(project, "c").await.unwrap().unwrap().state,
        ReviewState::Skipped
    );

    // Found by a search digest; counted and grouped.
    let found = store
        .queue(
            project,
            &StoredFilter {
                digests: Some(vec!["digest-of-c".into()]),
                ..everyone.clone()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        store.queue_count(project, &everyone, None).await.unwrap(),
        3
    );
    assert_eq!(
        store
            .queue_count(
                project,
                &StoredFilter {
                    error_class: Some("mapping".into()),
                    ..everyone.clone()
                },
                Some(1)
            )
            .await
            .unwrap(),
        1,
        "counted up to the cap"
    );
    let waiting = store
        .queue_count(project, &StoredFilter::default(), None)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "b waits; a is migrated, c skipped");
    let summary = store.queue_summary(project).await.unwrap();
    assert_eq!((summary.waiting, summary.skipped), (1, 1));

    // A retry of chosen users: those that may have reached the target are claimed as
    // sent, so the engine looks them up before sending them again.
    let chosen = [("b".to_string(), true), ("c".to_string(), false)];
    let retry = new_run(
        &store,
        &owner,
        project,
        "production",
        RunRecords::Reviewed(&chosen),
    )
    .await;
    let now = Utc::now();
    let claimed = store
        .claim(retry, "w~1:0", 10, now, now + Duration::seconds(60))
        .await
        .unwrap();
    let sent: Vec<(String, bool)> = claimed.into_iter().map(|c| (c.source_id, c.sent)).collect();
    assert_eq!(sent, [("b".to_string(), true), ("c".to_string(), false)]);

    // A real run leaves the skipped user out.
    let full = new_run(&store, &owner, project, "production", RunRecords::Project).await;
    assert_eq!(
        store.run(full).await.unwrap().unwrap().total,
        0,
        "the project holds no records, c is skipped"
    );
}

#[tokio::test]
async fn the_latest_outcome_wins_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn the_latest_outcome_wins_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_on_more_than_100_000_users_goes_on_in_the_background() {
    let db = sqlite_db();
    let store = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Many", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let run = new_run(&store, &owner, project, "production", RunRecords::Ids(&[])).await;
    let n = domain::review::BACKGROUND_FROM as usize + 1;
    let at = Utc::now();
    for first in (0..n).step_by(5_000) {
        let page: Vec<QueuedFailure> = (first..(first + 5_000).min(n))
            .map(|i| QueuedFailure {
                digests: vec![],
                ..failure(&format!("u{i:06}"), at, "invalid_data")
            })
            .collect();
        store
            .queue_outcomes(project, run, "production", &page, &[])
            .await
            .unwrap();
    }
    let result = ferry
        .review_act(
            &owner,
            project,
            &Selection::Filter {
                filter: Box::new(QueueFilter::default()),
                expected: Some(n as u64),
            },
            &ReviewAction::Skip {
                reason: "the customer closed these accounts".into(),
            },
        )
        .await
        .unwrap();
    let task = result.task.expect("a background task");
    assert_eq!((task.total, result.affected), (n as u64, 0));
    let started = std::time::Instant::now();
    let done = loop {
        let now = store.review_task(task.id).await.unwrap().unwrap();
        assert!(now.done <= now.total);
        if now.state != TaskState::Running {
            break now;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "the task never ended: {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        (done.state, done.done),
        (TaskState::Succeeded, n as u64),
        "{done:?}"
    );
    let summary = store.queue_summary(project).await.unwrap();
    assert_eq!((summary.skipped, summary.waiting), (n as u64, 0));
    // Each user's history says why.
    let history = store.queue_events(project, "u100000").await.unwrap();
    assert_eq!(
        history[0].detail,
        "skipped: the customer closed these accounts"
    );
    // A finished task cannot be cancelled.
    let err = ferry
        .cancel_review_task(&owner, project, task.id)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ended already"), "{err}");
}
