//! Goals and strategy over HTTP on both databases: user types saved with their
//! problems and counted, previews of real uploaded records (random, search, chosen
//! ids), confidential attributes refused, and the impact computed in the background
//! with counts that add up, rejects per rule and collisions; bad input named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestDb, TestServer, owner_with_token, postgres_db, settled, sqlite_db, upload};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.send(method, path, token, body).await
}

const EXPORT: &str = "\
id,username,email,first_name,last_name,status,last_login,groups,department,mfa_secret
u-1,ada,ada@corp.example,Ada,Lovelace,active,2026-05-01T10:00:00Z,staff;eng,R&D,JBSWY3DPEHPK3PXP
u-2,ada2,ADA@corp.example ,Ada,Byron,active,2026-05-02T10:00:00Z,staff,R&D,
u-3,grace,not an address,Grace,Hopper,active,2026-05-03T10:00:00Z,staff,Navy,
u-4,old,old@corp.example,Old,Timer,active,2020-01-01T00:00:00Z,staff,R&D,
u-5,guest,guest@else.example,Guest,User,active,2026-05-04T10:00:00Z,,Sales,
u-6,gone,gone@corp.example,Gone,Away,disabled,2026-05-05T10:00:00Z,staff,R&D,
";

async fn story(db: TestDb) {
    let server = TestServer::start(db).await;
    let (_owner, project, token) = owner_with_token(&server, "admin").await;
    let created = upload(&server, &project, &token, "users.csv", EXPORT.into()).await;
    let read = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["rows_ok"], 6, "{read}");
    let base = format!("/api/v1/projects/{project}");

    // Before any are saved: everyone moves with a forced reset.
    let (status, view) = send(
        &server,
        Method::GET,
        &format!("{base}/user-types"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["user_types"]["user_types"][0]["name"], "Everyone");
    assert!(view["saved_at"].is_null());

    // Broken user types are saved with their problems, each in its place.
    let broken = json!({"user_types": [{"name": "Bad", "include": true, "conditions": [
        {"test": "matches", "field": "email", "value": "(unclosed"}]}]});
    let (status, view) = send(
        &server,
        Method::PUT,
        &format!("{base}/user-types"),
        &token,
        Some(broken.clone()),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["problems"][0]["user_type"], 0);
    assert_eq!(view["problems"][0]["condition"], 0);
    assert_eq!(view["problems"][0]["field"], "value");
    // Counting them says what is wrong instead.
    let (status, body) = send(
        &server,
        Method::POST,
        &format!("{base}/user-types/count"),
        &token,
        Some(broken),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    // An unknown test is named by the JSON reader.
    let (status, body) = send(&server, Method::PUT, &format!("{base}/user-types"), &token,
        Some(json!({"user_types": [{"name": "X", "include": true, "conditions": [{"test": "psychic"}]}]}))).await;
    assert_eq!(status, 422, "{body}");

    // Dormant and disabled users stay behind; staff move; the guest is in none.
    let user_types = json!({"user_types": [
        {"name": "Leavers", "include": false, "combine": "any", "password": "none", "conditions": [
            {"test": "last_login_before", "value": "2025-01-01"},
            {"test": "status", "value": "disabled"}]},
        {"name": "Staff", "include": true, "password": "silent_migration", "conditions": [
            {"test": "in_group", "value": "staff"}]}]});
    let (status, view) = send(
        &server,
        Method::PUT,
        &format!("{base}/user-types"),
        &token,
        Some(user_types.clone()),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["problems"], json!([]));
    assert_eq!(view["saved_by_email"], "olive@example.com");
    let (status, counted) = send(
        &server,
        Method::POST,
        &format!("{base}/user-types/count"),
        &token,
        Some(user_types),
    )
    .await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["records"], 6);
    assert_eq!(counted["counts"]["user_types"], json!([2, 3]));
    assert_eq!(counted["counts"]["unmatched"], 1);
    assert_eq!(counted["counts"]["moving"], 3);
    let (status, goals) = send(&server, Method::GET, &format!("{base}/goals"), &token, None).await;
    assert_eq!(status, 200, "{goals}");
    assert_eq!(goals["run"]["moving"], 3);
    assert_eq!(goals["run"]["exact"], true);
    assert!(
        goals["run"]["seconds"].is_null(),
        "no target tested: no estimate"
    );

    // A preview of chosen records with rules being edited.
    let rules = json!([
        {"target": "userName", "source": "email", "transforms": [{"op": "email"}]},
        {"target": "name.givenName", "source": "given_name"},
        {"target": "title", "source": "attributes.department", "max_length": 3}
    ]);
    let (status, preview) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/preview"),
        &token,
        Some(json!({"rules": rules, "sample": {"kind": "ids", "ids": ["u-3", "u-1", "nobody"]}})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["problems"], json!([]));
    assert_eq!(preview["total"], 6);
    let records = preview["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["source_id"], "u-3");
    assert_eq!(records[0]["user_type"], "Staff");
    assert_eq!(records[0]["moves"], true);
    assert_eq!(records[0]["rules"][0]["source"], "not an address");
    assert_eq!(records[0]["rules"][0]["error"], "is not an e-mail address");
    assert_eq!(records[0]["rules"][2]["source"], "Navy");
    assert_eq!(
        records[0]["rules"][2]["error"],
        "is longer than 3 characters"
    );
    assert_eq!(records[1]["resource"]["userName"], "ada@corp.example");
    assert_eq!(records[1]["resource"]["externalId"], "u-1");
    assert_eq!(records[1]["rules"][2]["value"], "R&D");

    // By search, and at random (six records: all of them).
    let (status, found) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/preview"),
        &token,
        Some(json!({"rules": rules, "sample": {"kind": "search", "text": "hopper"}})),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["records"].as_array().unwrap().len(), 1);
    assert_eq!(found["records"][0]["source_id"], "u-3");
    let (status, random) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/preview"),
        &token,
        Some(json!({"rules": rules, "sample": {"kind": "random", "seed": 7}})),
    )
    .await;
    assert_eq!(status, 200, "{random}");
    assert_eq!(random["records"].as_array().unwrap().len(), 6);
    let (status, body) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/preview"),
        &token,
        Some(json!({"rules": rules, "sample": {"kind": "search", "text": "  "}})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "text");

    // A secret cannot be mapped: the rule is named and left out of the preview.
    let mut with_secret = rules.as_array().unwrap().clone();
    with_secret.push(json!({"target": "nickName", "source": "attributes.mfa_secret"}));
    let (status, preview) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/preview"),
        &token,
        Some(json!({"rules": with_secret, "sample": {"kind": "ids", "ids": ["u-1"]}})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["problems"][0]["rule"], 3);
    assert!(
        preview["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("confidential")
    );
    assert!(preview["records"][0]["resource"].get("nickName").is_none());
    assert!(!preview.to_string().contains("JBSWY3DPEHPK3PXP"));
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": with_secret})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    assert!(saved["problems"].to_string().contains("confidential"));

    // The impact over every record, in the background.
    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/mapping/impact"),
        &token,
        Some(json!({"rules": rules})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["records_total"], 6);
    let mut impact = started;
    for _ in 0..200 {
        if impact["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        impact = send(
            &server,
            Method::GET,
            &format!("{base}/mapping/impact"),
            &token,
            None,
        )
        .await
        .1;
    }
    assert_eq!(impact["status"], "ready", "{impact}");
    assert_eq!(impact["records_done"], 6);
    // Computed for rules other than the latest saved version.
    assert_eq!(impact["current"], false);
    let report = &impact["report"];
    assert_eq!(report["records"], 6);
    assert_eq!(report["user_types"]["user_types"], json!([2, 3]));
    assert_eq!(report["user_types"]["unmatched"], 1);
    assert_eq!(report["unmatched_examples"], json!(["u-5"]));
    // u-1 passes; u-2 collides with u-1 after trimming and lower-casing; u-3 is not an
    // address and its department is too long ("Navy").
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"], 2);
    let user_name = &report["rules"][0];
    assert_eq!(user_name["rejected"], 2);
    assert_eq!(user_name["collisions"], 1);
    assert_eq!(report["collisions"][0]["first"], "u-1");
    assert_eq!(report["collisions"][0]["second"], "u-2");
    assert_eq!(report["rules"][2]["rejected"], 1);
    assert_eq!(
        report["rules"][2]["reasons"][0]["message"],
        "is longer than 3 characters"
    );
    assert_eq!(report["rules"][2]["examples"], json!(["u-3"]));

    // Once the rules are saved as they were computed, the impact is current.
    let (status, _) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": rules})),
    )
    .await;
    assert_eq!(status, 201);
    let (_, impact) = send(
        &server,
        Method::GET,
        &format!("{base}/mapping/impact"),
        &token,
        None,
    )
    .await;
    assert_eq!(impact["current"], true);
    // And the plan counts moving users from it exactly.
    let (_, goals) = send(&server, Method::GET, &format!("{base}/goals"), &token, None).await;
    assert_eq!(goals["run"]["moving"], 3);

    // A project without records has no impact to compute.
    let (_, other) = send(
        &server,
        Method::POST,
        "/api/v1/projects",
        &token,
        Some(json!({"name": "Empty", "source_kind": "csv"})),
    )
    .await;
    let empty = other["id"].as_str().unwrap();
    let (status, body) = send(
        &server,
        Method::GET,
        &format!("/api/v1/projects/{empty}/mapping/impact"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/projects/{empty}/mapping/impact"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upload")
    );

    // Support staff see none of it.
    let support = server.token(&_owner, "support-ci", "support").await;
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("{base}/user-types"),
        &support,
        None,
    )
    .await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn goals_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn goals_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    story(db).await;
}
