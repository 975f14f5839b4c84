//! Support staff's review over HTTP against the real SCIM peer, on SQLite and
//! PostgreSQL: a real run's failures land in the project's queue once each, are found
//! by keyed digest and grouped; a support member without the grant sees every value
//! masked (pages' data, server functions, API, CSV), corrects an address with a live
//! preview, retries the user through the run engine and watches it succeed, skips
//! another with a reason, assigns and comments; the counts add up; the audit log says
//! who did what; corrections come back from CSV with bad rows named by line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::runs_http::{adds_up, impact_computed, rules, send, target, until};

use common::{
    TestDb, TestServer, owner_with_token, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use reqwest::{Client, Method};
use serde_json::{Value, json};

async fn call(
    server: &TestServer,
    client: &Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = server.call(client, endpoint, form).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Values of the users whose records the story fails (every tenth): none of these may
/// reach a viewer without the grant.
fn values_of(i: usize) -> [String; 3] {
    [
        format!("Given{i}"),
        format!("Family{i}"),
        format!("u{i}@corp.example"),
    ]
}

fn leaks(body: &Value, i: usize) -> Option<String> {
    let text = body.to_string();
    values_of(i).into_iter().find(|v| text.contains(v.as_str()))
}

fn summary_adds_up(summary: &Value) {
    let part = |k: &str| summary[k].as_u64().unwrap();
    assert_eq!(
        part("migrated")
            + part("waiting")
            + part("resolved")
            + part("skipped")
            + part("not_attempted"),
        part("users"),
        "{summary}"
    );
}

async fn story(db: TestDb, peer: &Peer) {
    let server = TestServer::start(db).await;
    let (owner, project, token) = owner_with_token(&server, "owner").await;
    let base = format!("/api/v1/projects/{project}");
    let created = upload(
        &server,
        &project,
        &token,
        "users.csv",
        crate::runs_http::export("u", 30).into(),
    )
    .await;
    settled(&server, &token, created["id"].as_str().unwrap()).await;
    target(
        &server,
        &token,
        &base,
        "production",
        &peer.base_url,
        PEER_TOKEN,
    )
    .await;
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": rules()})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    impact_computed(&server, &token, &base).await;

    // The real run: every tenth address is rejected by the mapping (u-9, u-19, u-29).
    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let run_id = started["run"]["id"].as_str().unwrap().to_string();
    let done = until(
        &server,
        &token,
        &format!("{base}/runs/{run_id}"),
        &["failed", "succeeded"],
    )
    .await;
    assert_eq!(done["run"]["counts"]["failed"], 3, "{done}");

    // One row per failed user, in legacy-id order, with the rule at fault.
    let (status, queue) = send(
        &server,
        Method::GET,
        &format!("{base}/review"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    let ids: Vec<&str> = queue["page"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["u-19", "u-29", "u-9"], "{queue}");
    assert_eq!(queue["matching"], 3);
    let first = &queue["page"]["items"][0];
    assert_eq!(first["error_class"], "mapping");
    assert_eq!(first["fault"], "rule 1");
    assert_eq!(first["run_id"], run_id.as_str());
    assert_eq!(queue["summary"]["waiting"], 3, "{queue}");
    assert_eq!(queue["summary"]["migrated"], 27, "{queue}");
    summary_adds_up(&queue["summary"]);

    // Found by user name (any case) and by legacy id, through keyed digests.
    for (search, found) in [
        ("U19", Some("u-19")),
        ("u-9", Some("u-9")),
        ("nobody", None),
    ] {
        let (_, hits) = send(
            &server,
            Method::GET,
            &format!("{base}/review?search={search}"),
            &token,
            None,
        )
        .await;
        let hits: Vec<&str> = hits["page"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["source_id"].as_str().unwrap())
            .collect();
        assert_eq!(hits, found.into_iter().collect::<Vec<_>>(), "{search}");
    }
    // Grouped by class and by rule; a filter narrows both.
    let (_, groups) = send(
        &server,
        Method::GET,
        &format!("{base}/review/groups?by=class"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        groups,
        json!([{"key": "mapping", "label": "Mapping rejected", "count": 3}])
    );
    let (_, groups) = send(
        &server,
        Method::GET,
        &format!("{base}/review/groups?by=fault&text=rule"),
        &token,
        None,
    )
    .await;
    assert_eq!(groups[0]["key"], "rule 1", "{groups}");
    let (status, error) = send(
        &server,
        Method::GET,
        &format!("{base}/review/groups?by=colour"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "by");

    // A support member of the project, without the grant.
    let support = server
        .member(&owner, "sam@example.com", "support", "support passphrase")
        .await;
    let (_, members) = call(&server, &owner, "members/list", &[]).await;
    let sam = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "sam@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &server,
        &owner,
        "projects/assign_support",
        &[("id", &project), ("account", &sam)],
    )
    .await;
    assert_eq!(status, 200);

    // It filters the queue and opens a record: every value masked, everywhere.
    let (status, queue) = call(
        &server,
        &support,
        "review/queue",
        &[
            ("project", &project),
            ("filter", r#"{"error_class": "mapping"}"#),
        ],
    )
    .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["matching"], 3);
    assert_eq!(queue["masked"], true);
    let (status, record) = call(
        &server,
        &support,
        "review/record",
        &[("project", &project), ("source_id", "u-9")],
    )
    .await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["masked"], true);
    assert_eq!(leaks(&record, 9), None, "{record}");
    assert!(
        record["imported"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f[0] == "given_name" && f[1].as_str().unwrap().starts_with('G')),
        "{record}"
    );
    assert_eq!(record["attempts"][0]["error_class"], "mapping", "{record}");
    assert_eq!(record["history"][0]["kind"], "failed", "{record}");
    let (_, page) = call(
        &server,
        &support,
        "review/groups",
        &[("project", &project), ("filter", ""), ("by", "pattern")],
    )
    .await;
    assert_eq!(page[0]["count"], 3, "{page}");

    // It tries a correction of the address: the preview maps cleanly, values masked.
    let correction = r#"{"email": "u9@corp.example"}"#;
    let (status, preview) = call(
        &server,
        &support,
        "review/preview_correction",
        &[
            ("project", &project),
            ("source_id", "u-9"),
            ("correction", correction),
        ],
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["changed"], json!(["email"]));
    assert_eq!(preview["maps_cleanly"], true, "{preview}");
    assert_eq!(leaks(&preview, 9), None, "{preview}");
    let (status, bad) = call(
        &server,
        &support,
        "review/preview_correction",
        &[
            ("project", &project),
            ("source_id", "u-9"),
            ("correction", r#"{"email": "still no address"}"#),
        ],
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    assert!(!bad.to_string().contains("still no address"), "{bad}");
    let (status, corrected) = call(
        &server,
        &support,
        "review/correct",
        &[
            ("project", &project),
            ("source_id", "u-9"),
            ("correction", correction),
        ],
    )
    .await;
    assert_eq!(status, 200, "{corrected}");
    assert_eq!(corrected["correction"]["fields"], json!(["email"]));
    assert_eq!(corrected["correction"]["by_name"], "sam@example.com");
    assert_eq!(corrected["correction"]["conflict"], false);
    assert_eq!(leaks(&corrected, 9), None, "{corrected}");

    // It retries the user: a retry run against production, which succeeds.
    let (status, retry) = call(
        &server,
        &support,
        "review/retry",
        &[
            ("project", &project),
            ("selection", r#"{"kind": "ids", "ids": ["u-9"]}"#),
        ],
    )
    .await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry["kind"], "retry");
    assert_eq!(retry["total"], 1);
    let retried = until(
        &server,
        &token,
        &format!("{base}/runs/{}", retry["id"].as_str().unwrap()),
        &["failed", "succeeded"],
    )
    .await;
    assert_eq!(retried["run"]["state"], "succeeded", "{retried}");
    adds_up(&retried["run"]);
    assert_eq!(peer.count("externalId", "u-9").await, 1);
    let (_, record) = send(
        &server,
        Method::GET,
        &format!("{base}/review/records/u-9"),
        &token,
        None,
    )
    .await;
    assert_eq!(record["item"]["outcome"], "migrated", "{record}");
    assert_eq!(record["item"]["state"], "resolved", "{record}");
    let kinds: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["migrated", "retried", "corrected", "failed"],
        "{record}"
    );

    // It skips another with a reason, and assigns and comments on the third.
    let (status, skipped) = call(
        &server,
        &support,
        "review/act",
        &[
            ("project", &project),
            ("selection", r#"{"kind": "ids", "ids": ["u-19"]}"#),
            (
                "action",
                r#"{"action": "skip", "reason": "left the company"}"#,
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{skipped}");
    assert_eq!(skipped["affected"], 1);
    let (status, error) = call(
        &server,
        &support,
        "review/act",
        &[
            ("project", &project),
            ("selection", r#"{"kind": "ids", "ids": ["u-29"]}"#),
            ("action", r#"{"action": "skip", "reason": "  "}"#),
        ],
    )
    .await;
    assert_eq!(status, 422, "{error}");
    for action in [
        format!(r#"{{"action": "assign", "member": "{sam}"}}"#),
        r#"{"action": "set_state", "state": "waiting"}"#.to_string(),
        r#"{"action": "comment", "text": "asked the customer for the right address"}"#.to_string(),
    ] {
        let (status, done) = call(
            &server,
            &support,
            "review/act",
            &[
                ("project", &project),
                (
                    "selection",
                    r#"{"kind": "filter", "filter": {"search": "u-29"}, "expected": 1}"#,
                ),
                ("action", &action),
            ],
        )
        .await;
        assert_eq!(status, 200, "{action}: {done}");
        assert_eq!(done["affected"], 1, "{action}");
    }
    let (_, mine) = send(
        &server,
        Method::GET,
        &format!("{base}/review?assignee={sam}&state=waiting"),
        &token,
        None,
    )
    .await;
    assert_eq!(mine["page"]["items"][0]["source_id"], "u-29", "{mine}");
    assert_eq!(mine["page"]["items"][0]["assignee_name"], "sam@example.com");

    // Every user is migrated, waiting for review, or deliberately skipped.
    let (_, summary) = send(
        &server,
        Method::GET,
        &format!("{base}/review/summary"),
        &token,
        None,
    )
    .await;
    assert_eq!(summary["migrated"], 28, "{summary}");
    assert_eq!(summary["waiting"], 1, "{summary}");
    assert_eq!(summary["skipped"], 1, "{summary}");
    assert_eq!(summary["not_attempted"], 0, "{summary}");
    summary_adds_up(&summary);

    // The export, as the support member gets it: masked.
    let export = support
        .get(server.url(&format!("/projects/{project}/review/export.csv?state=all")))
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let text = export.text().await.unwrap();
    assert!(
        text.starts_with("source_id,outcome,review_state,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    for i in [9, 19, 29] {
        assert!(
            values_of(i).iter().all(|v| !text.contains(v.as_str())),
            "{text}"
        );
    }

    // Nothing the member can open carries a user's value: every page of the project
    // and every server function it may call that reads the project's data.
    let run_path = format!("/projects/{project}/runs/{run_id}");
    let pages = [
        format!("/projects/{project}"),
        format!("/projects/{project}/uploads"),
        format!("/projects/{project}/assessment"),
        format!("/projects/{project}/runs"),
        run_path.clone(),
        format!("/projects/{project}/review?state=all"),
        format!("/projects/{project}/review?state=all&by=pattern"),
        format!("/projects/{project}/review/record?id=u-9"),
        format!("/projects/{project}/review/record?id=u-3"),
        format!("/projects/{project}/review/export.csv?state=all"),
    ];
    let mut seen = String::new();
    for path in &pages {
        let answer = support.get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        seen.push_str(&answer.text().await.unwrap());
    }
    let p = project.as_str();
    let reads: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("uploads/list", vec![("project", p)]),
        ("assessment/get", vec![("project", p)]),
        ("runs/list", vec![("project", p)]),
        ("runs/get", vec![("project", p), ("run", &run_id)]),
        ("runs/records", vec![("project", p), ("run", &run_id)]),
        ("projects/journey", vec![("id", p)]),
        (
            "review/queue",
            vec![("project", p), ("filter", r#"{"state": "all"}"#)],
        ),
        ("review/summary", vec![("project", p)]),
        (
            "review/groups",
            vec![
                ("project", p),
                ("filter", r#"{"state": "all"}"#),
                ("by", "pattern"),
            ],
        ),
        ("review/record", vec![("project", p), ("source_id", "u-29")]),
        ("review/record", vec![("project", p), ("source_id", "u-3")]),
    ];
    for (endpoint, form) in &reads {
        let (status, body) = call(&server, &support, endpoint, form).await;
        assert!(
            status == 200 || status == 404,
            "{endpoint}: {status} {body}"
        );
        seen.push_str(&body.to_string());
    }
    for i in 0..30 {
        for value in values_of(i) {
            // `Given1` is inside `Given19`: a whole value is looked for, bounded.
            for bounded in [
                format!("{value}\""),
                format!("{value}\\"),
                format!("{value}<"),
                format!("{value},"),
                format!("{value}\n"),
            ] {
                assert!(
                    !seen.contains(&bounded),
                    "{value} reached a support member without the grant"
                );
            }
        }
    }

    // The owner lets the member see personal data: now it does (audited).
    let (status, _) = call(
        &server,
        &owner,
        "review/grant",
        &[("member", &sam), ("granted", "true")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, record) = call(
        &server,
        &support,
        "review/record",
        &[("project", &project), ("source_id", "u-29")],
    )
    .await;
    assert_eq!(record["masked"], false);
    assert!(record.to_string().contains("Given29"), "{record}");

    // Corrections from CSV: rows by legacy id, bad rows by line and field.
    let csv = "source_id,email,detail\nu-29,u29@corp.example,x\nnobody,a@corp.example,\nu-19,no address,\n";
    let response = Client::new()
        .post(server.url(&format!("{base}/review/corrections")))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["rows"], 3, "{report}");
    assert_eq!(report["corrected"], 1, "{report}");
    assert_eq!(
        report["problems"],
        json!([
            {"line": 3, "field": "source_id", "message": "no user of this project has this legacy id"},
            {"line": 4, "field": "email", "message": "is not an e-mail address (name@example.com)"}
        ]),
        "{report}"
    );

    // The audit log names who corrected, retried and skipped.
    let (_, audit) = send(
        &server,
        Method::GET,
        &format!("/api/v1/audit?project={project}&limit=100"),
        &token,
        None,
    )
    .await;
    let actions: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor_email"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for wanted in ["RecordCorrected", "ReviewRetried", "ReviewActed"] {
        assert!(
            actions.contains(&(wanted.to_string(), "sam@example.com".to_string())),
            "{wanted}: {actions:?}"
        );
    }
    assert!(actions.iter().any(|(a, _)| a == "CorrectionsImported"));
    let (_, audit) = send(
        &server,
        Method::GET,
        "/api/v1/audit?limit=100",
        &token,
        None,
    )
    .await;
    assert!(audit.to_string().contains("PersonalDataGranted"), "{audit}");

    // A new real run leaves the skipped user out.
    let (status, again) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["run"]["total"], 29, "{again}");
    until(
        &server,
        &token,
        &format!("{base}/runs/{}", again["run"]["id"].as_str().unwrap()),
        &["failed", "succeeded"],
    )
    .await;

    // A mistaken upload removed: what the review kept of its users goes with them.
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/api/v1/uploads/{}", created["id"].as_str().unwrap()),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, left) = send(
        &server,
        Method::GET,
        &format!("{base}/review?state=all"),
        &token,
        None,
    )
    .await;
    assert_eq!(left["matching"], 0, "{left}");
    assert_eq!(left["summary"]["users"], 0, "{left}");
    assert_eq!(left["summary"]["skipped"], 0, "{left}");
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("{base}/review/records/u-9"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_staff_work_the_queue_on_sqlite() {
    let peer = Peer::start().await.expect("the SCIM peer");
    story(sqlite_db(), &peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_staff_work_the_queue_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    let peer = Peer::start().await.expect("the SCIM peer");
    story(db, &peer).await;
}
