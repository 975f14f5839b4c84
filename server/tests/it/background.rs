//! The supervisor of background work: a task that panics leaves its object in a state
//! a reader can act on (an upload failed with the reason, an assessment failed) and
//! Ferry keeps serving; the work can then be started again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, owner_with_token, settled, upload};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::time::Duration;

const EXPORT: &str = "\
id,username,email,first_name,last_name
1,ada,ada@example.com,Ada,Lovelace
2,grace,grace@example.com,Grace,Hopper
";

#[tokio::test]
async fn a_panicking_upload_read_leaves_the_upload_failed_and_ferry_serving() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_owner, project, token) = owner_with_token(&server, "admin").await;
    server.state.background.panic_next("upload read");
    let created = upload(&server, &project, &token, "users.csv", EXPORT.into()).await;
    let id = created["id"].as_str().unwrap().to_string();
    let failed = settled(&server, &token, &id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("internal error"), "{error}");
    assert!(error.contains("read it again"), "{error}");
    assert!(
        !error.contains("injected"),
        "the panic's own words stay in the log"
    );

    // Still serving, and the upload reads once asked again.
    let health = Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let again = Client::new()
        .post(server.url(&format!("/api/v1/uploads/{id}/read")))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(again.status().is_success(), "{}", again.status());
    // Until the read begins the upload still says "failed": wait for it to be read.
    let mut read = Value::Null;
    for _ in 0..200 {
        read = server
            .api_get(&format!("/api/v1/uploads/{id}"), &token)
            .await;
        if read["status"] == "parsed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read["status"], "parsed", "{read}");
    assert_eq!(read["rows_ok"], 2);
    assert!(
        server
            .state
            .background
            .running()
            .iter()
            .all(|(name, _)| *name != "upload read"),
        "the read's task ended"
    );
}

#[tokio::test]
async fn a_panicking_assessment_is_left_failed_and_can_run_again() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_owner, project, token) = owner_with_token(&server, "admin").await;
    let created = upload(&server, &project, &token, "users.csv", EXPORT.into()).await;
    settled(&server, &token, created["id"].as_str().unwrap()).await;
    let url = server.url(&format!("/api/v1/projects/{project}/assessment"));
    server.state.background.panic_next("assessment");
    let started = Client::new()
        .post(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let failed = finished(&server, &token, &project).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed.to_string().contains("internal error"),
        "the reason is shown: {failed}"
    );
    let again = Client::new()
        .post(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let done = finished(&server, &token, &project).await;
    assert_eq!(done["status"], "ready", "{done}");
}

async fn finished(server: &TestServer, token: &str, project: &str) -> Value {
    let path = format!("/api/v1/projects/{project}/assessment");
    for _ in 0..200 {
        let view: Value = server.api_get(&path, token).await;
        if view["status"] != "running" {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the assessment never finished");
}
