//! One story through every use-case and store method, run on SQLite always and on
//! PostgreSQL whenever the test command provides a server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use chrono::Duration;
use common::{TestClock, TestDb, service, store};
use domain::{
    DomainError,
    accounts::{AccountStatus, RequestOrigin},
    audit::{AuditAction, AuditQuery},
    pagination::PageRequest,
    projects::{ProjectChanges, ProjectDraft, ProjectFilter},
    roles::Role,
};
use std::collections::HashSet;

const OWNER_PASSWORD: &str = "owner passphrase one";

fn origin(address: &str) -> RequestOrigin {
    RequestOrigin {
        address: Some(address.into()),
    }
}

fn draft(name: &str) -> ProjectDraft {
    ProjectDraft::new(name, "auth0", "").unwrap()
}

async fn story(db: TestDb) {
    let clock = TestClock::new();
    let ferry = service(store(&db).await, clock.clone());
    let here = origin("10.0.0.1");

    // Setup: only with the token printed last, within a day, only once.
    assert!(ferry.needs_setup().await.unwrap());
    let stale = ferry.issue_setup_token().await.unwrap().unwrap();
    clock.advance(chrono::Duration::hours(25));
    let expired = ferry
        .complete_setup(&here, &stale, "olive@example.com", "Olive", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(expired.field(), Some("setup_token"));
    let superseded = ferry.issue_setup_token().await.unwrap().unwrap();
    let token = ferry.issue_setup_token().await.unwrap().unwrap();
    let old = ferry
        .complete_setup(
            &here,
            &superseded,
            "olive@example.com",
            "Olive",
            OWNER_PASSWORD,
        )
        .await
        .unwrap_err();
    assert_eq!(
        old.field(),
        Some("setup_token"),
        "a restart's new token replaces the old"
    );
    let wrong = ferry
        .complete_setup(&here, "guess", "olive@example.com", "Olive", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(wrong.field(), Some("setup_token"));
    let owner_session = ferry
        .complete_setup(
            &here,
            &token,
            " Olive@Example.com ",
            "Olive",
            OWNER_PASSWORD,
        )
        .await
        .unwrap();
    assert_eq!(owner_session.account.email, "olive@example.com");
    assert_eq!(owner_session.account.role, Role::Owner);
    assert!(!ferry.needs_setup().await.unwrap());
    assert!(ferry.issue_setup_token().await.unwrap().is_none());
    let again = ferry
        .complete_setup(&here, &token, "x@example.com", "X", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert!(matches!(again, DomainError::Conflict(_)), "{again:?}");

    let owner = ferry
        .session_actor(&owner_session.session_token, None)
        .await
        .unwrap()
        .expect("the setup session works");
    assert!(ferry.session_actor("forged", None).await.unwrap().is_none());

    // Sessions end when they expire.
    clock.advance(Duration::hours(13));
    assert!(
        ferry
            .session_actor(&owner_session.session_token, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ferry.housekeeping().await.unwrap() >= 1,
        "the expired session is purged"
    );

    // Throttling: five failures lock the account, even for the right password.
    for _ in 0..5 {
        let err = ferry
            .sign_in(&here, "olive@example.com", "wrong password!")
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::Unauthenticated(_)));
    }
    let locked = ferry
        .sign_in(&here, "olive@example.com", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(locked, DomainError::Throttled { .. }),
        "{locked:?}"
    );
    clock.advance(Duration::minutes(16));
    let owner_session = ferry
        .sign_in(&origin("10.0.0.2"), "OLIVE@example.com", OWNER_PASSWORD)
        .await
        .unwrap();
    let unknown = ferry
        .sign_in(&here, "nobody@example.com", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), "e-mail address or password is wrong");

    // Members: invited, then active through their link.
    let admin_invite = ferry
        .invite_member(&owner, "ada@example.com", "Ada", "admin")
        .await
        .unwrap();
    assert_eq!(admin_invite.account.status, AccountStatus::Invited);
    let duplicate = ferry
        .invite_member(&owner, "ADA@example.com", "Ada again", "support")
        .await
        .unwrap_err();
    assert_eq!(duplicate.field(), Some("email"));
    let sam_invite = ferry
        .invite_member(&owner, "sam@example.com", "Sam", "support")
        .await
        .unwrap();
    assert_eq!(
        ferry.invite_account(&sam_invite.token).await.unwrap().email,
        "sam@example.com"
    );
    let weak = ferry
        .accept_invite(&here, &sam_invite.token, "short")
        .await
        .unwrap_err();
    assert_eq!(weak.field(), Some("password"));
    let sam_session = ferry
        .accept_invite(&here, &sam_invite.token, "support passphrase")
        .await
        .unwrap();
    assert_eq!(sam_session.account.status, AccountStatus::Active);
    assert!(
        ferry.invite_account(&sam_invite.token).await.is_err(),
        "links work once"
    );
    let admin_session = ferry
        .accept_invite(&here, &admin_invite.token, "admin passphrase")
        .await
        .unwrap();
    let admin = ferry
        .session_actor(&admin_session.session_token, None)
        .await
        .unwrap()
        .unwrap();
    let sam = ferry
        .session_actor(&sam_session.session_token, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sam.role, Role::Support);
    assert!(matches!(
        ferry.list_members(&admin, PageRequest::default()).await,
        Err(DomainError::Forbidden(_))
    ));
    let members = ferry
        .list_members(&owner, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(members.total, 3);

    // Projects: support staff see only their assignments.
    let alpha = ferry.create_project(&admin, draft("Alpha")).await.unwrap();
    let beta = ferry.create_project(&owner, draft("Beta")).await.unwrap();
    assert!(matches!(
        ferry.create_project(&sam, draft("Nope")).await,
        Err(DomainError::Forbidden(_))
    ));
    let none = ferry
        .list_projects(&sam, ProjectFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(none.total, 0);
    ferry
        .assign_support(&admin, alpha.id, sam.account_id)
        .await
        .unwrap();
    ferry
        .assign_support(&admin, alpha.id, sam.account_id)
        .await
        .unwrap();
    let assigned = ferry
        .list_projects(&sam, ProjectFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        assigned
            .items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["Alpha"]
    );
    assert!(matches!(
        ferry.project(&sam, beta.id).await,
        Err(DomainError::NotFound(_))
    ));
    assert_eq!(
        ferry.project_support(&sam, alpha.id).await.unwrap().len(),
        1
    );
    let not_support = ferry
        .assign_support(&owner, alpha.id, admin.account_id)
        .await
        .unwrap_err();
    assert_eq!(not_support.field(), Some("account"));

    // Paging and archiving.
    for n in 0..3 {
        clock.advance(Duration::seconds(1));
        ferry
            .create_project(&owner, draft(&format!("Gamma {n}")))
            .await
            .unwrap();
    }
    let page = ferry
        .list_projects(
            &owner,
            ProjectFilter::default(),
            PageRequest::new(Some(0), Some(2)),
        )
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (5, 2));
    assert_eq!(page.items[0].name, "Gamma 2", "newest first");
    let last = ferry
        .list_projects(
            &owner,
            ProjectFilter::default(),
            PageRequest::new(Some(4), Some(2)),
        )
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    let archived = ferry
        .set_project_archived(&owner, beta.id, true)
        .await
        .unwrap();
    assert!(archived.archived);
    let active = ferry
        .list_projects(&owner, ProjectFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(active.total, 4);
    let all = ferry
        .list_projects(
            &owner,
            ProjectFilter {
                include_archived: true,
            },
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    assert!(matches!(
        ferry
            .update_project(&owner, beta.id, ProjectChanges::default())
            .await,
        Err(DomainError::Conflict(_))
    ));
    // Archived means read only: nothing of it changes until it is restored.
    let refused = ferry
        .delete_target(
            &owner,
            beta.id,
            domain::scim::target::TargetRole::Production,
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("archived"), "{refused}");
    let refused = ferry
        .save_project_secret(&owner, beta.id, "firebase", b"sealed")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("archived"), "{refused}");
    ferry
        .set_project_archived(&owner, beta.id, false)
        .await
        .unwrap();
    let renamed = ferry
        .update_project(
            &admin,
            beta.id,
            ProjectChanges {
                name: Some("Beta 2".into()),
                description: Some("moved".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.description.as_str()),
        ("Beta 2", "moved")
    );

    // Owners cannot lock themselves out.
    assert!(matches!(
        ferry.change_role(&owner, owner.account_id, "admin").await,
        Err(DomainError::Conflict(_))
    ));
    assert!(matches!(
        ferry
            .set_member_enabled(&owner, owner.account_id, false)
            .await,
        Err(DomainError::Conflict(_))
    ));

    // API tokens: never stronger than their creator, revocable, tied to the creator.
    let too_strong = ferry
        .create_api_token(&admin, "ci", "owner")
        .await
        .unwrap_err();
    assert_eq!(too_strong.field(), Some("role"));
    let issued = ferry.create_api_token(&admin, "ci", "admin").await.unwrap();
    assert!(issued.secret.starts_with("ferry_"));
    let via_api = ferry
        .api_actor(&issued.secret, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(via_api.role, Role::Admin);
    assert_eq!(via_api.account_id, admin.account_id);
    let listed = ferry
        .list_api_tokens(&owner, PageRequest::default())
        .await
        .unwrap();
    assert!(listed.items[0].last_used_at.is_some());
    assert!(
        ferry
            .api_actor("ferry_forged", None)
            .await
            .unwrap()
            .is_none()
    );
    ferry
        .change_role(&owner, admin.account_id, "support")
        .await
        .unwrap();
    let demoted = ferry
        .api_actor(&issued.secret, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        demoted.role,
        Role::Support,
        "demoting a person demotes their tokens"
    );
    ferry
        .change_role(&owner, admin.account_id, "admin")
        .await
        .unwrap();
    ferry
        .revoke_api_token(&owner, issued.token.id)
        .await
        .unwrap();
    assert!(
        ferry
            .api_actor(&issued.secret, None)
            .await
            .unwrap()
            .is_none()
    );

    // Disabling ends sessions and sign-ins; re-enabling restores sign-in.
    ferry
        .set_member_enabled(&owner, sam.account_id, false)
        .await
        .unwrap();
    assert!(
        ferry
            .session_actor(&sam_session.session_token, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ferry
            .sign_in(&here, "sam@example.com", "support passphrase")
            .await
            .is_err()
    );
    ferry
        .set_member_enabled(&owner, sam.account_id, true)
        .await
        .unwrap();
    ferry
        .sign_in(&origin("10.0.0.3"), "sam@example.com", "support passphrase")
        .await
        .unwrap();

    // A password change ends the other sessions, not the current one.
    let second = ferry
        .sign_in(&origin("10.0.0.4"), "olive@example.com", OWNER_PASSWORD)
        .await
        .unwrap();
    ferry
        .change_password(
            &owner,
            &owner_session.session_token,
            OWNER_PASSWORD,
            "a brand new passphrase",
        )
        .await
        .unwrap();
    assert!(
        ferry
            .session_actor(&second.session_token, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ferry
            .session_actor(&owner_session.session_token, None)
            .await
            .unwrap()
            .is_some()
    );

    // The audit log holds every action, newest first, in pages that chain.
    assert!(matches!(
        ferry.audit_page(&sam, AuditQuery::default()).await,
        Err(DomainError::Forbidden(_))
    ));
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = ferry
            .audit_page(&owner, AuditQuery::new(before, None, Some(7)))
            .await
            .unwrap();
        assert!(page.entries.len() <= 7);
        seen.extend(page.entries);
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0].seq > w[1].seq),
        "newest first, no repeats"
    );
    let actions: HashSet<AuditAction> = seen.iter().map(|e| e.action).collect();
    for expected in [
        AuditAction::SetupCompleted,
        AuditAction::SignedIn,
        AuditAction::SignInFailed,
        AuditAction::MemberInvited,
        AuditAction::InviteAccepted,
        AuditAction::ProjectCreated,
        AuditAction::ProjectUpdated,
        AuditAction::ProjectArchived,
        AuditAction::ProjectRestored,
        AuditAction::SupportAssigned,
        AuditAction::MemberRoleChanged,
        AuditAction::MemberDisabled,
        AuditAction::MemberEnabled,
        AuditAction::ApiTokenCreated,
        AuditAction::ApiTokenRevoked,
        AuditAction::PasswordChanged,
    ] {
        assert!(actions.contains(&expected), "{expected:?} was not audited");
    }
    let assigned_twice = seen
        .iter()
        .filter(|e| e.action == AuditAction::SupportAssigned)
        .count();
    assert_eq!(assigned_twice, 1, "a no-op assignment is not an action");
    let failed = seen
        .iter()
        .find(|e| e.action == AuditAction::SignInFailed)
        .unwrap();
    assert_eq!(failed.address.as_deref(), Some("10.0.0.1"));
    let alpha_log = ferry
        .audit_page(&owner, AuditQuery::new(None, Some(alpha.id), None))
        .await
        .unwrap();
    assert!(!alpha_log.entries.is_empty());
    assert!(
        alpha_log
            .entries
            .iter()
            .all(|e| e.project_id == Some(alpha.id))
    );
    let creation = alpha_log.entries.last().unwrap();
    assert_eq!(creation.action, AuditAction::ProjectCreated);
    assert_eq!(creation.actor_email.as_deref(), Some("ada@example.com"));
}

#[tokio::test]
async fn story_on_sqlite() {
    story(common::sqlite_db()).await;
}

#[tokio::test]
async fn story_on_postgres() {
    if let Some(db) = common::postgres_db().await {
        story(db).await;
    }
}

/// Twenty failures from one address lock that address for every account, so spraying
/// one password over many accounts is slowed as well.
async fn address_throttle(db: TestDb) {
    let clock = TestClock::new();
    let ferry = service(store(&db).await, clock.clone());
    let token = ferry.issue_setup_token().await.unwrap().unwrap();
    let here = origin("192.0.2.7");
    ferry
        .complete_setup(&here, &token, "olive@example.com", "Olive", OWNER_PASSWORD)
        .await
        .unwrap();
    let sprayer = origin("203.0.113.9");
    for n in 0..20 {
        let err = ferry
            .sign_in(&sprayer, &format!("user{n}@example.com"), "Summer2026!")
            .await
            .unwrap_err();
        assert!(matches!(err, DomainError::Unauthenticated(_)), "{err:?}");
    }
    let blocked = ferry
        .sign_in(&sprayer, "olive@example.com", OWNER_PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(blocked, DomainError::Throttled { .. }),
        "{blocked:?}"
    );
    ferry
        .sign_in(&here, "olive@example.com", OWNER_PASSWORD)
        .await
        .expect("other addresses are not affected");
    clock.advance(Duration::minutes(16));
    ferry
        .sign_in(&sprayer, "olive@example.com", OWNER_PASSWORD)
        .await
        .expect("the lock ends with the window");
}

#[tokio::test]
async fn address_throttle_on_sqlite() {
    address_throttle(common::sqlite_db()).await;
}

#[tokio::test]
async fn address_throttle_on_postgres() {
    if let Some(db) = common::postgres_db().await {
        address_throttle(db).await;
    }
}
