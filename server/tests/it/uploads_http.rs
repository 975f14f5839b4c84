//! Uploading exports over HTTP: streamed, sealed, read in the background, errors listed
//! and downloadable, duplicates and oversized files refused, roles checked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{TestServer, owner_with_token, settled, upload};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::time::Duration;

const BAD_CSV: &[u8] = include_bytes!("../../../domain/tests/fixtures/import/bad.csv");

#[tokio::test]
async fn an_export_is_uploaded_read_and_its_errors_listed() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_, project, token) = owner_with_token(&server, "admin").await;
    let api = Client::new();
    let url = server.url(&format!(
        "/api/v1/projects/{project}/uploads?file_name=../exports/bad.csv"
    ));
    let created = api
        .post(&url)
        .bearer_auth(&token)
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let upload: Value = created.json().await.unwrap();
    assert_eq!(upload["file_name"], "bad.csv", "a name, never a path");
    assert_eq!(upload["size_bytes"], BAD_CSV.len());
    let id = upload["id"].as_str().unwrap().to_string();

    let done = settled(&server, &token, &id).await;
    assert_eq!(done["status"], "parsed");
    assert_eq!(
        (done["rows_ok"].as_u64(), done["rows_failed"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(done["records_new"], 4);

    let errors: Value = server
        .api_get(&format!("/api/v1/uploads/{id}/errors?limit=2"), &token)
        .await;
    assert_eq!(errors["total"], 2);
    assert_eq!(errors["items"].as_array().unwrap().len(), 2);
    let csv = api
        .get(server.url(&format!("/api/v1/uploads/{id}/errors.csv")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("errors.csv")
    );
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("location,field,reason\nline 3,,"));
    assert!(!csv.contains("plaintext-secret"));

    let listed: Value = server
        .api_get(&format!("/api/v1/projects/{project}/uploads"), &token)
        .await;
    assert_eq!(listed["total"], 1);

    let again = api
        .post(&url)
        .bearer_auth(&token)
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already uploaded as \"bad.csv\"")
    );

    let empty = api
        .post(&url)
        .bearer_auth(&token)
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let stored = std::fs::read_dir(
        server
            .state
            .ingest
            .path(id.parse().unwrap())
            .parent()
            .unwrap(),
    )
    .unwrap()
    .count();
    assert_eq!(stored, 1, "refused uploads leave no file behind");
    let sealed = std::fs::read(server.state.ingest.path(id.parse().unwrap())).unwrap();
    assert!(
        !sealed.windows(15).any(|w| w == b"ok1@example.com"),
        "exports are stored encrypted"
    );
}

#[tokio::test]
async fn uploads_past_the_limit_are_refused_with_413() {
    let server = TestServer::start_with(common::sqlite_db(), &["--max-upload-bytes", "100"]).await;
    let (_, project, token) = owner_with_token(&server, "admin").await;
    let url = server.url(&format!("/api/v1/projects/{project}/uploads"));
    let response = Client::new()
        .post(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 101])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FERRY_MAX_UPLOAD_BYTES")
    );
    // Without a length up front, the stream is cut when it passes the limit.
    let chunks =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 10])));
    let streamed = Client::new()
        .post(&url)
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn browser_uploads_need_a_session_and_this_origin_and_roles_are_checked() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (owner, project, support_token) = owner_with_token(&server, "support").await;
    let url = server.url(&format!("/uploads/{project}?file_name=bad.csv"));
    let forged = owner
        .post(&url)
        .header("Origin", "https://evil.example")
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let ok = owner
        .post(&url)
        .header("Origin", &server.base)
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let anonymous = server
        .browser()
        .post(&url)
        .header("Origin", &server.base)
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let support = Client::new()
        .post(server.url(&format!("/api/v1/projects/{project}/uploads")))
        .bearer_auth(&support_token)
        .body(BAD_CSV)
        .send()
        .await
        .unwrap();
    assert_eq!(support.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn uploads_left_unread_by_a_stopped_server_are_read_at_start() {
    use domain::{
        audit::{AuditAction, NewAuditEntry, ObjectKind},
        ids::{AccountId, ProjectId, UploadId},
        uploads::NewUpload,
    };
    use std::io::Write;
    let server = TestServer::start(common::sqlite_db()).await;
    let (owner, project, token) = owner_with_token(&server, "admin").await;
    let me: Value = server
        .call(&owner, "auth/whoami", &[])
        .await
        .json()
        .await
        .unwrap();
    // As a crash would leave it: the file stored and recorded, reading never started.
    let id = UploadId(uuid::Uuid::now_v7());
    let file = std::fs::File::create(server.state.ingest.path(id)).unwrap();
    let vault = server
        .state
        .ingest
        .vault(project.parse::<ProjectId>().unwrap())
        .await
        .unwrap();
    let mut writer = vault.writer(file).unwrap();
    writer.write_all(BAD_CSV).unwrap();
    writer.finish().unwrap();
    let store = server::store::connect(&server.db.url).await.unwrap();
    let new = NewUpload {
        id,
        project_id: project.parse::<ProjectId>().unwrap(),
        file_name: "left.csv".into(),
        size_bytes: BAD_CSV.len() as u64,
        sha256: "left".into(),
        created_by: me["id"].as_str().unwrap().parse::<AccountId>().unwrap(),
        created_at: chrono::Utc::now(),
    };
    let audit = NewAuditEntry::anonymous(
        None,
        chrono::Utc::now(),
        AuditAction::UploadStored,
        ObjectKind::Upload,
        id,
    );
    store.insert_upload(&new, &audit).await.unwrap();

    server::resume_uploads(&server.state).await.unwrap();
    let done = settled(&server, &token, &id.to_string()).await;
    assert_eq!(done["status"], "parsed");
    assert_eq!(
        (done["rows_ok"].as_u64(), done["rows_failed"].as_u64()),
        (Some(4), Some(2))
    );
}

#[tokio::test]
async fn an_upload_is_read_again_with_the_firebase_parameters_or_a_chosen_format() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_, project, token) = owner_with_token(&server, "admin").await;
    let api = Client::new();
    let firebase = include_bytes!("../../../domain/tests/fixtures/import/firebase.json");
    let created = upload(
        &server,
        &project,
        &token,
        "firebase.json",
        firebase.to_vec(),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let first = settled(&server, &token, &id).await;
    assert_eq!(first["status"], "failed");
    assert!(
        first["error"]
            .as_str()
            .unwrap()
            .contains("password hash parameters")
    );

    let read = |body: Value| {
        api.post(server.url(&format!("/api/v1/uploads/{id}/read")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let wrong = read(serde_json::json!({"format": "xml"})).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"]["field"],
        "format"
    );
    let bad_key = read(serde_json::json!({"firebase": {"signer_key": "%%", "salt_separator": "Bw==", "rounds": 8, "mem_cost": 12}}))
        .await
        .unwrap();
    assert_eq!(
        bad_key.json::<Value>().await.unwrap()["error"]["field"],
        "firebase.signer_key"
    );

    let params: Value = serde_json::from_str(include_str!(
        "../../../domain/tests/fixtures/import/passwords.json"
    ))
    .unwrap();
    let accepted = read(serde_json::json!({"firebase": params["firebase"]}))
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    // The upload becomes `parsing` soon after; wait for that, then for the end.
    for _ in 0..100 {
        let now: Value = server
            .api_get(&format!("/api/v1/uploads/{id}"), &token)
            .await;
        if now["status"] != "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = settled(&server, &token, &id).await;
    assert_eq!(done["status"], "parsed", "{done}");
    assert_eq!(
        (done["rows_ok"].as_u64(), done["source"].as_str()),
        (Some(2), Some("firebase"))
    );

    // The parameters are kept with the project: its next Firebase export reads at once.
    let mut newer = firebase.to_vec();
    newer.extend_from_slice(b"\n");
    let created = upload(&server, &project, &token, "firebase-later.json", newer).await;
    let later = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(later["status"], "parsed", "{later}");
    assert_eq!(later["rows_ok"], 2);
    // The audit log names the kind of secret kept, never its value.
    let audit = server.api_get("/api/v1/audit", &token).await.to_string();
    assert!(audit.contains("ProjectSecretSet"), "{audit}");
    let key = params["firebase"]["signer_key"].as_str().unwrap();
    assert!(!audit.contains(key));
}

/// Reads server-sent events until `settled` names `id`; returns the progress lists seen.
async fn follow_until_settled(events: reqwest::Response, id: &str) -> Vec<Vec<Value>> {
    use futures_util::StreamExt;
    let mut body = events.bytes_stream();
    let mut text = String::new();
    let mut progress = Vec::new();
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        // Events end with a blank line.
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(str::trim))
                    .unwrap_or_default()
                    .to_string()
            };
            match field("event:").as_str() {
                "progress" => progress.push(serde_json::from_str(&field("data:")).unwrap()),
                "settled" if field("data:") == id => return progress,
                _ => {}
            }
        }
    }
    panic!("the event stream ended before upload {id} settled");
}

#[tokio::test]
async fn reading_progress_streams_as_server_sent_events() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_, project, token) = owner_with_token(&server, "admin").await;
    let api = Client::new();
    let events = api
        .get(server.url(&format!("/api/v1/projects/{project}/uploads/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Large enough that reading takes several ticks of the stream.
    let mut export = Vec::new();
    ferry_bench::gen_export::write(
        ferry_bench::gen_export::ExportFormat::Okta,
        60_000,
        5,
        &mut export,
    )
    .unwrap();
    let created = upload(&server, &project, &token, "okta.csv", export).await;
    let id = created["id"].as_str().unwrap().to_string();
    let progress =
        tokio::time::timeout(Duration::from_secs(120), follow_until_settled(events, &id))
            .await
            .expect("no settled event within two minutes");
    let mine: Vec<&Value> = progress
        .iter()
        .flatten()
        .filter(|p| p["upload_id"] == id.as_str())
        .collect();
    assert!(!mine.is_empty(), "no progress was streamed: {progress:?}");
    let rows = |p: &Value| p["rows_ok"].as_u64().unwrap() + p["rows_failed"].as_u64().unwrap();
    assert!(
        mine.windows(2).all(|w| rows(w[0]) <= rows(w[1])),
        "counts only grow"
    );
    assert!(
        mine.iter()
            .all(|p| p["size_bytes"] == created["size_bytes"])
    );
    let done = settled(&server, &token, &id).await;
    assert_eq!(done["rows_ok"], 60_000);
}

/// An upload that could not be read, or the wrong export, can be removed with the users
/// only it delivered; one whose users also came from another upload cannot (their data
/// is this upload's now), and every removal is audited.
#[tokio::test]
async fn uploads_are_removed_with_the_users_only_they_delivered() {
    let server = TestServer::start(common::sqlite_db()).await;
    let (_, project, token) = owner_with_token(&server, "admin").await;
    let api = Client::new();
    let remove = |id: String| {
        let (api, url, token) = (
            api.clone(),
            server.url(&format!("/api/v1/uploads/{id}")),
            token.clone(),
        );
        async move {
            let answer = api.delete(url).bearer_auth(token).send().await.unwrap();
            let status = answer.status();
            (status, answer.text().await.unwrap())
        }
    };
    let users = || async {
        server
            .api_get(&format!("/api/v1/projects/{project}/journey"), &token)
            .await["steps"][0]["summary"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Not an export: removed, its sealed file with it.
    let junk = upload(
        &server,
        &project,
        &token,
        "photo.jpg",
        vec![0, 1, 2, 250, 251],
    )
    .await;
    let junk_id = junk["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&server, &token, &junk_id).await["status"], "failed");
    let file = server.state.ingest.path(junk_id.parse().unwrap());
    assert!(file.exists());
    assert_eq!(remove(junk_id.clone()).await.0, StatusCode::NO_CONTENT);
    assert!(!file.exists(), "the sealed file goes with it");
    let listed = server
        .api_get(&format!("/api/v1/projects/{project}/uploads"), &token)
        .await;
    assert_eq!(listed["total"], 0, "{listed}");
    assert_eq!(remove(junk_id).await.0, StatusCode::NOT_FOUND);

    // The wrong export, read: removed with its users.
    let wrong = upload(
        &server,
        &project,
        &token,
        "wrong.csv",
        b"id,email\nw1,w1@example.com\nw2,w2@example.com\n".to_vec(),
    )
    .await;
    let wrong_id = wrong["id"].as_str().unwrap().to_string();
    assert_eq!(settled(&server, &token, &wrong_id).await["rows_ok"], 2);
    assert!(users().await.starts_with("2 users"), "{}", users().await);
    assert_eq!(remove(wrong_id).await.0, StatusCode::NO_CONTENT);
    assert_eq!(users().await, "No export uploaded yet");

    // Users delivered by two uploads: the first cannot be removed any more.
    let first = upload(
        &server,
        &project,
        &token,
        "first.csv",
        b"id,email\na,a@example.com\nb,b@example.com\n".to_vec(),
    )
    .await;
    let first_id = first["id"].as_str().unwrap().to_string();
    settled(&server, &token, &first_id).await;
    let second = upload(
        &server,
        &project,
        &token,
        "second.csv",
        b"id,email\nb,b@example.com\nc,c@example.com\n".to_vec(),
    )
    .await;
    settled(&server, &token, second["id"].as_str().unwrap()).await;
    let (status, body) = remove(first_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("also in another upload"), "{body}");
    assert!(!body.contains("a@example.com"), "never a value: {body}");

    let audit = server.api_get("/api/v1/audit", &token).await.to_string();
    assert_eq!(audit.matches("\"UploadRemoved\"").count(), 2, "{audit}");
    server.stop().await;
}
