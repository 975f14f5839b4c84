//! The assessment over HTTP: computed in the background from a crafted export, its
//! numbers, masking (no personal value leaves unmasked, no secret at all), the
//! drill-down, class overrides and reveals with their audit entries, and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, owner_with_token, settled, upload};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const EXPORT: &str = "\
id,username,email,first_name,last_name,phone,groups,last_login,status,department,ssn,api_token
1,ada,ada@example.com,Ada,Lovelace,+44 20 7946 0958,eng;admins,2020-11-04T10:00:00Z,active,Eng,123-45-6789,tok_secret_one
2,ADA,ada@example.com,,,,eng,,disabled,Eng,,tok_secret_two
3,grace,grace@@example,Grace,Hopper,555-0100,,,active,Ops,,
";

async fn ready(server: &TestServer, token: &str, project: &str) -> Value {
    for _ in 0..200 {
        let view = server
            .api_get(&format!("/api/v1/projects/{project}/assessment"), token)
            .await;
        if view["status"] != "running" {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the assessment never finished");
}

fn attribute<'a>(view: &'a Value, path: &str) -> &'a Value {
    view["report"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == path)
        .unwrap_or_else(|| panic!("no attribute {path}"))
}

fn quality(view: &Value, check: &str) -> u64 {
    view["report"]["quality"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["check"] == check)
        .unwrap()["count"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn the_report_is_computed_masked_drilled_into_and_overridden() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (owner, project, token) = owner_with_token(&server, "admin").await;
    let api = Client::new();
    let url = server.url(&format!("/api/v1/projects/{project}/assessment"));

    // Nothing to assess before an export is read.
    let early = api.post(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(early.status(), StatusCode::CONFLICT);

    let created = upload(&server, &project, &token, "users.csv", EXPORT.into()).await;
    let read = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["rows_ok"], 3);

    let started = api.post(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let view = ready(&server, &token, &project).await;
    assert_eq!(view["status"], "ready", "{view}");
    // The page follows progress as server-sent events; once over, one `settled` ends it.
    let events = owner
        .get(server.url(&format!("/projects/{project}/assessment/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let text = tokio::time::timeout(Duration::from_secs(10), events.text())
        .await
        .expect("the stream ends once the assessment is over")
        .unwrap();
    assert!(text.contains("event: settled\ndata: done"), "{text}");
    assert_eq!(view["records_total"], 3);
    assert_eq!(view["records_done"], 3);

    let totals = &view["report"]["totals"];
    assert_eq!(
        (&totals["users"], &totals["active"], &totals["disabled"]),
        (&json!(3), &json!(2), &json!(1))
    );
    assert_eq!(quality(&view, "duplicate_email"), 2);
    assert_eq!(quality(&view, "username_collision"), 2);
    assert_eq!(quality(&view, "invalid_email"), 1);
    assert_eq!(quality(&view, "phone_not_e164"), 1);
    assert_eq!(quality(&view, "missing_name"), 1);
    assert_eq!(attribute(&view, "ssn")["class"], "pii");
    let secret = attribute(&view, "api_token");
    assert_eq!(secret["class"], "confidential");
    assert_eq!(secret["examples"], json!([]));
    assert_eq!(
        attribute(&view, "department")["top"][0],
        json!({"name": "Eng", "count": 2})
    );
    assert_eq!(view["heatmap"].as_array().unwrap().len(), 7);
    assert_eq!(view["zone"], "UTC");
    assert_eq!(view["can_reveal"], true);
    let text = view.to_string();
    for value in [
        "tok_secret",
        "Lovelace",
        "ada@example.com",
        "123-45-6789",
        "Hopper",
    ] {
        assert!(!text.contains(value), "{value} leaked in the report");
    }

    // The drill-down names both records of the shared address, page by page.
    let page = server
        .api_get(
            &format!(
                "/api/v1/projects/{project}/assessment/findings?check=duplicate_email&limit=1"
            ),
            &token,
        )
        .await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"][0]["source_id"], "1");
    let second = server
        .api_get(
            &format!("/api/v1/projects/{project}/assessment/findings?check=duplicate_email&limit=1&offset=1"),
            &token,
        )
        .await;
    assert_eq!(second["items"][0]["source_id"], "2");
    assert_eq!(
        second["items"][0]["note"],
        "shares its e-mail address with 1"
    );

    // Bad input is named.
    let bad_check = api
        .get(server.url(&format!(
            "/api/v1/projects/{project}/assessment/findings?check=nope"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_check.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_zone = api
        .get(format!("{url}?zone=Mars/Olympus"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_zone.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad_zone.json().await.unwrap();
    assert_eq!(body["error"]["field"], "zone");
    let berlin = server
        .api_get(
            &format!("/api/v1/projects/{project}/assessment?zone=Europe/Berlin"),
            &token,
        )
        .await;
    // 10:00 UTC on Wednesday 2020-11-04 is 11:00 in Berlin.
    assert_eq!(berlin["heatmap"][2][11], 1);

    // An administrator makes the department confidential: its values go.
    let classes = format!("{url}/classes");
    let set = api
        .put(&classes)
        .bearer_auth(&token)
        .json(&json!({"path": "department", "class": "confidential"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let view = ready(&server, &token, &project).await;
    let department = attribute(&view, "department");
    assert_eq!(department["class"], "confidential");
    assert_eq!(department["overridden"], true);
    assert_eq!(department["top"], json!([]));
    let wrong = api
        .put(&classes)
        .bearer_auth(&token)
        .json(&json!({"path": "department", "class": "secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // One value revealed, and the audit log says which attribute, not the value.
    let revealed: Value = api
        .post(format!("{url}/reveal"))
        .bearer_auth(&token)
        .json(&json!({"path": "last_name", "index": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revealed["value"], "Lovelace");
    let secret = api
        .post(format!("{url}/reveal"))
        .bearer_auth(&token)
        .json(&json!({"path": "api_token", "index": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), StatusCode::NOT_FOUND);
    let audit = server.api_get("/api/v1/audit", &token).await.to_string();
    assert!(audit.contains("AssessmentValueRevealed"), "{audit}");
    assert!(audit.contains("last_name example 1"));
    assert!(audit.contains("department: confidential"));
    assert!(audit.contains("AssessmentStarted"));
    assert!(!audit.contains("Lovelace"));

    // Support staff may read reports but never reveal.
    let support = server.token(&owner, "helpdesk", "support").await;
    let refused = api
        .post(format!("{url}/reveal"))
        .bearer_auth(&support)
        .json(&json!({"path": "last_name", "index": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Another export keeps the report current: it is computed again by itself.
    let more = upload(
        &server,
        &project,
        &token,
        "more.csv",
        "id,username,email\n4,linus,linus@example.org\n".into(),
    )
    .await;
    settled(&server, &token, more["id"].as_str().unwrap()).await;
    let mut current = Value::Null;
    for _ in 0..200 {
        current = ready(&server, &token, &project).await;
        if current["report"]["totals"]["users"] == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(current["report"]["totals"]["users"], 4, "{current}");
    assert_eq!(current["records_total"], 4);
}
