//! Target connections over HTTP on SQLite and on PostgreSQL: saved with the secret
//! write-only, kept when not re-entered, tested against the real SCIM peer with the
//! report and discovery stored, audited without secrets, refused to support staff,
//! bad input named by field, and removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{
    TestDb, TestServer, owner_with_token, postgres_db, scim::PEER_TOKEN, scim::Peer, sqlite_db,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn put(server: &TestServer, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = Client::new()
        .put(server.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn story(db: TestDb, peer: &Peer) {
    let server = TestServer::start(db).await;
    let (owner, project, token) = owner_with_token(&server, "admin").await;
    let base = format!("/api/v1/projects/{project}/targets");

    // Nothing set up yet.
    assert_eq!(server.api_get(&base, &token).await, json!([]));
    let missing = Client::new()
        .get(server.url(&format!("{base}/production")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Saved: the answer says the token is set and never contains it.
    let input = json!({
        "preset": "generic",
        "base_url": format!("{}/", peer.base_url),
        "auth": {"type": "bearer"},
        "secret": PEER_TOKEN,
        "headers": [{"name": "X-Tenant", "value": "tenant-secret-value"}],
        "on_existing": "update",
        "request_timeout_secs": 30
    });
    let (status, view) = put(&server, &token, &format!("{base}/production"), &input).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["secret_set"], true);
    assert_eq!(view["header_names"], json!(["X-Tenant"]));
    assert_eq!(view["settings"]["base_url"], peer.base_url.as_str());
    assert_eq!(view["settings"]["on_existing"], "update");
    assert!(view["last_test"].is_null());
    let text = view.to_string();
    assert!(
        !text.contains(PEER_TOKEN) && !text.contains("tenant-secret-value"),
        "{text}"
    );

    // Saved again without the secret: kept.
    let mut without = input.clone();
    without.as_object_mut().unwrap().remove("secret");
    without.as_object_mut().unwrap().remove("headers");
    let (status, view) = put(&server, &token, &format!("{base}/production"), &without).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["secret_set"], true);
    assert_eq!(view["header_names"], json!(["X-Tenant"]));

    // The connection test runs against the peer and is kept with the target.
    let tested: Value = Client::new()
        .post(server.url(&format!("{base}/production/test")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps = tested["last_test"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert!(steps.iter().all(|s| s["status"] == "passed"), "{steps:?}");
    let discovery = &tested["last_test"]["discovery"];
    assert_eq!(discovery["config"]["max_operations"], 1000);
    assert_eq!(discovery["config"]["max_payload_size"], 1_048_576);
    let again = server.api_get(&format!("{base}/production"), &token).await;
    assert_eq!(again["last_test"], tested["last_test"]);
    // Changing the settings drops the report: it described other settings.
    let (_, changed) = put(&server, &token, &format!("{base}/production"), &without).await;
    assert!(changed["last_test"].is_null());

    // A test target with a wrong token fails at authentication, and says so.
    let mut wrong = input.clone();
    wrong["secret"] = json!("not-the-token");
    let (status, _) = put(&server, &token, &format!("{base}/test"), &wrong).await;
    assert_eq!(status, 200);
    let tested: Value = Client::new()
        .post(server.url(&format!("{base}/test/test")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps = tested["last_test"]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "passed");
    assert_eq!(steps[1]["kind"], "authenticate");
    assert_eq!(steps[1]["status"], "failed");
    assert!(steps[1]["detail"].as_str().unwrap().contains("401"));
    let listed = server.api_get(&base, &token).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["role"], "production");

    // Bad input: named by field, 422.
    for (body, field) in [
        (
            json!({"base_url": "ftp://x", "auth": {"type": "bearer"}, "secret": "t"}),
            "base_url",
        ),
        (
            json!({"base_url": "https://x.example/scim2", "auth": {"type": "basic", "username": ""}, "secret": "t"}),
            "auth.username",
        ),
        (
            json!({"base_url": "https://x.example/scim2", "auth": {"type": "bearer"}, "secret": "t", "ca_certificate": "junk"}),
            "ca_certificate",
        ),
        (
            json!({"base_url": "https://x.example/scim2", "auth": {"type": "kerberos"}}),
            "body",
        ),
    ] {
        let (status, error) = put(&server, &token, &format!("{base}/production"), &body).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (status, _) = put(&server, &token, &format!("{base}/staging"), &input).await;
    assert_eq!(status, 422);

    // The audit log names what changed, never a secret.
    let audit = server.api_get("/api/v1/audit?limit=200", &token).await;
    let text = audit.to_string();
    assert!(
        text.contains("TargetSaved") || text.contains("target.saved"),
        "{text}"
    );
    assert!(text.contains("passed; bulk supported"), "{text}");
    assert!(!text.contains(PEER_TOKEN) && !text.contains("tenant-secret-value"));

    // Support staff cannot see or change targets.
    let support = server.token(&owner, "support-token", "support").await;
    let denied = Client::new()
        .get(server.url(&base))
        .bearer_auth(&support)
        .send()
        .await
        .unwrap();
    assert!(
        denied.status() == 403 || denied.status() == 404,
        "{}",
        denied.status()
    );

    // Removed.
    let deleted = Client::new()
        .delete(server.url(&format!("{base}/test")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        server
            .api_get(&base, &token)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn targets_on_sqlite() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    story(sqlite_db(), &peer).await;
}

#[tokio::test]
async fn targets_on_postgres() {
    let Some(db) = postgres_db().await else {
        return;
    };
    let Some(peer) = Peer::start().await else {
        return;
    };
    story(db, &peer).await;
}
