//! The run table on SQLite always and on PostgreSQL whenever the test command provides
//! a server: runs created with their records, state changes compared and set, records
//! claimed under leases by concurrent workers without overlap, expired leases
//! reclaimed, stale workers unable to settle what they lost, released records — and
//! after every step the counts equal the records' states and add up to the total.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::{Duration, TimeZone, Utc};
use common::{TestClock, TestDb, postgres_db, service, sqlite_db, store};
use domain::{
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::RunId,
    ports::{RunRecords, Store},
    projects::ProjectDraft,
    runs::{NewRun, PauseReason, RecordState, Run, RunKind, RunState, Settled},
};
use std::{collections::HashSet, sync::Arc};

fn assert_adds_up(run: &Run) {
    assert_eq!(run.counts.total(), run.total, "{:?}", run.counts);
}

async fn story(db: TestDb) {
    let store = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Run", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 22, 0, 0).unwrap();
    let id = RunId(uuid::Uuid::now_v7());
    let audit = |action| {
        NewAuditEntry::by(&owner, at, action, ObjectKind::Run, id)
            .in_project(project)
            .detail("test".to_string())
    };
    let ids: Vec<String> = (0..1_200).map(|i| format!("legacy-{i:05}")).collect();
    let new = NewRun {
        id,
        project_id: project,
        kind: RunKind::TestRun,
        target_role: "test".into(),
        mapping_version: Some(3),
        parent: None,
        settings: r#"{"sample": 1200}"#.into(),
        created_by: Some(owner.account_id),
        created_at: at,
    };
    let run = store
        .create_run(&new, RunRecords::Ids(&ids), &audit(AuditAction::RunCreated))
        .await
        .unwrap();
    assert_eq!(run.state, RunState::Draft);
    assert_eq!(run.total, 1_200);
    assert_eq!(run.counts.pending, 1_200);
    assert_eq!(run.mapping_version, Some(3));
    assert_adds_up(&run);

    // A record twice is refused, and nothing of that run is left.
    let twice = NewRun {
        id: RunId(uuid::Uuid::now_v7()),
        ..new.clone()
    };
    let err = store
        .create_run(
            &twice,
            RunRecords::Ids(&["a".into(), "a".into()]),
            &audit(AuditAction::RunCreated),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    assert!(store.run(twice.id).await.unwrap().is_none());

    // State changes are compared and set.
    let running = store
        .set_run_state(
            id,
            RunState::Draft,
            RunState::Running,
            None,
            at,
            &audit(AuditAction::RunStateChanged),
        )
        .await
        .unwrap();
    assert_eq!(running.started_at, Some(at));
    let stale = store
        .set_run_state(
            id,
            RunState::Draft,
            RunState::Cancelled,
            None,
            at,
            &audit(AuditAction::RunStateChanged),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.http_status(), 409);

    // One active run per project, kept by the database: two other drafts started at
    // once, while this one runs, are both refused; once it ends, exactly one of two
    // racing starts wins.
    // Two drafts of a project, ready to be started at once.
    let two_drafts = |project| {
        let (store, new, ids) = (store.clone(), new.clone(), ids.clone());
        let audit = audit(AuditAction::RunCreated);
        async move {
            let mut drafts = Vec::new();
            for _ in 0..2 {
                let other = NewRun {
                    id: RunId(uuid::Uuid::now_v7()),
                    project_id: project,
                    ..new.clone()
                };
                store
                    .create_run(&other, RunRecords::Ids(&ids[..2]), &audit)
                    .await
                    .unwrap();
                drafts.push(other.id);
            }
            drafts
        }
    };
    let drafts = two_drafts(project).await;
    let start = |run: RunId| {
        let store = store.clone();
        let audit = audit(AuditAction::RunStateChanged);
        async move {
            store
                .set_run_state(run, RunState::Draft, RunState::Scheduled, None, at, &audit)
                .await
        }
    };
    let (a, b) = tokio::join!(start(drafts[0]), start(drafts[1]));
    for refused in [a.unwrap_err(), b.unwrap_err()] {
        assert_eq!(refused.http_status(), 409);
        assert!(refused.to_string().contains("another run"), "{refused}");
    }
    let quiet = ferry
        .create_project(&owner, ProjectDraft::new("Quiet", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let racing = two_drafts(quiet).await;
    let (a, b) = tokio::join!(start(racing[0]), start(racing[1]));
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "exactly one of two racing starts wins"
    );

    // Two workers claim at once: every record once, none twice.
    let lease = at + Duration::seconds(30);
    let (a, b) = tokio::join!(
        store.claim(id, "worker-a", 400, at, lease),
        store.claim(id, "worker-b", 400, at, lease)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 800);
    let seen: HashSet<u64> = a.iter().chain(&b).map(|c| c.seq).collect();
    assert_eq!(seen.len(), 800, "a record was claimed twice");
    assert!(a.iter().all(|c| c.attempts == 1));
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.counts.in_flight, 800);
    assert_adds_up(&run);

    // Worker A settles its records: created, skipped and failed.
    let outcomes: Vec<Settled> = a
        .iter()
        .enumerate()
        .map(|(i, c)| Settled {
            seq: c.seq,
            state: match i % 4 {
                0 | 1 => RecordState::Created,
                2 => RecordState::Skipped,
                _ => RecordState::Failed,
            },
            scim_id: (i % 4 < 2).then(|| format!("scim-{}", c.seq)),
            error_class: (i % 4 == 3).then(|| "invalid_value".into()),
            error_detail: (i % 4 == 3).then(|| "userName is not unique".into()),
            scim_type: None,
            groups: None,
            moved: None,
        })
        .collect();
    assert_eq!(
        store.settle(id, "worker-a", &outcomes, at).await.unwrap(),
        400
    );
    // Settling again changes nothing: they are no longer in flight.
    assert_eq!(
        store.settle(id, "worker-a", &outcomes, at).await.unwrap(),
        0
    );
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(
        (run.counts.created, run.counts.skipped, run.counts.failed),
        (200, 100, 100)
    );
    assert_adds_up(&run);

    // Worker B keeps its lease alive; then it stops. Once the lease expires, C takes
    // B's records back with the rest, and B can no longer settle them.
    assert_eq!(
        store
            .heartbeat(id, "worker-b", lease + Duration::seconds(30))
            .await
            .unwrap(),
        400
    );
    let later = lease + Duration::seconds(31);
    let c = store
        .claim(id, "worker-c", 1_000, later, later + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(c.len(), 800, "400 never claimed plus B's 400");
    let retaken: Vec<_> = c.iter().filter(|r| r.attempts == 2).collect();
    assert_eq!(retaken.len(), 400);
    let from_b: Vec<Settled> = b
        .iter()
        .map(|r| Settled {
            seq: r.seq,
            state: RecordState::Created,
            scim_id: Some("late".into()),
            error_class: None,
            error_detail: None,
            scim_type: None,
            groups: None,
            moved: None,
        })
        .collect();
    assert_eq!(
        store.settle(id, "worker-b", &from_b, later).await.unwrap(),
        0
    );
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.counts.in_flight, 800);
    assert_adds_up(&run);

    // Pausing gives C's records back.
    let paused = store
        .set_run_state(
            id,
            RunState::Running,
            RunState::Paused,
            Some(&PauseReason::FailureRate { failed: 5, of: 10 }),
            later,
            &audit(AuditAction::RunStateChanged),
        )
        .await
        .unwrap();
    assert_eq!(
        paused.pause_reason,
        Some(PauseReason::FailureRate { failed: 5, of: 10 })
    );
    assert_eq!(store.release(id, "worker-c").await.unwrap(), 800);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.counts.pending, 800);
    assert_eq!(run.counts.in_flight, 0);
    assert_adds_up(&run);

    // Records given back unsent keep their attempt count; only their owner can, and
    // only those it names.
    let d = store
        .claim(id, "worker-d", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    let before: Vec<u32> = d.iter().map(|r| r.attempts).collect();
    let seqs: Vec<u64> = d.iter().map(|r| r.seq).collect();
    assert_eq!(store.unclaim(id, "worker-c", &seqs).await.unwrap(), 0);
    assert_eq!(store.unclaim(id, "worker-d", &seqs[..6]).await.unwrap(), 6);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!((run.counts.pending, run.counts.in_flight), (796, 4));
    assert_adds_up(&run);
    assert_eq!(store.release(id, "worker-d").await.unwrap(), 4);
    let again = store
        .claim(id, "worker-e", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    let after: Vec<u32> = again.iter().map(|r| r.attempts).collect();
    let expected: Vec<u32> = before
        .iter()
        .enumerate()
        .map(|(i, a)| if i < 6 { *a } else { a + 1 })
        .collect();
    assert_eq!(
        after, expected,
        "unclaimed: same attempts; released: one more"
    );
    // Only records whose batch was sent are looked up after a crash: marked as sent
    // as the batch leaves, kept through a release, cleared by an unclaim (never sent).
    assert!(again.iter().all(|r| !r.sent), "nothing was sent yet");
    let seqs: Vec<u64> = again.iter().map(|r| r.seq).collect();
    assert_eq!(store.mark_sent(id, "worker-d", &seqs, at).await.unwrap(), 0);
    assert_eq!(
        store
            .mark_sent(id, "worker-e", &seqs[..4], at)
            .await
            .unwrap(),
        4
    );
    assert_eq!(store.release(id, "worker-e").await.unwrap(), 10);
    let f = store
        .claim(id, "worker-f", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    let sent: Vec<u64> = f.iter().filter(|r| r.sent).map(|r| r.seq).collect();
    assert_eq!(sent, seqs[..4]);
    // When a record first left is kept (that request may have created the user).
    let first = chrono::DateTime::from_timestamp_millis(at.timestamp_millis());
    assert!(f[..4].iter().all(|r| r.sent_at == first), "{f:?}");
    assert!(f[4..].iter().all(|r| r.sent_at.is_none()), "{f:?}");
    store
        .mark_sent(id, "worker-f", &seqs[..4], later)
        .await
        .unwrap();
    let all: Vec<u64> = f.iter().map(|r| r.seq).collect();
    assert_eq!(store.release(id, "worker-f").await.unwrap(), 10);
    let f = store
        .claim(id, "worker-f", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    assert!(f[..4].iter().all(|r| r.sent_at == first), "{f:?}");
    assert_eq!(store.unclaim(id, "worker-f", &all).await.unwrap(), 10);
    let g = store
        .claim(id, "worker-g", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    assert!(
        g.iter().all(|r| !r.sent && r.sent_at.is_none()),
        "given back unsent: nothing to look up"
    );
    assert_eq!(store.release(id, "worker-g").await.unwrap(), 10);

    // A restarted instance lets its predecessor's leases lapse at once: only those of
    // its own name from before (not its own, not another instance's).
    let claim = |owner: &'static str, n: u32| {
        let store = store.clone();
        async move {
            store
                .claim(id, owner, n, later, later + Duration::seconds(30))
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.seq)
                .collect::<HashSet<u64>>()
        }
    };
    let old = claim("box~old:0", 3).await;
    let new = claim("box~new:0", 3).await;
    let other = claim("boxer~x:0", 3).await;
    assert_eq!(old.len() + new.len() + other.len(), 9);
    assert_eq!(
        store.lapse_leases("box~", "box~new", later).await.unwrap(),
        3
    );
    let taken = claim("box~new:1", 1_000).await;
    assert!(
        old.is_subset(&taken),
        "the predecessor's records are taken up"
    );
    assert!(taken.is_disjoint(&new) && taken.is_disjoint(&other));
    for owner in ["box~new:0", "box~new:1", "boxer~x:0"] {
        store.release(id, owner).await.unwrap();
    }
    let run = store.run(id).await.unwrap().unwrap();
    assert_adds_up(&run);

    // An outcome that is not a settled state is refused outright.
    let bad = Settled {
        seq: 0,
        state: RecordState::Pending,
        scim_id: None,
        error_class: None,
        error_detail: None,
        scim_type: None,
        groups: None,
        moved: None,
    };
    assert!(store.settle(id, "worker-c", &[bad], later).await.is_err());
    drop(db);
}

/// Many workers racing over one run settle every record exactly once.
async fn race(db: TestDb) {
    let store: Arc<dyn Store> = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Race", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 22, 0, 0).unwrap();
    let id = RunId(uuid::Uuid::now_v7());
    let ids: Vec<String> = (0..2_000).map(|i| format!("u{i}")).collect();
    let audit = NewAuditEntry::by(&owner, at, AuditAction::RunCreated, ObjectKind::Run, id);
    let new = NewRun {
        id,
        project_id: project,
        kind: RunKind::RealRun,
        target_role: "production".into(),
        mapping_version: None,
        parent: None,
        settings: "{}".into(),
        created_by: None,
        created_at: at,
    };
    store
        .create_run(&new, RunRecords::Ids(&ids), &audit)
        .await
        .unwrap();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("w{w}");
                let mut done = Vec::new();
                loop {
                    let claimed = store
                        .claim(id, &owner, 50, at, at + Duration::seconds(60))
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        break;
                    }
                    // Never more than asked for, however the claims interleave.
                    assert!(claimed.len() <= 50, "{} claimed", claimed.len());
                    let outcomes: Vec<Settled> = claimed
                        .iter()
                        .map(|c| Settled {
                            seq: c.seq,
                            state: RecordState::Created,
                            scim_id: Some(format!("s{}", c.seq)),
                            error_class: None,
                            error_detail: None,
                            scim_type: None,
                            groups: None,
                            moved: None,
                        })
                        .collect();
                    assert_eq!(
                        store.settle(id, &owner, &outcomes, at).await.unwrap(),
                        outcomes.len() as u64
                    );
                    done.extend(claimed.into_iter().map(|c| c.seq));
                }
                done
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 2_000);
    assert_eq!(unique.len(), 2_000);
    let run = store.run(id).await.unwrap().unwrap();
    assert_eq!(run.counts.created, 2_000);
    assert_adds_up(&run);
    drop(db);
}

#[tokio::test]
async fn runs_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn runs_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}

#[tokio::test]
async fn racing_workers_on_sqlite() {
    race(sqlite_db()).await;
}

#[tokio::test]
async fn racing_workers_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    let url = db.url.clone();
    race(db).await;
    // A run of thousands of records leaves the planner knowing they exist: claims are
    // planned from these statistics, and a table it believes empty gets a join that
    // walks the whole run for every record claimed.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let rows: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'job_records'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        rows >= 2_000.0,
        "the planner believes job_records holds {rows} rows"
    );
}
