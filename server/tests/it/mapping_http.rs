//! The attribute mapping over HTTP: the suggestion before anything is saved, versions
//! saved with their problems, listed, compared, exported and imported, bad input named,
//! and support staff kept out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, owner_with_token, settled, sqlite_db, upload};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut request = Client::new()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn mappings_are_suggested_saved_compared_exported_and_imported() {
    let server = TestServer::start(sqlite_db()).await;
    let (owner, project, token) = owner_with_token(&server, "admin").await;
    let base = format!("/api/v1/projects/{project}/mapping");
    use reqwest::Method;

    // Before any is saved: the suggestion for a CSV project, valid on its own.
    let (status, view) = send(&server, Method::GET, &base, &token, None).await;
    assert_eq!(status, 200, "{view}");
    assert!(view["version"].is_null());
    assert_eq!(view["mapping"]["rules"][0]["target"], "userName");
    assert_eq!(view["mapping"]["rules"][0]["source"], "username");
    assert_eq!(view["problems"], json!([]));
    assert_eq!(view["checked_against_target"], false);

    // Saved as version 1, then a version 2 with a broken rule: saved, problem named.
    let first = json!({"note": "suggested", "rules": view["mapping"]["rules"]});
    let (status, v1) = send(&server, Method::PUT, &base, &token, Some(first.to_string())).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version"]["version"], 1);
    let mut rules = view["mapping"]["rules"].as_array().unwrap().clone();
    rules.push(json!({"target": "title", "source": "display_name",
        "transforms": [{"op": "replace", "pattern": "(", "replacement": ""}]}));
    let second = json!({"note": "display names", "rules": rules});
    let (status, v2) = send(
        &server,
        Method::PUT,
        &base,
        &token,
        Some(second.to_string()),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(v2["version"]["version"], 2);
    let problems = v2["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["field"], "transforms[0]");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("regular expression")
    );

    // Listed newest first, with who saved them; compared rule by rule.
    let (_, list) = send(
        &server,
        Method::GET,
        &format!("{base}/versions"),
        &token,
        None,
    )
    .await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["version"], 2);
    assert_eq!(list["items"][0]["created_by_email"], "olive@example.com");
    let (_, changes) = send(
        &server,
        Method::GET,
        &format!("{base}/diff?from=1&to=2"),
        &token,
        None,
    )
    .await;
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes[0]["change"], "added");
    assert_eq!(changes[0]["rule"]["target"], "title");
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("{base}/diff?from=1&to=9"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, old) = send(
        &server,
        Method::GET,
        &format!("{base}?version=1"),
        &token,
        None,
    )
    .await;
    assert_eq!(old["version"]["note"], "suggested");

    // Exported, imported as version 3 with the same rules.
    let response = Client::new()
        .get(server.url(&format!("{base}/export?version=2")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("-v2.json")
    );
    let document = response.text().await.unwrap();
    assert!(document.contains("\"ferry_mapping\": 1"));
    let (status, v3) = send(
        &server,
        Method::POST,
        &format!("{base}/import"),
        &token,
        Some(document),
    )
    .await;
    assert_eq!(status, 201, "{v3}");
    assert_eq!(v3["version"]["version"], 3);
    assert_eq!(v3["version"]["note"], "imported: display names");
    assert_eq!(v3["mapping"], v2["mapping"]);

    // Bad input: named, 422; nothing saved.
    for (path, method, body, field) in [
        (
            base.clone(),
            Method::PUT,
            "{\"rules\": 5}".to_string(),
            "body",
        ),
        (
            base.clone(),
            Method::PUT,
            json!({"rules": [], "note": "a\nb"}).to_string(),
            "note",
        ),
        (
            format!("{base}/import"),
            Method::POST,
            "<html>".to_string(),
            "file",
        ),
        (
            format!("{base}/import"),
            Method::POST,
            "{\"ferry_mapping\": 2, \"rules\": []}".to_string(),
            "file",
        ),
    ] {
        let (status, error) = send(&server, method, &path, &token, Some(body)).await;
        assert_eq!(status, 422, "{path}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (_, list) = send(
        &server,
        Method::GET,
        &format!("{base}/versions"),
        &token,
        None,
    )
    .await;
    assert_eq!(list["total"], 3);

    // Each save is in the audit log; support staff are kept out.
    let audit = server
        .api_get("/api/v1/audit?limit=100", &token)
        .await
        .to_string();
    assert!(
        audit.contains("version 3: 1") || audit.contains("version 3:"),
        "{audit}"
    );
    let support = server.token(&owner, "support", "support").await;
    let (status, _) = send(&server, Method::GET, &base, &support, None).await;
    assert!(status == 403 || status == 404, "{status}");
    server.stop().await;
}

/// The suggestion is fitted to the records: an export without a user name column gets
/// its user names from the addresses, and every record previews clean.
#[tokio::test]
async fn the_suggestion_uses_the_columns_the_upload_has_and_previews_clean() {
    use reqwest::Method;
    let server = TestServer::start(sqlite_db()).await;
    let (_owner, project, token) = owner_with_token(&server, "admin").await;
    let mut csv = String::from("id,email,first_name,last_name\n");
    for i in 0..40 {
        csv.push_str(&format!("u-{i},user{i}@corp.example,Given{i},Family{i}\n"));
    }
    let created = upload(&server, &project, &token, "plain.csv", csv.into()).await;
    let read = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["rows_ok"], 40, "{read}");
    let base = format!("/api/v1/projects/{project}/mapping");
    let (status, view) = send(&server, Method::GET, &base, &token, None).await;
    assert_eq!(status, 200, "{view}");
    let rules = view["mapping"]["rules"].as_array().unwrap();
    assert_eq!(rules[0]["source"], "email", "{view}");
    let sources: Vec<&str> = rules
        .iter()
        .map(|r| r["source"].as_str().unwrap())
        .collect();
    assert!(
        !sources.contains(&"username") && !sources.contains(&"display_name"),
        "{sources:?}"
    );
    assert!(
        sources.contains(&"{given_name} {family_name}"),
        "{sources:?}"
    );
    assert!(
        view["notes"].to_string().contains("displayName is made of"),
        "{view}"
    );
    let (status, preview) = send(
        &server,
        Method::POST,
        &format!("{base}/preview"),
        &token,
        Some(json!({"rules": rules, "sample": {"kind": "random", "seed": 3}}).to_string()),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    let records = preview["records"].as_array().unwrap();
    assert!(!records.is_empty(), "{preview}");
    assert!(
        records.iter().all(|r| r["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|rule| rule["error"].is_null())),
        "{preview}"
    );
    assert_eq!(preview["problems"], json!([]), "{preview}");
    server.stop().await;
}
