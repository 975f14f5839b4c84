//! Mapping versions on SQLite always and on PostgreSQL whenever the test command
//! provides a server: numbered per project from 1, read back whole (the latest or a
//! given one), listed newest first with who saved them, audited, compared and
//! exported/imported without loss.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::{TimeZone, Utc};
use common::{TestClock, TestDb, postgres_db, service, sqlite_db, store};
use domain::{
    audit::{AuditAction, AuditQuery, NewAuditEntry, ObjectKind},
    mapping::{
        Mapping, Rule,
        transform::Transform,
        versions::{RuleChange, diff, export, import},
    },
    pagination::PageRequest,
    projects::ProjectDraft,
};

async fn story(db: TestDb) {
    let store = store(&db).await;
    let ferry = service(store.clone(), TestClock::new());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Map", "keycloak", "").unwrap())
        .await
        .unwrap()
        .id;
    let other = ferry
        .create_project(&owner, ProjectDraft::new("Other", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let at = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let audit = |p| {
        NewAuditEntry::by(
            &owner,
            at,
            AuditAction::MappingSaved,
            ObjectKind::Project,
            p,
        )
        .in_project(p)
        .detail("saved".to_string())
    };

    assert!(
        store
            .mapping_version(project, None)
            .await
            .unwrap()
            .is_none()
    );
    let first = Mapping {
        rules: vec![
            Rule::new("userName", "username", vec![Transform::Trim]),
            Rule::new("name.givenName", "given_name", vec![]),
        ],
    };
    let mut second = first.clone();
    second.rules[0].transforms.push(Transform::Lower);
    second.rules.remove(1);
    second.rules.push(Rule::new(
        "emails[type eq \"work\"].value",
        "email",
        vec![Transform::Replace {
            pattern: "(?i)@OLD\\.example$".into(),
            replacement: "@new.example".into(),
        }],
    ));

    let n1 = store
        .save_mapping_version(
            project,
            &first,
            "suggested",
            Some(owner.account_id),
            at,
            &audit(project),
        )
        .await
        .unwrap();
    let n2 = store
        .save_mapping_version(
            project,
            &second,
            "lower-case user names",
            Some(owner.account_id),
            at,
            &audit(project),
        )
        .await
        .unwrap();
    // Numbers are per project.
    let o1 = store
        .save_mapping_version(other, &first, "", None, at, &audit(other))
        .await
        .unwrap();
    assert_eq!((n1, n2, o1), (1, 2, 1));

    let latest = store.mapping_version(project, None).await.unwrap().unwrap();
    assert_eq!(latest.version, 2);
    assert_eq!(latest.mapping, second);
    assert_eq!(latest.note, "lower-case user names");
    assert_eq!(
        latest.created_by_email.as_deref(),
        Some("olive@example.com")
    );
    let v1 = store
        .mapping_version(project, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.mapping, first);
    assert!(
        store
            .mapping_version(project, Some(9))
            .await
            .unwrap()
            .is_none()
    );

    let page = store
        .mapping_versions(project, PageRequest::new(None, Some(10)))
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(
        page.items.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(page.items[1].rules, 2);
    let anonymous = store.mapping_version(other, None).await.unwrap().unwrap();
    assert_eq!(anonymous.created_by, None);

    // Each save is audited with its number.
    let entries = store
        .audit_page(AuditQuery::new(None, Some(project), Some(50)))
        .await
        .unwrap();
    let details: Vec<&str> = entries
        .entries
        .iter()
        .filter(|e| e.action == AuditAction::MappingSaved)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(details, vec!["version 2: saved", "version 1: saved"]);

    // Compared rule by rule; exported and imported without loss.
    let changes = diff(&v1.mapping, &latest.mapping);
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(matches!(&changes[0], RuleChange::Changed { after, .. } if after.target == "userName"));
    assert!(matches!(&changes[1], RuleChange::Added { rule } if rule.target.starts_with("emails")));
    assert!(matches!(&changes[2], RuleChange::Removed { rule } if rule.target == "name.givenName"));
    let text = export(&latest.mapping, &latest.note);
    let (back, note) = import(&text).unwrap();
    assert_eq!(back, latest.mapping);
    assert_eq!(note, "lower-case user names");
}

#[tokio::test]
async fn mapping_versions_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn mapping_versions_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}
