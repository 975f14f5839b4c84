//! The assessment's store methods on SQLite always and on PostgreSQL whenever the test
//! command provides a server: one running at a time, findings saved in chunks and
//! paged in order, the sealed report kept, classes set and cleared, interruptions found.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::{TimeZone, Utc};
use common::{TestClock, TestDb, service, store};
use domain::{
    DomainError,
    assess::{AssessmentStatus, Check, Finding, classify::DataClass},
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    pagination::PageRequest,
    projects::ProjectDraft,
};

async fn story(db: TestDb) {
    let store = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Assess", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let audit = || {
        NewAuditEntry::by(
            &owner,
            at,
            AuditAction::AssessmentStarted,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
    };

    assert!(store.assessment(project).await.unwrap().is_none());
    store
        .start_assessment(project, 1_200, at, &audit())
        .await
        .unwrap();
    let twice = store.start_assessment(project, 1_200, at, &audit()).await;
    assert!(matches!(twice, Err(DomainError::Conflict(_))), "{twice:?}");
    assert_eq!(store.running_assessments().await.unwrap(), [project]);

    // 1,200 findings: more than one statement's worth.
    let findings: Vec<(u64, Finding)> = (1..=1_200)
        .map(|seq| {
            (
                seq,
                Finding {
                    check: if seq % 2 == 0 {
                        Check::MissingEmail
                    } else {
                        Check::InvalidEmail
                    },
                    source_id: format!("user-{seq:04}"),
                    field: Some("emails".into()),
                    note: "has no e-mail address".into(),
                },
            )
        })
        .collect();
    store
        .save_assessment_progress(project, 600, &findings[..600])
        .await
        .unwrap();
    let row = store.assessment(project).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.records_done, row.records_total),
        (AssessmentStatus::Running, 600, 1_200)
    );
    store
        .save_assessment_progress(project, 1_200, &findings[600..])
        .await
        .unwrap();
    let page = store
        .findings(
            project,
            Check::MissingEmail,
            PageRequest::new(Some(10), Some(3)),
        )
        .await
        .unwrap();
    assert_eq!(page.total, 600);
    let ids: Vec<&str> = page.items.iter().map(|f| f.source_id.as_str()).collect();
    assert_eq!(ids, ["user-0022", "user-0024", "user-0026"]);
    assert_eq!(page.items[0].field.as_deref(), Some("emails"));

    store
        .finish_assessment(project, Ok(b"sealed report"), at)
        .await
        .unwrap();
    let row = store.assessment(project).await.unwrap().unwrap();
    assert_eq!(row.status, AssessmentStatus::Ready);
    assert_eq!(row.sealed_report.as_deref(), Some(&b"sealed report"[..]));
    assert_eq!(row.finished_at, Some(at));
    assert!(store.running_assessments().await.unwrap().is_empty());

    // Starting again drops the findings but keeps the last report until replaced.
    store
        .start_assessment(project, 5, at, &audit())
        .await
        .unwrap();
    let row = store.assessment(project).await.unwrap().unwrap();
    assert_eq!(row.sealed_report.as_deref(), Some(&b"sealed report"[..]));
    let gone = store
        .findings(project, Check::InvalidEmail, PageRequest::new(None, None))
        .await
        .unwrap();
    assert_eq!(gone.total, 0);
    store
        .finish_assessment(project, Err("the server stopped"), at)
        .await
        .unwrap();
    let row = store.assessment(project).await.unwrap().unwrap();
    assert_eq!(row.status, AssessmentStatus::Failed);
    assert_eq!(row.error.as_deref(), Some("the server stopped"));

    // Classes: set, changed, cleared.
    for class in [Some(DataClass::Pii), Some(DataClass::Confidential)] {
        store
            .set_attribute_class(project, "department", class, at, &audit())
            .await
            .unwrap();
    }
    assert_eq!(
        store.attribute_classes(project).await.unwrap(),
        [("department".to_string(), DataClass::Confidential)]
    );
    store
        .set_attribute_class(project, "department", None, at, &audit())
        .await
        .unwrap();
    assert!(store.attribute_classes(project).await.unwrap().is_empty());
    assert_eq!(store.count_records(project).await.unwrap(), 0);
}

#[tokio::test]
async fn assessment_store_on_sqlite() {
    story(common::sqlite_db()).await;
}

#[tokio::test]
async fn assessment_store_on_postgres() {
    if let Some(db) = common::postgres_db().await {
        story(db).await;
    }
}
