//! The SCIM client against a real SCIM 2.0 server (`scim2-server`), directly and
//! through a fault-injecting proxy: discovery, single and bulk creates with mixed
//! outcomes, the existing-user policies, 413 splitting, filters, groups with members
//! by `bulkId`, patch and delete, throttling, resets, lost answers, slow answers and
//! refused credentials. Nothing here mocks the client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::scim::{Fault, FaultProxy, PEER_TOKEN, Peer, TestCa};
use domain::{
    ports::TargetConnector,
    scim::{
        discovery::{DEFAULT_MAX_PAYLOAD_SIZE, StepStatus, TestStepKind},
        outcome::{ErrorClass, Outcome},
        target::{ExistingPolicy, Preset, TargetAuth, TargetInput, TargetSecrets, TargetSettings},
    },
};
use serde_json::{Value, json};
use server::{
    scim::{
        client::{Limits, RetryPolicy, ScimClient},
        connector::Targets,
        push::{GroupPush, Listings, Pusher, UserPush},
    },
    vault::Vault,
};
use std::time::Duration;

fn settings(base_url: &str, token: &str) -> (TargetSettings, TargetSecrets) {
    TargetInput {
        preset: Preset::Generic,
        base_url: base_url.into(),
        auth: TargetAuth::Bearer,
        secret: Some(token.into()),
        headers: None,
        ca_certificate: None,
        connect_timeout_secs: Some(2),
        request_timeout_secs: Some(5),
        on_existing: ExistingPolicy::Skip,
        max_operations: None,
    }
    .validate(None)
    .unwrap()
}

fn client(base_url: &str) -> ScimClient {
    let (settings, secrets) = settings(base_url, PEER_TOKEN);
    let mut client = ScimClient::new(&settings, &secrets).unwrap();
    // Short waits keep the suite quick; a Retry-After from the target still wins.
    client.retry = RetryPolicy {
        attempts: 5,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    };
    client
}

const BULK: Limits = Limits {
    bulk: true,
    max_operations: 1000,
    max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
};
const SINGLE: Limits = Limits {
    bulk: false,
    max_operations: 1,
    max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
};

fn user(name: &str) -> UserPush {
    UserPush {
        external_id: format!("legacy-{name}"),
        user_name: name.into(),
        data: json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "externalId": format!("legacy-{name}"),
            "name": {"givenName": "Test", "familyName": name},
            "displayName": format!("Test {name}"),
            "emails": [{"value": format!("{name}@example.com"), "primary": true}]
        }),
        maybe_sent: false,
        sent_at: None,
    }
}

fn users(prefix: &str, n: usize) -> Vec<UserPush> {
    (0..n).map(|i| user(&format!("{prefix}{i}"))).collect()
}

fn created(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Created { id } => id,
        other => panic!("expected created, got {other:?}"),
    }
}

fn failed_class(outcome: &Outcome) -> ErrorClass {
    match outcome {
        Outcome::Failed(f) => f.class,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_connection_test_discovers_limits_and_schemas() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let targets = Targets::new(server::keyring::Keyring::server_only(Vault::new(
        &[5u8; 32],
    )));
    let (s, secrets) = settings(&peer.base_url, PEER_TOKEN);
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert!(report.passed(), "{:#?}", report.steps);
    let d = report.discovery.unwrap();
    assert!(d.config.bulk_supported && d.config.filter_supported && d.config.patch_supported);
    assert_eq!(d.config.max_operations, 1000);
    assert_eq!(d.config.max_payload_size, 1_048_576);
    assert!(d.user_schemas().contains(&"urn:scim:wso2:schema"));
    assert!(
        d.user_schemas()
            .contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    );
    let wso2 = d.schema("urn:scim:wso2:schema").unwrap();
    assert!(
        wso2.attributes
            .iter()
            .any(|a| a.name == "askPassword" && a.kind == "boolean")
    );
    let core = d
        .schema("urn:ietf:params:scim:schemas:core:2.0:User")
        .unwrap();
    let user_name = core
        .attributes
        .iter()
        .find(|a| a.name == "userName")
        .unwrap();
    assert!(user_name.required);
    let emails = core.attributes.iter().find(|a| a.name == "emails").unwrap();
    assert!(emails.multi_valued && !emails.sub_attributes.is_empty());

    // A wrong token fails at authentication and skips discovery.
    let (s, secrets) = settings(&peer.base_url, "wrong-token");
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    let auth = report
        .steps
        .iter()
        .find(|s| s.kind == TestStepKind::Authenticate)
        .unwrap();
    assert_eq!(auth.status, StepStatus::Failed);
    assert!(auth.detail.contains("401"), "{}", auth.detail);
    assert!(
        report
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Skipped)
            .count()
            == 3
    );
    assert!(report.discovery.is_none());

    // Nothing listening: reachability fails and says why.
    let (s, secrets) = settings("http://127.0.0.1:9/v2", PEER_TOKEN);
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert_eq!(report.steps[0].kind, TestStepKind::Reach);
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert!(
        report.steps[0].detail.contains("connect"),
        "{}",
        report.steps[0].detail
    );

    // A base URL that is not the SCIM root.
    let (s, secrets) = settings(
        &format!("http://127.0.0.1:{}/nothing", peer.port),
        PEER_TOKEN,
    );
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert!(!report.passed());

    // Secrets are sealed to their project and role.
    let project = domain::ids::ProjectId(uuid::Uuid::now_v7());
    let role = domain::scim::target::TargetRole::Production;
    let sealed = targets.seal_secrets(project, role, &secrets).await.unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(PEER_TOKEN));
    assert_eq!(
        targets.open_secrets(project, role, &sealed).await.unwrap(),
        secrets
    );
    let other = domain::scim::target::TargetRole::Test;
    assert!(targets.open_secrets(project, other, &sealed).await.is_err());
}

#[tokio::test]
async fn bulk_and_single_creates_report_every_outcome() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    for (limits, prefix) in [(BULK, "bulk"), (SINGLE, "single")] {
        let mut batch = users(prefix, 3);
        // The same userName again, differing only in case: the peer's uniqueness is
        // case-insensitive, as WSO2's is.
        let mut twin = user(&format!("{prefix}0").to_uppercase());
        twin.external_id = format!("legacy-twin-{prefix}");
        batch.push(twin);
        // No userName: 400 invalidValue.
        let mut nameless = user(&format!("{prefix}-nameless"));
        nameless.data.as_object_mut().unwrap().remove("userName");
        batch.push(nameless);

        let report = Pusher::new(&client, limits, ExistingPolicy::Skip)
            .push(&batch, &[])
            .await;
        assert!(report.stopped.is_none());
        assert_eq!(report.users.len(), 5);
        let first = created(&report.users[0]).to_string();
        created(&report.users[1]);
        created(&report.users[2]);
        assert_eq!(report.users[3], Outcome::Skipped { id: first.clone() });
        match &report.users[4] {
            Outcome::Failed(f) => {
                assert_eq!(f.class, ErrorClass::InvalidData);
                assert_eq!(f.status, Some(400));
                assert_eq!(f.scim_type.as_deref(), Some("invalidValue"));
                assert!(f.detail.contains("userName"), "{}", f.detail);
            }
            other => panic!("{other:?}"),
        }
        if limits.bulk {
            assert_eq!(report.requests, 1);
        }
        // What the peer holds agrees.
        let stored = peer.get(&format!("/Users/{first}")).await;
        assert_eq!(stored["externalId"], format!("legacy-{prefix}0"));
        assert_eq!(peer.count("userName", &format!("{prefix}0")).await, 1);
    }
}

#[tokio::test]
async fn an_existing_user_is_skipped_updated_or_failed_by_policy() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    let first = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&[user("alice")], &[])
        .await;
    let id = created(&first.users[0]).to_string();

    let mut again = user("alice");
    again.data["displayName"] = json!("Alice Renamed");
    let skip = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&[again.clone()], &[])
        .await;
    assert_eq!(skip.users[0], Outcome::Skipped { id: id.clone() });
    assert_eq!(
        peer.get(&format!("/Users/{id}")).await["displayName"],
        "Test alice"
    );

    let fail = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&[again.clone()], &[])
        .await;
    match &fail.users[0] {
        Outcome::Failed(f) => {
            assert_eq!(f.class, ErrorClass::AlreadyExists);
            assert_eq!(f.scim_type.as_deref(), Some("uniqueness"));
            assert!(f.detail.contains(&id), "{}", f.detail);
        }
        other => panic!("{other:?}"),
    }

    // "Update" changes what differs and never the password or status.
    again.data["active"] = json!(false);
    again.data["password"] = json!("Random-Pa55word!");
    let update = Pusher::new(&client, SINGLE, ExistingPolicy::Update)
        .push(&[again], &[])
        .await;
    match &update.users[0] {
        Outcome::Updated {
            id: updated,
            changed,
        } => {
            assert_eq!(updated, &id);
            assert!(changed.contains(&"displayName".to_string()), "{changed:?}");
            assert!(
                !changed.iter().any(|c| c == "active" || c == "password"),
                "{changed:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let stored = peer.get(&format!("/Users/{id}")).await;
    assert_eq!(stored["displayName"], "Alice Renamed");
    assert_ne!(
        stored["active"],
        json!(false),
        "status is the account's own"
    );
    assert_eq!(peer.count("userName", "alice").await, 1);
}

#[tokio::test]
async fn update_never_touches_an_account_made_from_another_legacy_user() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    // Someone else's account holds the user name (another legacy user, or nobody's).
    let mut stranger = user("bob");
    stranger.external_id = "someone-else".into();
    stranger.data["externalId"] = json!("someone-else");
    let first = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&[stranger], &[])
        .await;
    let theirs = created(&first.users[0]).to_string();
    let mut bob = user("bob");
    bob.data["displayName"] = json!("Not Their Name");
    for limits in [BULK, SINGLE] {
        let report = Pusher::new(&client, limits, ExistingPolicy::Update)
            .push(&[bob.clone()], &[])
            .await;
        match &report.users[0] {
            Outcome::Failed(f) => {
                assert_eq!(f.class, ErrorClass::AlreadyExists);
                assert!(f.detail.contains("not updated"), "{}", f.detail);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        peer.get(&format!("/Users/{theirs}")).await["displayName"],
        "Test bob"
    );
}

#[tokio::test]
async fn a_target_that_filters_loosely_never_gets_a_stranger_taken_for_the_user() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    let first = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&[user("carol")], &[])
        .await;
    let carol = created(&first.users[0]).to_string();
    let carol_resource = peer.get(&format!("/Users/{carol}")).await;
    // The look-ups for a user an earlier attempt may have sent answer with carol, as
    // a target ignoring the filter would.
    let loose = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 1,
        "Resources": [carol_resource],
    });
    for search in ["externalId", "userName"] {
        proxy.inject(
            &format!("GET /v2/Users?filter={search}"),
            Fault::Answer {
                code: 200,
                body: loose.clone(),
            },
        );
    }
    let mut dave = user("dave");
    dave.maybe_sent = true;
    let report = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&[dave], &[])
        .await;
    let id = created(&report.users[0]).to_string();
    assert_ne!(id, carol, "carol was taken for dave");
    assert_eq!(peer.count("userName", "dave").await, 1);
}

/// After a restart every worker takes up a batch an earlier process sent: the batches
/// are looked up in one listing, asked for by the first and used by the others.
#[tokio::test]
async fn batches_taken_up_together_share_one_listing() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    let left = chrono::Utc::now();
    let prefixes = ["first", "second", "third"];
    let mut earlier = Vec::new();
    for prefix in prefixes {
        let report = Pusher::new(&client, BULK, ExistingPolicy::Skip)
            .push(&users(prefix, 40), &[])
            .await;
        earlier.push(
            report
                .users
                .iter()
                .map(|o| created(o).to_string())
                .collect::<Vec<_>>(),
        );
    }
    let taken_up = |prefix: &str| -> Vec<UserPush> {
        let mut batch = users(prefix, 40);
        for u in &mut batch {
            u.maybe_sent = true;
            u.sent_at = Some(left);
        }
        batch
    };
    let batches: Vec<Vec<UserPush>> = prefixes.iter().map(|p| taken_up(p)).collect();
    let listings = Listings::default();
    let bulks = proxy.count("POST /v2/Bulk");
    let pushers: Vec<Pusher> = batches
        .iter()
        .map(|_| Pusher::new(&client, BULK, ExistingPolicy::Fail).with_listings(listings.clone()))
        .collect();
    let pushes = pushers
        .iter()
        .zip(&batches)
        .map(|(p, batch)| p.push(batch, &[]));
    let reports = futures_util::future::join_all(pushes).await;
    for (report, ids) in reports.iter().zip(&earlier) {
        let found: Vec<String> = report
            .users
            .iter()
            .map(|o| created(o).to_string())
            .collect();
        assert_eq!(&found, ids, "settled as created by the earlier requests");
    }
    assert_eq!(
        proxy.count("filter=meta.created"),
        1,
        "one listing for all three"
    );
    assert_eq!(proxy.count("filter=externalId"), 0);
    assert_eq!(proxy.count("POST /v2/Bulk"), bulks, "nothing sent again");
}

#[tokio::test]
async fn users_an_earlier_attempt_created_are_found_by_one_listing_of_what_it_created() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    // Users made long before, and a batch whose request left and whose worker died.
    let older = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&users("older", 30), &[])
        .await;
    assert!(
        older
            .users
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    let left = chrono::Utc::now();
    let earlier = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&users("batch", 60), &[])
        .await;
    let ids: Vec<String> = earlier
        .users
        .iter()
        .map(|o| created(o).to_string())
        .collect();
    // Taken up again: the 60 it made and 15 it never got to, all "maybe sent".
    let again = |prefix: &str| -> Vec<UserPush> {
        let mut batch = users("batch", 60);
        batch.extend(users(prefix, 15));
        for u in &mut batch {
            u.maybe_sent = true;
            u.sent_at = Some(left);
        }
        batch
    };
    let bulks = proxy.count("POST /v2/Bulk");
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&again("late"), &[])
        .await;
    let found: Vec<String> = report.users[..60]
        .iter()
        .map(|o| created(o).to_string())
        .collect();
    assert_eq!(found, ids, "settled as created by the earlier request");
    assert!(
        report.users[60..]
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert_eq!(proxy.count("filter=meta.created"), 1, "one listing");
    assert_eq!(proxy.count("filter=externalId"), 0, "no filter per user");
    assert_eq!(
        proxy.count("POST /v2/Bulk"),
        bulks + 1,
        "only the 15 are sent"
    );
    assert_eq!(peer.count("userName", "batch7").await, 1);

    // A target that refuses the listing is asked with filters, to the same result.
    proxy.inject(
        "filter=meta.created",
        Fault::Status {
            code: 400,
            retry_after: None,
        },
    );
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&again("refused"), &[])
        .await;
    assert!(
        report.users[..60]
            .iter()
            .zip(&ids)
            .all(|(o, id)| created(o) == id)
    );
    assert!(
        report.users[60..]
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert_eq!(
        proxy.count("filter=externalId"),
        2,
        "75 users, 50 a request"
    );
    assert_eq!(peer.count("userName", "batch7").await, 1);
    assert_eq!(peer.count("userName", "refused3").await, 1);

    // The earlier request reaches the target only after the look-up found nothing:
    // sent again, every user meets 409, and all are found together, not one by one —
    // with the listings shared as in a run, where the one asked before the conflicts
    // cannot serve for them.
    proxy.inject(
        "filter=meta.created",
        Fault::Answer {
            code: 200,
            body: json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0,
                "Resources": [],
            }),
        },
    );
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .with_listings(Listings::default())
        .push(&again("refused"), &[])
        .await;
    assert!(
        report.users[..60]
            .iter()
            .zip(&ids)
            .all(|(o, id)| created(o) == id)
    );
    assert!(
        report.users[60..]
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert_eq!(
        proxy.count("filter=meta.created"),
        4,
        "a listing before, one after"
    );
    assert_eq!(proxy.count("filter=externalId"), 2, "no look-up one by one");
    assert_eq!(peer.count("userName", "refused3").await, 1);
}

#[tokio::test]
async fn a_conflict_with_its_own_lost_request_is_recorded_as_created() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    let nothing_yet = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "Resources": [],
    });
    for (limits, name, create) in [
        (BULK, "erin", "POST /v2/Bulk"),
        (SINGLE, "frank", "POST /v2/Users"),
    ] {
        // The request creates the user but its answer is lost; the look-up that
        // follows does not find it yet (an index that lags), so it is sent again and
        // meets 409 from its own first request.
        proxy.inject(create, Fault::DropAnswer);
        for search in ["meta.created", "externalId", "userName"] {
            proxy.inject(
                &format!("GET /v2/Users?filter={search}"),
                Fault::Answer {
                    code: 200,
                    body: nothing_yet.clone(),
                },
            );
        }
        // Not "skipped": the account is this user's, made by this push.
        let report = Pusher::new(&client, limits, ExistingPolicy::Skip)
            .push(&[user(name)], &[])
            .await;
        let id = created(&report.users[0]).to_string();
        assert_eq!(peer.count("userName", name).await, 1);
        assert_eq!(peer.get(&format!("/Users/{id}")).await["userName"], name);
    }
}

#[tokio::test]
async fn requests_over_the_targets_real_limits_are_split_not_lost() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    // Ferry is told more than the peer accepts (1000 operations, 1 MiB): the peer
    // answers 413 and the requests are halved until they pass.
    let generous = Limits {
        bulk: true,
        max_operations: 3000,
        max_payload_size: 8 * 1024 * 1024,
    };
    let batch = users("split", 2500);
    let report = Pusher::new(&client, generous, ExistingPolicy::Fail)
        .push(&batch, &[])
        .await;
    assert!(
        report
            .users
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert!(report.requests > 3, "{}", report.requests);
    let listed = peer.get("/Users?count=1").await;
    assert_eq!(listed["totalResults"], 2500);

    // A single user larger than any request is failed alone, without a request.
    let small = Limits {
        bulk: true,
        max_operations: 10,
        max_payload_size: 2000,
    };
    let mut big = user("big");
    big.data["displayName"] = json!("x".repeat(5000));
    let report = Pusher::new(&client, small, ExistingPolicy::Fail)
        .push(&[big, user("small")], &[])
        .await;
    assert_eq!(failed_class(&report.users[0]), ErrorClass::PayloadTooLarge);
    created(&report.users[1]);
}

#[tokio::test]
async fn filters_patch_and_delete() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&[user("carol"), user("dave \"the quote\"")], &[])
        .await;
    let carol = created(&report.users[0]).to_string();
    let dave = created(&report.users[1]).to_string();

    let found = client
        .filter_eq("/Users", "userName", "CAROL")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], carol.as_str());
    let found = client
        .filter_eq("/Users", "externalId", "legacy-carol")
        .await
        .unwrap();
    assert_eq!(found[0]["id"], carol.as_str());
    // A value with quotes is escaped inside the filter.
    let found = client
        .filter_eq("/Users", "userName", "dave \"the quote\"")
        .await
        .unwrap();
    assert_eq!(found[0]["id"], dave.as_str());
    assert!(
        client
            .filter_eq("/Users", "userName", "nobody")
            .await
            .unwrap()
            .is_empty()
    );

    let path = format!("/Users/{carol}");
    client
        .patch(
            &path,
            vec![json!({"op": "replace", "path": "displayName", "value": "Carol P."})],
        )
        .await
        .unwrap();
    assert_eq!(client.get(&path).await.unwrap()["displayName"], "Carol P.");

    let mut replacement = user("carol").data;
    replacement["displayName"] = json!("Carol R.");
    let replaced = client.replace(&path, &replacement).await.unwrap();
    assert_eq!(replaced["displayName"], "Carol R.");

    client.delete(&path).await.unwrap();
    let gone = client.get(&path).await.unwrap_err();
    assert_eq!(gone.class(), ErrorClass::NotFound);
    // Deleting what is gone is not an error.
    client.delete(&path).await.unwrap();
}

#[tokio::test]
async fn groups_follow_their_users_and_name_them_by_bulk_id_or_scim_id() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let client = client(&peer.base_url);
    // Three operations per request: the first request holds users 0–2, the second
    // user 3 and both groups, which name user 3 by `bulkId` and the others by id.
    let limits = Limits {
        bulk: true,
        max_operations: 3,
        max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
    };
    let batch = users("member", 4);
    let groups = [
        GroupPush {
            display_name: "engineering".into(),
            members: vec![0, 1, 3],
        },
        GroupPush {
            display_name: "sales".into(),
            members: vec![2],
        },
    ];
    let report = Pusher::new(&client, limits, ExistingPolicy::Skip)
        .push(&batch, &groups)
        .await;
    let ids: Vec<String> = report
        .users
        .iter()
        .map(|o| created(o).to_string())
        .collect();
    assert_eq!(
        report.requests, 2,
        "users 0-2, then user 3 with both groups"
    );
    let engineering = created(&report.groups[0]).to_string();
    let group = peer.get(&format!("/Groups/{engineering}")).await;
    let mut members: Vec<String> = group["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    members.sort();
    let mut expected = vec![ids[0].clone(), ids[1].clone(), ids[3].clone()];
    expected.sort();
    assert_eq!(members, expected);
    let sales = created(&report.groups[1]).to_string();
    assert_eq!(
        peer.get(&format!("/Groups/{sales}")).await["members"][0]["value"],
        ids[2].as_str()
    );

    // Pushing the same groups again finds them: skipped, or updated by adding members.
    let more = users("late", 1);
    let again = [GroupPush {
        display_name: "engineering".into(),
        members: vec![0],
    }];
    let report = Pusher::new(&client, limits, ExistingPolicy::Update)
        .push(&more, &again)
        .await;
    let late = created(&report.users[0]).to_string();
    assert_eq!(
        report.groups[0],
        Outcome::Updated {
            id: engineering.clone(),
            changed: vec!["members".into()],
        }
    );
    let group = peer.get(&format!("/Groups/{engineering}")).await;
    assert_eq!(group["members"].as_array().unwrap().len(), 4);
    assert!(
        group["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["value"] == late.as_str())
    );
}

#[tokio::test]
async fn throttling_is_waited_out_honouring_retry_after() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    proxy.inject(
        "POST /v2/Bulk",
        Fault::Status {
            code: 429,
            retry_after: Some("1".into()),
        },
    );
    proxy.inject(
        "POST /v2/Bulk",
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&users("calm", 20), &[])
        .await;
    assert!(
        report
            .users
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert_eq!(report.retries, 2);
    let bulks: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|(_, head)| head.starts_with("POST /v2/Bulk"))
        .collect();
    assert_eq!(bulks.len(), 3);
    // The second attempt came no sooner than the target asked.
    assert!(bulks[1].0 - bulks[0].0 >= Duration::from_millis(950));
    assert_eq!(peer.count("userName", "calm7").await, 1);

    // Throttled without end: the users fail as throttled, nothing is lost.
    for _ in 0..10 {
        proxy.inject(
            "POST /v2/Users",
            Fault::Status {
                code: 429,
                retry_after: Some("0".into()),
            },
        );
    }
    let report = Pusher::new(&client, SINGLE, ExistingPolicy::Fail)
        .push(&users("stuck", 1), &[])
        .await;
    assert_eq!(failed_class(&report.users[0]), ErrorClass::Throttled);
}

#[tokio::test]
async fn a_lost_answer_never_creates_a_user_twice() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);

    // The bulk request reaches the peer, which creates the users; the answer is lost.
    // Each user is then found by its externalId and counted as created, once.
    proxy.inject("POST /v2/Bulk", Fault::DropAnswer);
    let batch = users("lost", 5);
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&batch, &[])
        .await;
    for (i, outcome) in report.users.iter().enumerate() {
        let id = created(outcome);
        assert_eq!(
            peer.get(&format!("/Users/{id}")).await["userName"],
            format!("lost{i}")
        );
        assert_eq!(peer.count("userName", &format!("lost{i}")).await, 1);
    }
    assert_eq!(proxy.count("POST /v2/Bulk"), 1, "nothing was sent twice");
    assert_eq!(
        (
            proxy.count("filter=meta.created"),
            proxy.count("filter=externalId")
        ),
        (1, 0),
        "found by one listing of what the target created since the request left"
    );

    // The connection drops before the peer sees anything: looked up, not found, sent
    // again.
    proxy.inject("POST /v2/Bulk", Fault::Reset);
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&users("reset", 3), &[])
        .await;
    assert!(
        report
            .users
            .iter()
            .all(|o| matches!(o, Outcome::Created { .. }))
    );
    assert_eq!(proxy.count("POST /v2/Bulk"), 3);
    assert_eq!(peer.count("userName", "reset1").await, 1);

    // Single creates: the answer is lost after the user was created.
    proxy.inject("POST /v2/Users", Fault::DropAnswer);
    let report = Pusher::new(&client, SINGLE, ExistingPolicy::Fail)
        .push(&users("one", 2), &[])
        .await;
    created(&report.users[0]);
    created(&report.users[1]);
    assert_eq!(peer.count("userName", "one0").await, 1);
    assert_eq!(proxy.count("POST /v2/Users"), 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_settled_by_a_lookup() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let (mut s, secrets) = settings(&proxy.base_url, PEER_TOKEN);
    s.request_timeout_secs = 1;
    let mut client = ScimClient::new(&s, &secrets).unwrap();
    client.retry.base = Duration::from_millis(20);
    proxy.inject("POST /v2/Bulk", Fault::Slow(Duration::from_secs(3)));
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&users("slow", 3), &[])
        .await;
    for (i, outcome) in report.users.iter().enumerate() {
        created(outcome);
        assert_eq!(peer.count("userName", &format!("slow{i}")).await, 1);
    }
    assert_eq!(proxy.count("POST /v2/Bulk"), 1);
}

#[tokio::test]
async fn refused_credentials_stop_the_push() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let (s, secrets) = settings(&peer.base_url, "not-the-token");
    let client = ScimClient::new(&s, &secrets).unwrap();
    for limits in [BULK, SINGLE] {
        let report = Pusher::new(&client, limits, ExistingPolicy::Fail)
            .push(
                &users("denied", 3),
                &[GroupPush {
                    display_name: "g".into(),
                    members: vec![0],
                }],
            )
            .await;
        let stopped = report.stopped.expect("stopped");
        assert_eq!(stopped.class, ErrorClass::Unauthorized);
        assert_eq!(stopped.status, Some(401));
        assert!(
            report
                .users
                .iter()
                .all(|o| failed_class(o) == ErrorClass::Unauthorized)
        );
        assert_eq!(failed_class(&report.groups[0]), ErrorClass::Unauthorized);
        assert!(report.requests <= 1, "one refusal is enough");
    }
    let listed: Value = peer.get("/Users?count=1").await;
    assert_eq!(listed["totalResults"], 0);
}

/// A stand-in OAuth2 token endpoint (the peer accepts only static tokens): checks the
/// client credentials sent by HTTP Basic and hands out the tokens queued in `issue`,
/// the last one again once the queue is down to it.
struct TokenEndpoint {
    url: String,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn token_endpoint(issue: Vec<&'static str>) -> TokenEndpoint {
    use axum::{Form, Router, http::HeaderMap, routing::post};
    use std::sync::{Arc, Mutex, atomic::AtomicUsize};
    let calls = Arc::new(AtomicUsize::new(0));
    let queue = Arc::new(Mutex::new(issue));
    let (c, q) = (calls.clone(), queue.clone());
    let app = Router::new().route(
        "/token",
        post(move |headers: HeaderMap, Form(form): Form<Vec<(String, String)>>| {
            let (c, q) = (c.clone(), q.clone());
            async move {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                use base64::Engine;
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("ferry%2Fclient:s%26cret")
                );
                let grant = form.iter().any(|(k, v)| k == "grant_type" && v == "client_credentials");
                let scope = form.iter().any(|(k, v)| k == "scope" && v == "internal_user_mgt_create internal_user_mgt_list");
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
                    || !grant
                    || !scope
                {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"error": "invalid_client", "error_description": "Client authentication failed"})),
                    );
                }
                let mut queue = q.lock().unwrap();
                let token = if queue.len() > 1 { queue.remove(0) } else { queue[0] };
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    TokenEndpoint {
        url,
        calls,
        _task: task,
    }
}

fn oauth2(base_url: &str, token_url: &str, secret: &str) -> (TargetSettings, TargetSecrets) {
    TargetInput {
        preset: Preset::Wso2,
        base_url: base_url.into(),
        auth: TargetAuth::OAuth2 {
            token_url: token_url.into(),
            client_id: "ferry/client".into(),
            scope: " internal_user_mgt_create   internal_user_mgt_list ".into(),
        },
        secret: Some(secret.into()),
        headers: None,
        ca_certificate: None,
        connect_timeout_secs: Some(2),
        request_timeout_secs: Some(5),
        on_existing: ExistingPolicy::Skip,
        max_operations: None,
    }
    .validate(None)
    .unwrap()
}

#[tokio::test]
async fn oauth2_client_credentials_are_fetched_once_renewed_on_401_and_refusals_stop() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    // The first token is already revoked: the peer refuses it, the client asks for a
    // new one once and goes on with it.
    let endpoint = token_endpoint(vec!["revoked-token", PEER_TOKEN]).await;
    let (s, secrets) = oauth2(&peer.base_url, &endpoint.url, "s&cret");
    let client = ScimClient::new(&s, &secrets).unwrap();
    for round in 0..2 {
        let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
            .push(&users(&format!("oauth{round}-"), 3), &[])
            .await;
        assert!(report.stopped.is_none(), "{:?}", report.stopped);
        assert!(
            report
                .users
                .iter()
                .all(|o| matches!(o, Outcome::Created { .. }))
        );
    }
    assert_eq!(endpoint.calls.load(std::sync::atomic::Ordering::SeqCst), 2);

    // The connection test reports a refused client at authentication.
    let targets = Targets::new(server::keyring::Keyring::server_only(Vault::new(
        &[5u8; 32],
    )));
    let (s, secrets) = oauth2(&peer.base_url, &endpoint.url, "wrong secret");
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    let auth = &report.steps[1];
    assert_eq!(auth.kind, TestStepKind::Authenticate);
    assert_eq!(auth.status, StepStatus::Failed);
    assert!(auth.detail.contains("invalid_client"), "{}", auth.detail);
    assert!(!auth.detail.contains("wrong secret"));

    // And a push with refused client credentials stops at once.
    let client = ScimClient::new(&s, &secrets).unwrap();
    let report = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&users("refused", 2), &[])
        .await;
    assert_eq!(report.stopped.unwrap().class, ErrorClass::Unauthorized);
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given_and_extra_headers_are_sent() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let ca = TestCa::new();
    let proxy = FaultProxy::start_tls(peer.port, &ca).await;
    let targets = Targets::new(server::keyring::Keyring::server_only(Vault::new(
        &[5u8; 32],
    )));

    // Without the CA the certificate is refused at the first step, and said so.
    let (s, secrets) = settings(&proxy.base_url, PEER_TOKEN);
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert!(
        report.steps[0]
            .detail
            .to_lowercase()
            .contains("certificate"),
        "{}",
        report.steps[0].detail
    );

    // With it, every step passes over TLS and users go through.
    let (mut s, mut secrets) = settings(&proxy.base_url, PEER_TOKEN);
    s.ca_certificate = Some(ca.ca_pem.clone());
    secrets.headers = vec![domain::scim::target::Header {
        name: "X-Tenant".into(),
        value: "acme".into(),
    }];
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert!(report.passed(), "{:#?}", report.steps);
    assert!(report.steps[0].detail.contains("over TLS"));
    let client = ScimClient::new(&s, &secrets).unwrap();
    let pushed = Pusher::new(&client, BULK, ExistingPolicy::Fail)
        .push(&users("tls", 2), &[])
        .await;
    created(&pushed.users[1]);
    // Every request carried the extra header and the credentials.
    let seen = proxy.seen();
    assert!(!seen.is_empty());
    for (_, head) in &seen {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("x-tenant: acme"), "{head}");
    }

    // A certificate that is not PEM is refused before anything is sent.
    s.ca_certificate =
        Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----".into());
    let report = targets
        .test_connection(&s, &secrets, chrono::Utc::now())
        .await;
    assert_eq!(report.steps[0].status, StepStatus::Failed);
    assert!(
        report.steps[0].detail.contains("CA certificate"),
        "{}",
        report.steps[0].detail
    );
}

#[tokio::test]
async fn users_that_may_have_been_sent_are_looked_up_many_per_request() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let client = client(&proxy.base_url);
    // An earlier attempt created 30 of these 80 users before its worker died.
    let batch = users("crash", 80);
    let first = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&batch[..30], &[])
        .await;
    let earlier: Vec<String> = first.users.iter().map(|o| created(o).to_string()).collect();
    let again: Vec<UserPush> = batch
        .iter()
        .cloned()
        .map(|mut u| {
            u.maybe_sent = true;
            u
        })
        .collect();
    let looked_before = proxy.count("GET /v2/Users?filter=externalId");
    let report = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&again, &[])
        .await;
    // Two requests of `or` terms for 80 users, not a request (or two) per user.
    assert_eq!(
        proxy.count("GET /v2/Users?filter=externalId") - looked_before,
        2
    );
    for (i, outcome) in report.users.iter().enumerate() {
        let id = created(outcome);
        if i < 30 {
            assert_eq!(id, earlier[i], "found, not created again");
        }
        assert_eq!(peer.count("userName", &format!("crash{i}")).await, 1);
    }

    // A target that refuses `or` filters is asked one user at a time.
    proxy.inject(
        "GET /v2/Users?filter=externalId",
        Fault::Status {
            code: 400,
            retry_after: None,
        },
    );
    let refused: Vec<UserPush> = again[..5].to_vec();
    let looked_before = proxy.count("GET /v2/Users?filter=externalId");
    let report = Pusher::new(&client, BULK, ExistingPolicy::Skip)
        .push(&refused, &[])
        .await;
    assert_eq!(
        proxy.count("GET /v2/Users?filter=externalId") - looked_before,
        1 + 5
    );
    for (i, outcome) in report.users.iter().enumerate() {
        assert_eq!(created(outcome), earlier[i]);
    }
}
