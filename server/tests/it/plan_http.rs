//! The migration plan over HTTP on SQLite and PostgreSQL, with a project that has
//! walked the journey up to a test run into the real SCIM peer: Ferry proposes the
//! risks its data shows, completes its own milestones, and suggests the quietest
//! stretch of the last-login heatmap long enough for the run; versions are saved,
//! compared and approved by an owner only (the latest only, once); the real run's
//! pre-flight waits for the approval and for the acceptable-impact numbers; a bad
//! document is refused by field without quoting it; the audit log records it all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{
    self, TestDb, owner_with_token, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use crate::runs_http::{impact_computed_with, send, target, until};
use chrono::{Datelike, NaiveDateTime, Timelike};
use reqwest::Method;
use serde_json::{Value, json};

/// Users who last logged in at every hour of a week except Sunday 01:00–05:00 UTC,
/// three in four of them in the "staff" group (a silent-migration type), the rest
/// "contractors" (forced reset). No export carries a hash.
fn export() -> String {
    let mut csv = String::from("id,username,email,groups,last_login\n");
    // Monday 2026-11-02 00:00 UTC.
    let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut i = 0;
    for slot in 0..7 * 24 {
        let at = monday + chrono::Duration::hours(slot);
        if at.weekday() == chrono::Weekday::Sun && (1..5).contains(&at.hour()) {
            continue;
        }
        for _ in 0..2 {
            let group = if i % 4 == 3 { "contractors" } else { "staff" };
            csv.push_str(&format!(
                "u-{i},user{i},user{i}@corp.example,{group},{}\n",
                at.format("%Y-%m-%dT%H:%M:%SZ")
            ));
            i += 1;
        }
    }
    csv
}

fn check<'a>(preflight: &'a Value, name: &str) -> &'a Value {
    preflight["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

async fn story(db: TestDb) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = common::TestServer::start(db).await;
    let (owner, project, token) = owner_with_token(&server, "owner").await;
    let admin = server.token(&owner, "admin-ci", "admin").await;
    let base = format!("/api/v1/projects/{project}");
    let plan = format!("{base}/plan");

    let created = upload(&server, &project, &token, "users.csv", export().into()).await;
    let read = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["status"], "parsed", "{read}");
    let (status, _) = send(
        &server,
        Method::POST,
        &format!("{base}/assessment"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 202);

    // Before anything is saved: the guide's requirements, all open.
    let (status, view) = send(&server, Method::GET, &plan, &admin, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["latest"], Value::Null);
    assert_eq!(
        view["document"]["requirements"].as_array().unwrap().len(),
        5
    );
    assert_eq!(
        view["may_approve"], false,
        "an administrator may not approve"
    );

    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/user-types"),
        &token,
        Some(json!({"user_types": [
            {"name": "Staff", "include": true, "password": "silent_migration",
             "conditions": [{"test": "in_group", "value": "staff"}]},
            {"name": "Contractors", "include": true, "password": "forced_reset",
             "conditions": [{"test": "in_group", "value": "contractors"}]},
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    for role in ["production", "test"] {
        target(&server, &token, &base, role, &peer.base_url, PEER_TOKEN).await;
    }
    let rules = json!([
        {"target": "userName", "source": "username"},
        {"target": "emails[type eq \"work\"].value", "source": "email", "transforms": [{"op": "email"}]},
    ]);
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": rules})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    impact_computed_with(&server, &token, &base, rules).await;
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 40, "seed": 3})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let done = until(
        &server,
        &token,
        &format!("{base}/runs/{}", run["id"].as_str().unwrap()),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(done["run"]["state"], "succeeded", "{done}");

    // What Ferry's data shows.
    let (_, view) = send(&server, Method::GET, &plan, &token, None).await;
    assert_eq!(view["may_approve"], true);
    let proposals: Vec<&str> = view["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(proposals.contains(&"silent_without_hash"), "{proposals:?}");
    assert!(proposals.contains(&"pii_to_target"), "{proposals:?}");
    let pii = view["proposals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "pii_to_target")
        .unwrap();
    assert!(
        pii["evidence"].as_str().unwrap().contains("userName"),
        "{pii}"
    );
    let milestones = |view: &Value, key: &str| -> Value {
        view["milestones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["key"] == key)
            .unwrap()
            .clone()
    };
    for key in ["assessment", "mapping", "test_run"] {
        assert!(milestones(&view, key)["done"].is_object(), "{key}: {view}");
    }
    assert_eq!(milestones(&view, "plan_approved")["done"], Value::Null);
    assert_eq!(milestones(&view, "real_run")["done"], Value::Null);
    // 328 users move, a quarter of them contractors: their share needs a reset.
    assert_eq!(view["facts"]["moving"], 328, "{}", view["facts"]);
    assert_eq!(view["facts"]["resets"], 82, "{}", view["facts"]);
    // The quietest stretch is the one without logins, in the plan's zone (UTC).
    let suggestion = &view["suggestion"];
    assert!(suggestion.is_object(), "{view}");
    let starts =
        NaiveDateTime::parse_from_str(suggestion["starts"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S")
            .unwrap();
    assert_eq!(
        (starts.weekday(), starts.hour()),
        (chrono::Weekday::Sun, 1),
        "{suggestion}"
    );
    assert_eq!(suggestion["logins"], 0, "{suggestion}");
    assert_eq!(view["heatmap"][6][2], 0);
    assert_eq!(view["heatmap"][0][0], 2);

    // A bad document is refused by field, its value not quoted.
    let mut document = view["document"].clone();
    document["windows"] = json!([{"label": "Backwards-Secret", "starts": "2027-01-03T05:00:00", "ends": "2027-01-03T01:00:00"}]);
    let (status, error) = send(
        &server,
        Method::PUT,
        &plan,
        &token,
        Some(json!({"document": document})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "windows[0].ends", "{error}");
    assert!(!error.to_string().contains("Backwards-Secret"));

    // Version 1: the suggested window, a peak over it, a limit the data does not meet.
    document["windows"] =
        json!([{"label": "Cutover", "starts": suggestion["starts"], "ends": suggestion["ends"]}]);
    document["peaks"] =
        json!([{"label": "Month end", "starts": suggestion["starts"], "ends": suggestion["ends"]}]);
    document["acceptable"] = json!({"max_reset_percent": 10.0, "max_failed_records": 0});
    document["requirements"][4]["status"] = json!("met");
    let (status, v1) = send(
        &server,
        Method::PUT,
        &plan,
        &admin,
        Some(json!({"document": document, "note": "first draft"})),
    )
    .await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["latest"]["version"], 1);
    assert_eq!(v1["latest"]["note"], "first draft");
    assert!(
        v1["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["key"] == "peak_overlap"),
        "{v1}"
    );
    let tests = v1["impact"].as_array().unwrap();
    let reset = tests.iter().find(|t| t["name"] == "reset_percent").unwrap();
    assert_eq!(
        (reset["actual"].as_f64(), reset["met"].as_bool()),
        (Some(25.0), Some(false)),
        "{reset}"
    );

    let preflight = || async {
        let (status, checks) = send(
            &server,
            Method::GET,
            &format!("{base}/runs/preflight"),
            &token,
            None,
        )
        .await;
        assert_eq!(status, 200, "{checks}");
        check(&checks, "plan").clone()
    };
    let plan_check = preflight().await;
    assert_eq!(plan_check["passed"], false);
    assert!(
        plan_check["detail"]
            .as_str()
            .unwrap()
            .contains("not approved"),
        "{plan_check}"
    );

    // Only an owner approves; then the limits count.
    let approve = |v: u32| format!("{plan}/versions/{v}/approve");
    let (status, _) = send(&server, Method::POST, &approve(1), &admin, None).await;
    assert_eq!(status, 403);
    let (status, approved) = send(&server, Method::POST, &approve(1), &token, None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["approved"]["version"], 1);
    assert_eq!(
        approved["approved"]["approved_by_email"],
        "olive@example.com"
    );
    assert!(milestones(&approved, "plan_approved")["done"].is_object());
    let (status, again) = send(&server, Method::POST, &approve(1), &token, None).await;
    assert_eq!(status, 409, "{again}");
    let plan_check = preflight().await;
    assert_eq!(plan_check["passed"], false);
    assert!(
        plan_check["detail"]
            .as_str()
            .unwrap()
            .contains("(% of those who move) is 25 (limit 10)"),
        "{plan_check}"
    );

    // Version 2 states what the data meets; until approved, the run waits again.
    document["acceptable"]["max_reset_percent"] = json!(30.0);
    document["risks"] = json!([{"title": "Users without hashes", "kind": "disruption", "likelihood": "high",
        "impact": "medium", "mitigation": "connect the directory", "proposal": "silent_without_hash"}]);
    let (status, v2) = send(
        &server,
        Method::PUT,
        &plan,
        &token,
        Some(json!({"document": document})),
    )
    .await;
    assert_eq!(status, 200, "{v2}");
    assert!(
        v2["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == "silent_without_hash")
            .unwrap()["adopted"]
            == true
    );
    assert_eq!(preflight().await["passed"], false);
    let (status, stale) = send(&server, Method::POST, &approve(1), &token, None).await;
    assert_eq!(status, 422, "{stale}");
    assert_eq!(stale["error"]["field"], "version", "{stale}");
    let (status, refused) = send(
        &server,
        Method::POST,
        &format!("{plan}/versions/9/approve"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404, "{refused}");
    let (status, approved) = send(&server, Method::POST, &approve(2), &token, None).await;
    assert_eq!(status, 200, "{approved}");
    let plan_check = preflight().await;
    assert_eq!(plan_check["passed"], true, "{plan_check}");

    // Versions are kept and compared; each is a JSON document.
    let (status, versions) = send(
        &server,
        Method::GET,
        &format!("{plan}/versions"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(versions["total"], 2);
    assert_eq!(versions["items"][0]["version"], 2);
    assert_eq!(
        versions["items"][1]["approved_by_email"],
        "olive@example.com"
    );
    let (status, changes) = send(
        &server,
        Method::GET,
        &format!("{plan}/compare?from=1&to=2"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{changes}");
    let paths: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["acceptable.max_reset_percent", "risks[0]"],
        "{changes}"
    );
    let (status, one) = send(
        &server,
        Method::GET,
        &format!("{plan}/versions/1"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["document"]["acceptable"]["max_reset_percent"], 10.0);
    assert_eq!(one["approved_by_email"], "olive@example.com");

    // The audit log says who saved and who approved.
    let (_, audit) = send(
        &server,
        Method::GET,
        &format!("/api/v1/audit?project={project}"),
        &token,
        None,
    )
    .await;
    let text = audit.to_string();
    for action in [
        "PlanSaved",
        "PlanApproved",
        "version 1: first draft",
        "version 2",
    ] {
        assert!(text.contains(action), "{action}: {text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_plan_on_sqlite_is_proposed_from_the_data_versioned_and_approved() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn the_plan_on_postgres_is_proposed_from_the_data_versioned_and_approved() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}
