//! Reconciliation over HTTP on SQLite and PostgreSQL against the real SCIM peer: after
//! a real run, one user is changed directly in the target and another deleted there;
//! a reconciliation reads every user back and finds exactly those two (the attribute
//! named, no value quoted), both land in the review queue with their class, a retry
//! from the queue puts them right (the changed one replaced, the deleted one created
//! again), and a second reconciliation finds everyone as sent. A sample reads only
//! as many users as asked; a retry mixing findings with other failures is refused. A
//! user another tool created in the target, with an `externalId`, is listed as one no
//! run recorded. A target that refuses `id` filters, or answers them with users it was
//! not asked for, is asked one user at a time for the rest of the run, and nothing is
//! called gone for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{
    TestDb, TestServer, postgres_db,
    scim::{Fault, FaultProxy, PEER_TOKEN, Peer},
    sqlite_db,
};
use crate::passwords_http::crosswalk;
use crate::runs_http::{adds_up, moved, send, until};
use reqwest::Method;
use serde_json::{Value, json};

async fn finished(server: &TestServer, token: &str, base: &str, run: &Value) -> Value {
    let path = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    until(server, token, &path, &["succeeded", "failed"]).await
}

async fn reconcile(server: &TestServer, token: &str, base: &str, body: Value) -> Value {
    let (status, run) = send(
        server,
        Method::POST,
        &format!("{base}/runs/reconcile"),
        token,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["kind"], "reconcile");
    let done = finished(server, token, base, &run).await;
    adds_up(&done["run"]);
    done
}

async fn failed_records(server: &TestServer, token: &str, base: &str, run: &Value) -> Vec<Value> {
    let (_, page) = send(
        server,
        Method::GET,
        &format!(
            "{base}/runs/{}/records?state=failed&limit=100",
            run["run"]["id"].as_str().unwrap()
        ),
        token,
        None,
    )
    .await;
    page["records"].as_array().unwrap().clone()
}

async fn story(db: TestDb) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(db).await;
    // 12 users; u-9's address is not one: the mapping rejects it.
    let (token, base, real) = moved(&server, &peer.base_url).await;
    let ids = crosswalk(&server, &token, &base, real["run"]["id"].as_str().unwrap()).await;

    // Nothing changed yet: everyone as sent.
    let clean = reconcile(&server, &token, &base, json!({})).await;
    assert_eq!(clean["run"]["total"], 11, "{clean}");
    assert_eq!(clean["run"]["counts"]["skipped"], 11, "{clean}");
    assert_eq!(clean["run"]["state"], "succeeded", "{clean}");

    // Someone changes a user in the target, and deletes another.
    let peer_api = reqwest::Client::new();
    let changed = peer_api
        .patch(format!("{}/Users/{}", peer.base_url, ids["u-3"]))
        .bearer_auth(PEER_TOKEN)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": "Renamed-In-Target"}],
        }))
        .send()
        .await
        .unwrap();
    assert!(
        changed.status().is_success(),
        "{}",
        changed.text().await.unwrap()
    );
    let deleted = peer_api
        .delete(format!("{}/Users/{}", peer.base_url, ids["u-5"]))
        .bearer_auth(PEER_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());

    // And another tool created a user of its own there, with an externalId.
    let stranger = peer_api
        .post(format!("{}/Users", peer.base_url))
        .bearer_auth(PEER_TOKEN)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "stranger@elsewhere.example",
            "externalId": "other-tool-1",
        }))
        .send()
        .await
        .unwrap();
    assert!(stranger.status().is_success());
    let stranger: Value = stranger.json().await.unwrap();

    let found = reconcile(
        &server,
        &token,
        &base,
        json!({"max_users_per_minute": 6000}),
    )
    .await;
    // Listing the target: the stranger is the one user no run recorded.
    let extra = &found["extra_users"];
    assert_eq!(extra["listed"], 11, "{extra}");
    assert_eq!(
        extra["users"],
        json!([{"scim_id": stranger["id"], "external_id": "other-tool-1"}]),
        "{extra}"
    );
    assert_eq!(clean["extra_users"]["users"], json!([]), "{clean}");
    let counts = &found["run"]["counts"];
    assert_eq!(
        (counts["skipped"].as_u64(), counts["failed"].as_u64()),
        (Some(9), Some(2)),
        "{found}"
    );
    let failed = failed_records(&server, &token, &base, &found).await;
    let by_source = |id: &str| {
        failed
            .iter()
            .find(|r| r["source_id"] == id)
            .unwrap()
            .clone()
    };
    let differs = by_source("u-3");
    assert_eq!(differs["error_class"], "differs_in_target", "{differs}");
    let detail = differs["error_detail"].as_str().unwrap();
    assert!(detail.contains("name.givenName"), "{detail}");
    assert!(
        !detail.contains("Renamed-In-Target") && !detail.contains("Given3"),
        "{detail}"
    );
    assert_eq!(differs["scim_id"], ids["u-3"].as_str());
    assert_eq!(by_source("u-5")["error_class"], "missing_in_target");

    // Both wait in the review queue, by class.
    let (_, queue) = send(
        &server,
        Method::GET,
        &format!("{base}/review?state=all"),
        &token,
        None,
    )
    .await;
    let items = queue["page"]["items"].as_array().unwrap();
    let class_of = |id: &str| {
        items
            .iter()
            .find(|i| i["source_id"] == id)
            .map(|i| i["error_class"].clone())
    };
    assert_eq!(class_of("u-3"), Some(json!("differs_in_target")), "{queue}");
    assert_eq!(class_of("u-5"), Some(json!("missing_in_target")), "{queue}");
    assert_eq!(class_of("u-9"), Some(json!("mapping")), "{queue}");
    // Counted once: the two found wait in review, no longer counted in the target.
    let standing = &queue["summary"];
    assert_eq!(
        (standing["migrated"].as_u64(), standing["waiting"].as_u64()),
        (Some(9), Some(3)),
        "{standing}"
    );

    // Findings are retried apart from other failures; then put right.
    let retry = |ids: &[&str]| json!({"selection": {"kind": "ids", "ids": ids}});
    let (status, mixed) = send(
        &server,
        Method::POST,
        &format!("{base}/review/retry"),
        &token,
        Some(retry(&["u-3", "u-9"])),
    )
    .await;
    assert_eq!(status, 422, "{mixed}");
    assert_eq!(mixed["error"]["field"], "selection");
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/review/retry"),
        &token,
        Some(retry(&["u-3", "u-5"])),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let fixed = finished(&server, &token, &base, &run).await;
    let counts = &fixed["run"]["counts"];
    assert_eq!(
        (
            counts["updated"].as_u64(),
            counts["created"].as_u64(),
            counts["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{fixed}"
    );
    let kept: Value = peer_api
        .get(format!("{}/Users/{}", peer.base_url, ids["u-3"]))
        .bearer_auth(PEER_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["name"]["givenName"], "Given3", "{kept}");

    // Everyone as sent again, the re-created user under its new id.
    let again = reconcile(&server, &token, &base, json!({})).await;
    assert_eq!(again["run"]["total"], 11, "{again}");
    assert_eq!(again["run"]["counts"]["skipped"], 11, "{again}");
    let (_, queue) = send(
        &server,
        Method::GET,
        &format!("{base}/review?state=all"),
        &token,
        None,
    )
    .await;
    let open: Vec<&str> = queue["page"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "failed")
        .map(|i| i["source_id"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["u-9"], "{queue}");

    // A sample reads only as many; bad requests name their field.
    let sampled = reconcile(&server, &token, &base, json!({"sample": 4})).await;
    assert_eq!(sampled["run"]["total"], 4, "{sampled}");
    for (body, field) in [
        (json!({"sample": 0}), "sample"),
        (json!({"max_users_per_minute": 0}), "max_users_per_minute"),
    ] {
        let (status, error) = send(
            &server,
            Method::POST,
            &format!("{base}/runs/reconcile"),
            &token,
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field);
    }

    // The final report: every user's standing, the runs as they happened, the latest
    // reconciliation (the sample) with what it found, the extra user it listed.
    let (status, report) = send(
        &server,
        Method::GET,
        &format!("{base}/report"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["standing"]["users"], 12, "{report}");
    assert_eq!(report["standing"]["migrated"], 11, "{report}");
    assert_eq!(report["standing"]["waiting"], 1, "{report}");
    let kinds: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "real_run",
            "reconcile",
            "reconcile",
            "retry",
            "reconcile",
            "reconcile"
        ],
        "{report}"
    );
    let reconciliation = &report["reconciliation"];
    assert_eq!(reconciliation["run"]["total"], 4, "{reconciliation}");
    assert_eq!(
        reconciliation["extra_users"]["users"][0]["external_id"],
        "other-tool-1"
    );
    let mapping = report["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["error_class"] == "mapping")
        .unwrap();
    assert_eq!(mapping["count"], 1, "{report}");
    let real_run = report["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "real_run")
        .unwrap();
    assert!(real_run["done"].is_object(), "{report}");
    server.stop().await;
}

#[tokio::test]
async fn reconciliation_on_sqlite_finds_users_changed_or_deleted_in_the_target() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn reconciliation_on_postgres_finds_users_changed_or_deleted_in_the_target() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}

/// A reconciliation through a proxy that spoils the first `id` filter with `fault`:
/// every user is then read one at a time and found as sent.
async fn spoiled_filter(fault: Fault) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    let server = TestServer::start(sqlite_db()).await;
    let (token, base, _) = moved(&server, &proxy.base_url).await;
    let one_by_one = proxy.count("GET /v2/Users/");
    proxy.inject("filter=id", fault);
    let done = reconcile(&server, &token, &base, json!({})).await;
    assert_eq!(done["run"]["counts"]["skipped"], 11, "{done}");
    assert_eq!(done["run"]["counts"]["failed"], 0, "{done}");
    // One filter tried, then each user asked for alone.
    assert_eq!(proxy.count("filter=id"), 1);
    assert_eq!(proxy.count("GET /v2/Users/") - one_by_one, 11);
    server.stop().await;
}

#[tokio::test]
async fn a_target_refusing_id_filters_is_read_one_user_at_a_time() {
    spoiled_filter(Fault::Status {
        code: 400,
        retry_after: None,
    })
    .await;
}

#[tokio::test]
async fn a_target_answering_a_filter_with_other_users_is_read_one_user_at_a_time() {
    spoiled_filter(Fault::Answer {
        code: 200,
        body: json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "Resources": [{"id": "somebody-not-asked-for", "userName": "x"}],
        }),
    })
    .await;
}

/// Group memberships changed in the target: u-7 taken out of `eng` (its record names
/// `staff` and `eng`) and u-0 put into `ops` (its record names only `staff`). The
/// reconciliation finds exactly those two (group names, never values), they wait in
/// the review queue, and a retry puts u-7 back into `eng`.
async fn memberships(db: TestDb) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(db).await;
    let (token, base, real) = moved(&server, &peer.base_url).await;
    let ids = crosswalk(&server, &token, &base, real["run"]["id"].as_str().unwrap()).await;
    let clean = reconcile(&server, &token, &base, json!({})).await;
    assert_eq!(clean["run"]["counts"]["skipped"], 11, "{clean}");

    let group_id = |name: &str, groups: &Value| -> String {
        groups["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["displayName"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let groups = peer.get("/Groups").await;
    let (eng, ops) = (group_id("eng", &groups), group_id("ops", &groups));
    let patch = |group: String, op: Value| {
        let url = format!("{}/Groups/{group}", peer.base_url);
        async move {
            let answer = reqwest::Client::new()
                .patch(url)
                .bearer_auth(PEER_TOKEN)
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [op],
                }))
                .send()
                .await
                .unwrap();
            assert!(
                answer.status().is_success(),
                "{}",
                answer.text().await.unwrap()
            );
        }
    };
    patch(
        eng,
        json!({"op": "remove", "path": format!("members[value eq \"{}\"]", ids["u-7"])}),
    )
    .await;
    patch(
        ops,
        json!({"op": "add", "path": "members", "value": [{"value": ids["u-0"]}]}),
    )
    .await;

    let found = reconcile(&server, &token, &base, json!({})).await;
    assert_eq!(found["run"]["counts"]["failed"], 2, "{found}");
    assert_eq!(found["run"]["counts"]["skipped"], 9, "{found}");
    let failed = failed_records(&server, &token, &base, &found).await;
    let detail = |source: &str| {
        failed
            .iter()
            .find(|r| r["source_id"] == source)
            .unwrap_or_else(|| panic!("{source} not found: {failed:?}"))
            .clone()
    };
    let u7 = detail("u-7");
    assert_eq!(u7["error_class"], "groups_differ_in_target", "{u7}");
    assert!(
        u7["error_detail"]
            .as_str()
            .unwrap()
            .contains("not a member of eng"),
        "{u7}"
    );
    let u0 = detail("u-0");
    assert!(
        u0["error_detail"]
            .as_str()
            .unwrap()
            .contains("a member of ops, which its record does not name"),
        "{u0}"
    );
    let (_, view) = send(
        &server,
        Method::GET,
        &format!("{base}/runs/{}", found["run"]["id"].as_str().unwrap()),
        &token,
        None,
    )
    .await;
    assert_eq!(
        view["extra_users"]["groups"]["users_differing"], 2,
        "{view}"
    );
    assert_eq!(view["extra_users"]["groups"]["compared"], 3, "{view}");
    let (_, queue) = send(
        &server,
        Method::GET,
        &format!("{base}/review?error_class=groups_differ_in_target"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        queue["page"]["items"].as_array().unwrap().len(),
        2,
        "{queue}"
    );

    // A retry of u-7 sends its groups again: it is back in `eng`.
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/review/retry"),
        &token,
        Some(json!({"selection": {"kind": "ids", "ids": ["u-7"]}})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    finished(&server, &token, &base, &run).await;
    let eng_now = peer.get("/Groups").await;
    let eng_members: Vec<&str> = eng_now["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "eng")
        .unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert!(eng_members.contains(&ids["u-7"].as_str()), "{eng_now}");
    server.stop().await;
}

#[tokio::test]
async fn group_memberships_changed_in_the_target_are_findings_on_sqlite() {
    memberships(sqlite_db()).await;
}

#[tokio::test]
async fn group_memberships_changed_in_the_target_are_findings_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    memberships(db).await;
}
