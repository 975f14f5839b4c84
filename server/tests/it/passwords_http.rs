//! The password verification service over HTTP, as WSO2's login script calls it, on
//! SQLite and PostgreSQL with users a real run created in the SCIM peer: client
//! credentials and a static key; start → poll → status for every hash scheme Ferry
//! reads (hashes made by independent implementations), right and wrong passwords; a
//! user whose password moved is never verified again; contexts read once and bound to
//! the user name; a lockout that answers before hashing; every bad input answered by
//! the contract, never a 500, never telling whether a user exists; CORS only for the
//! login origin; the rehearsal against the test target sets the password and
//! `is_migrated` through SCIM and reads it back; coverage counts what moved. On one
//! PostgreSQL, a login started on one instance is answered by another (its token too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::runs_http::{Process, impact_computed_with, send, target, until};
use common::{
    TestDb, TestServer, owner_with_token, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use std::time::Duration;

const WRONG: &str = "not the password";

/// The vectors of `domain/tests/fixtures/passwords` an Auth0 export can carry (made by
/// passlib, OpenSSL, Python's hashlib and others; see `make_vectors.py`).
fn vectors() -> Vec<Value> {
    let file: Value = serde_json::from_str(include_str!(
        "../../../domain/tests/fixtures/passwords/vectors.json"
    ))
    .unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            matches!(
                v["kind"].as_str(),
                Some("bcrypt" | "argon2" | "modular" | "salted")
            )
        })
        .cloned()
        .collect()
}

/// An Auth0 bulk-import file: one user per vector (`v{i}@corp.example`), a user of the
/// forced-reset type, and one without a hash.
fn export(vectors: &[Value]) -> Vec<u8> {
    let mut users: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut user = json!({
                "email": format!("v{i}@corp.example"),
                "email_verified": true,
                "user_id": format!("legacy-{i}"),
            });
            if v["kind"] == "salted" {
                user["custom_password_hash"] = json!({
                    "algorithm": v["digest"],
                    "hash": {"value": v["stored"], "encoding": "hex"},
                    "salt": {"value": v["salt"], "encoding": "hex", "position": v["position"]},
                });
            } else {
                user["password_hash"] = v["stored"].clone();
            }
            user
        })
        .collect();
    users.push(json!({
        "email": "invited@reset.example", "user_id": "legacy-reset",
        "password_hash": vectors[0]["stored"],
    }));
    users.push(json!({"email": "nohash@corp.example", "user_id": "legacy-nohash"}));
    serde_json::to_vec(&users).unwrap()
}

fn rules() -> Value {
    json!([
        {"target": "userName", "source": "email", "transforms": [{"op": "email"}]},
        {"target": "emails[type eq \"work\"].value", "source": "email", "transforms": [{"op": "email"}]},
    ])
}

/// The service's endpoints as the script and the waiting page call them.
pub(crate) struct Service {
    pub(crate) base: String,
    pub(crate) client: Client,
    pub(crate) bearer: String,
}

impl Service {
    async fn start(&self, id: &str, username: &str, password: &str) -> (u16, Value) {
        self.raw_start(json!({"id": id, "username": username, "password": password}))
            .await
    }

    async fn raw_start(&self, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/start-authentication", self.base))
            .bearer_auth(&self.bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn poll(&self, context: &str) -> String {
        let r = self
            .client
            .get(format!("{}/authentication-status", self.base))
            .query(&[("contextId", context)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        body["status"].as_str().unwrap().to_string()
    }

    async fn status(&self, context: &str, username: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/authentication-status", self.base))
            .bearer_auth(&self.bearer)
            .json(&json!({"contextId": context, "username": username}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Start, poll until complete (as the waiting page does), status.
    pub(crate) async fn login(&self, id: &str, username: &str, password: &str) -> Value {
        let (status, started) = self.start(id, username, password).await;
        assert_eq!(status, 200, "{started}");
        assert_eq!(started["message"], "Received");
        let context = started["contextId"].as_str().unwrap();
        self.wait(context).await;
        let (status, answer) = self.status(context, username).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn wait(&self, context: &str) {
        for _ in 0..400 {
            if self.poll(context).await == "COMPLETE" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the context never completed");
    }
}

pub(crate) fn success(answer: &Value) -> bool {
    assert!(
        matches!(answer["status"].as_str(), Some("SUCCESS" | "FAIL")),
        "{answer}"
    );
    answer["status"] == "SUCCESS"
}

/// The run's created users: legacy id → SCIM id.
pub(crate) async fn crosswalk(
    server: &TestServer,
    token: &str,
    base: &str,
    run: &str,
) -> std::collections::HashMap<String, String> {
    let (status, page) = send(
        server,
        Method::GET,
        &format!("{base}/runs/{run}/records?state=created&limit=1000"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["source_id"].as_str().unwrap().to_string(),
                r["scim_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A project whose users a real run moved to `production` and a test run to `test`,
/// every user type but one silent. Returns the token, the API base and both
/// crosswalks.
async fn ready(
    server: &TestServer,
    production: &Peer,
    test: &Peer,
    vectors: &[Value],
) -> (
    String,
    String,
    String,
    std::collections::HashMap<String, String>,
    std::collections::HashMap<String, String>,
) {
    let (_owner, project, token) = owner_with_token(server, "owner").await;
    let base = format!("/api/v1/projects/{project}");
    let created = upload(server, &project, &token, "users.json", export(vectors)).await;
    settled(server, &token, created["id"].as_str().unwrap()).await;
    let user_types = json!({"user_types": [
        {"name": "Invited", "include": true, "password": "forced_reset", "conditions": [
            {"test": "email_domain", "value": "reset.example"}]},
        {"name": "Silent", "include": true, "password": "silent_migration"}]});
    let (status, view) = send(
        server,
        Method::PUT,
        &format!("{base}/user-types"),
        &token,
        Some(user_types),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    for (role, peer) in [("production", production), ("test", test)] {
        target(server, &token, &base, role, &peer.base_url, PEER_TOKEN).await;
    }
    let (status, saved) = send(
        server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": rules()})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    impact_computed_with(server, &token, &base, rules()).await;
    let users = vectors.len() + 2;
    let mut crosswalks = Vec::new();
    for (path, body) in [
        ("runs/real", json!({})),
        ("runs/test", json!({"size": users})),
    ] {
        let (status, started) = send(
            server,
            Method::POST,
            &format!("{base}/{path}"),
            &token,
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{started}");
        // A real run answers with its pre-flight checks beside it.
        let run = started["run"]["id"]
            .as_str()
            .or(started["id"].as_str())
            .unwrap()
            .to_string();
        let done = until(
            server,
            &token,
            &format!("{base}/runs/{run}"),
            &["failed", "succeeded"],
        )
        .await;
        assert_eq!(done["run"]["counts"]["created"], users, "{done}");
        crosswalks.push(crosswalk(server, &token, &base, &run).await);
    }
    let test_ids = crosswalks.pop().unwrap();
    let production_ids = crosswalks.pop().unwrap();
    (token, base, project, production_ids, test_ids)
}

async fn story(db: TestDb, production: &Peer, test: &Peer, two_instances: bool) {
    let server = TestServer::start(db).await;
    let vectors = vectors();
    assert!(vectors.len() >= 30, "{}", vectors.len());
    let (token, base, project, ids, test_ids) = ready(&server, production, test, &vectors).await;
    let service_base = server.url(&format!("/password-migration/{project}"));
    let client = Client::new();

    // Before it is switched on, the page says what is missing and the service refuses.
    let (status, view) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/service"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["client_id"], Value::Null);
    assert!(
        view["missing"]
            .to_string()
            .contains("switch the service on"),
        "{view}"
    );
    assert_eq!(view["silent_users"], vectors.len() + 1, "{view}");
    assert!(view["urls"]["start"].as_str().unwrap().ends_with(&format!(
        "/password-migration/{project}/start-authentication"
    )));
    let off = Service {
        base: service_base.clone(),
        client: client.clone(),
        bearer: "fpk_x".into(),
    };
    let (status, body) = off.start(&ids["legacy-0"], "v0@corp.example", "x").await;
    assert_eq!(status, 404, "{body}");

    // Settings are checked field by field.
    let (status, error) = send(&server, Method::PUT, &format!("{base}/passwords/service"), &token,
        Some(json!({"enabled": true, "context_ttl_secs": 5, "token_ttl_secs": 3600, "login_origin": null,
            "max_user_failures": 5, "max_caller_failures": 1000, "failure_window_secs": 900}))).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "context_ttl_secs");
    let settings = json!({"enabled": true, "context_ttl_secs": 60, "token_ttl_secs": 3600,
        "login_origin": "https://login.example.com", "max_user_failures": 5,
        "max_caller_failures": 1000, "failure_window_secs": 900});
    let (status, view) = send(
        &server,
        Method::PUT,
        &format!("{base}/passwords/service"),
        &token,
        Some(settings),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let client_id = view["client_id"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("fci_"));
    assert!(
        view["migrated_attribute"]
            .as_str()
            .unwrap()
            .ends_with(":is_migrated"),
        "{view}"
    );

    // Credentials are shown once and kept hashed; the page shows a hint only.
    let (status, issued) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/service/secret"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["secret"].as_str().unwrap().to_string();
    let (status, issued) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/service/key"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let key = issued["secret"].as_str().unwrap().to_string();
    let (_, view) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/service"),
        &token,
        None,
    )
    .await;
    assert!(!view.to_string().contains(&secret) && !view.to_string().contains(&key));
    assert!(
        view["client_secret"]["hint"]
            .as_str()
            .unwrap()
            .starts_with("fcs_")
    );

    // The token endpoint: OAuth2 client credentials, by HTTP Basic or the form.
    let token_url = format!("{service_base}/token");
    let grant = |id: &str, secret: &str| {
        client
            .post(&token_url)
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
    };
    let r = grant(&client_id, "fcs_wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = client
        .post(&token_url)
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = client
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let form_token: Value = r.json().await.unwrap();
    assert_eq!(form_token["token_type"], "Bearer");
    let r = grant(&client_id, &secret).send().await.unwrap();
    let access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(access.starts_with("fat."));

    let script_side = Service {
        base: service_base.clone(),
        client: client.clone(),
        bearer: access.clone(),
    };
    let with_key = Service {
        base: service_base.clone(),
        client: client.clone(),
        bearer: key.clone(),
    };

    // Wrong or missing credentials: 401, whatever the body.
    for bearer in [
        "",
        "fat.e30.AAAA",
        "fpk_guess",
        "ferry_api_token",
        &form_token["access_token"].as_str().unwrap()[..20],
    ] {
        let other = Service {
            base: service_base.clone(),
            client: client.clone(),
            bearer: bearer.into(),
        };
        let (status, body) = other.start(&ids["legacy-0"], "v0@corp.example", "x").await;
        assert_eq!(status, 401, "{bearer}: {body}");
        assert_eq!(body["message"], "Unauthorized");
    }

    // Malformed bodies: 400 naming what is wrong, never echoing a value.
    for (body, words) in [
        (
            json!({"id": "x", "username": "v0@corp.example"}),
            "lacks a field",
        ),
        (
            json!({"id": "", "username": "v0@corp.example", "password": "secret-value"}),
            "id must be",
        ),
        (
            json!({"id": "x", "username": "v0@corp.example", "password": "p".repeat(1025)}),
            "longer than 1024",
        ),
        (
            json!({"id": "x", "username": "", "password": "secret-value"}),
            "username must be",
        ),
    ] {
        let (status, answer) = script_side.raw_start(body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(words),
            "{answer}"
        );
        assert!(!answer.to_string().contains("secret-value"));
    }
    let r = client
        .post(format!("{service_base}/start-authentication"))
        .bearer_auth(&access)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Every scheme: a wrong password fails, the right one succeeds (alternating the
    // token and the static key), and then the user is never verified again.
    for (i, v) in vectors.iter().enumerate() {
        let (id, login) = (&ids[&format!("legacy-{i}")], format!("v{i}@corp.example"));
        let service = if i % 2 == 0 { &script_side } else { &with_key };
        let algorithm = v["algorithm"].as_str().unwrap();
        assert!(
            !success(&service.login(id, &login, WRONG).await),
            "{algorithm} took a wrong password"
        );
        let answer = service
            .login(id, &login, v["password"].as_str().unwrap())
            .await;
        assert!(success(&answer), "{algorithm}: {answer}");
        assert_eq!(answer["message"], "Authenticated");
        let again = service
            .login(id, &login, v["password"].as_str().unwrap())
            .await;
        assert!(!success(&again), "{algorithm} was verified twice");
    }

    // Failures all read the same: wrong password, unknown user, a login name that is
    // not the user's, a forced-reset user, a user without a hash, a moved user.
    let same = script_side
        .login(&ids["legacy-0"], "v0@corp.example", WRONG)
        .await;
    let reset = script_side
        .login(
            &ids["legacy-reset"],
            "invited@reset.example",
            vectors[0]["password"].as_str().unwrap(),
        )
        .await;
    let unknown = script_side
        .login(
            "00000000-0000-0000-0000-000000000000",
            "ghost@corp.example",
            "x",
        )
        .await;
    let nohash = script_side
        .login(&ids["legacy-nohash"], "nohash@corp.example", "x")
        .await;
    let i = vectors.len() - 1;
    let mismatch = script_side
        .login(
            &test_ids[&format!("legacy-{i}")],
            "v0@corp.example",
            vectors[i]["password"].as_str().unwrap(),
        )
        .await;
    for answer in [&reset, &unknown, &nohash, &mismatch] {
        assert_eq!(answer, &same);
    }
    assert_eq!(same["message"], "Invalid username or password");

    // A context is read once, by the user name it was started for.
    let (_, started) = script_side
        .start(&ids["legacy-nohash"], "nohash@corp.example", "x")
        .await;
    let context = started["contextId"].as_str().unwrap().to_string();
    script_side.wait(&context).await;
    let (status, answer) = script_side.status(&context, "someone@else.example").await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"status": "FAIL", "message": "Invalid request"})
    );
    let (status, answer) = script_side.status(&context, "nohash@corp.example").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer, json!({"message": "Invalid context id"}));
    let (status, _) = script_side
        .status("ctx_never-issued", "nohash@corp.example")
        .await;
    assert_eq!(status, 400);
    // Unknown contexts poll as complete (and nothing else).
    assert_eq!(script_side.poll("ctx_never-issued").await, "COMPLETE");

    // The lockout: five wrong passwords lock the user name; the right one then fails
    // without being checked, and says why.
    let (k, kv) = (vectors.len() - 2, &vectors[vectors.len() - 2]);
    let (id, login) = (&ids[&format!("legacy-{k}")], format!("v{k}@corp.example"));
    let _ = script_side.login(id, &login, WRONG).await; // fails: moved already
    let fresh = &test_ids[&format!("legacy-{k}")];
    for _ in 0..5 {
        assert!(!success(&script_side.login(fresh, &login, WRONG).await));
    }
    let locked = script_side
        .login(fresh, &login, kv["password"].as_str().unwrap())
        .await;
    assert_eq!(
        locked["message"], "Too many failed attempts; try again later",
        "{locked}"
    );

    // A user whose password was reset in the target after Ferry created it: the old
    // password never comes back over the new one.
    let r = vectors.len() - 4;
    let reset_id = &test_ids[&format!("legacy-{r}")];
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp_millis();
    let patched = client
        .patch(format!("{}/Users/{reset_id}", test.base_url))
        .bearer_auth(PEER_TOKEN)
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "urn:scim:wso2:schema:lastPasswordUpdateTime",
                "value": later.to_string()}],
        }))
        .send()
        .await
        .unwrap();
    assert!(
        patched.status().is_success(),
        "{}",
        patched.text().await.unwrap()
    );
    let answer = script_side
        .login(
            reset_id,
            &format!("v{r}@corp.example"),
            vectors[r]["password"].as_str().unwrap(),
        )
        .await;
    assert_eq!(
        answer, same,
        "a password changed in the target was verified"
    );

    // CORS on the polling endpoint: the login origin only.
    let poll = |origin: &str| {
        client
            .get(format!("{service_base}/authentication-status?contextId=x"))
            .header("origin", origin.to_string())
            .send()
    };
    let r = poll("https://login.example.com").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://login.example.com"
    );
    let r = poll("https://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Rotating the client secret revokes the tokens issued under the old one.
    let (status, rotated) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/service/secret"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 201);
    let rotated = rotated["secret"].as_str().unwrap().to_string();
    let (status, _) = script_side
        .start(&ids["legacy-0"], "v0@corp.example", "x")
        .await;
    assert_eq!(status, 401);
    let (status, _) = with_key
        .start(&ids["legacy-0"], "v0@corp.example", "x")
        .await;
    assert_eq!(status, 200);

    // The log names each verification's outcome and method, never a password.
    let (status, log) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/verifications?limit=200"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let text = log.to_string();
    for v in &vectors {
        assert!(!text.contains(v["password"].as_str().unwrap()));
    }
    assert!(!text.contains(WRONG));
    let reasons: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reason"].as_str().unwrap())
        .collect();
    for reason in [
        "password_changed",
        "success",
        "wrong_password",
        "already_migrated",
        "unknown_user",
        "username_mismatch",
        "not_silent",
        "no_credential",
        "locked_user",
    ] {
        assert!(
            reasons.contains(&reason),
            "{reason} missing from {reasons:?}"
        );
    }
    let methods: std::collections::BTreeSet<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["reason"] == "success")
        .filter_map(|i| i["method"].as_str())
        .collect();
    for v in &vectors {
        assert!(
            methods.contains(v["algorithm"].as_str().unwrap()),
            "{methods:?}"
        );
    }

    // Coverage: every silent user of production verified; the invited one waits.
    let (status, coverage) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/coverage"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{coverage}");
    let silent = coverage["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user_type"] == "Silent")
        .unwrap();
    assert_eq!(silent["created"], vectors.len() + 1, "{coverage}");
    assert_eq!(silent["verified"], vectors.len(), "{coverage}");
    assert_eq!(silent["waiting"], 1, "{coverage}");
    assert_eq!(
        coverage["by_day"].as_array().unwrap().len(),
        1,
        "{coverage}"
    );

    // The script names this project's URLs and client, and the secret by name.
    let (status, script) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/script"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let script = script["script"].as_str().unwrap();
    assert!(
        script.contains(&client_id)
            && script.contains(&format!("{service_base}/start-authentication"))
    );
    assert!(!script.contains(&secret));

    // The rehearsal on a test-run user: start, poll, status, PATCH, read back.
    let (status, candidates) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/rehearsal/candidates"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{candidates}");
    let first = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["source_id"] == "legacy-0")
        .unwrap();
    let scim_id = first["scim_id"].as_str().unwrap();
    let (status, wrong) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/rehearsal"),
        &token,
        Some(json!({"scim_id": scim_id, "username": "v0@corp.example", "password": WRONG})),
    )
    .await;
    assert_eq!(status, 200, "{wrong}");
    assert_eq!(wrong["passed"], false);
    let (status, rehearsal) = send(&server, Method::POST, &format!("{base}/passwords/rehearsal"), &token,
        Some(json!({"scim_id": scim_id, "username": "v0@corp.example", "password": vectors[0]["password"]}))).await;
    assert_eq!(status, 200, "{rehearsal}");
    assert_eq!(rehearsal["passed"], true, "{rehearsal}");
    let steps: Vec<&str> = rehearsal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["start", "poll", "status", "set_password", "read_back"]
    );
    let user = test.get(&format!("/Users/{scim_id}")).await;
    assert_eq!(
        user["urn:scim:wso2:schema"]["is_migrated"], "true",
        "{user}"
    );
    assert!(
        !rehearsal
            .to_string()
            .contains(vectors[0]["password"].as_str().unwrap())
    );

    // Invitation waves: the forced-reset user waits; a plan whose hours cover the
    // whole day starts a wave that sets forcePasswordReset and is_migrated on them.
    let (status, waves) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/waves"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{waves}");
    assert_eq!(waves["waiting"], 1, "{waves}");
    assert!(
        waves["reset_attribute"]
            .as_str()
            .unwrap()
            .ends_with(":forcePasswordReset"),
        "{waves}"
    );
    let plan = |from: &str, until: &str| {
        json!({"enabled": true, "wave_size": 100, "per_minute": 600,
        "daily_cap": 1000, "from": from, "until": until, "zone": "UTC", "long_tail_days": null})
    };
    let (status, error) = send(
        &server,
        Method::PUT,
        &format!("{base}/passwords/waves/plan"),
        &token,
        Some(plan("17:00", "09:00")),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "until");
    let (status, waves) = send(
        &server,
        Method::PUT,
        &format!("{base}/passwords/waves/plan"),
        &token,
        Some(plan("00:00", "23:59")),
    )
    .await;
    assert_eq!(status, 200, "{waves}");
    assert_eq!(waves["calendar"][0]["users"], 1, "{waves}");
    // The server's planner may have started it already; either way one wave runs.
    server.state.ferry.plan_waves().await.unwrap();
    let (_, waves) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/waves"),
        &token,
        None,
    )
    .await;
    let wave = waves["waves"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no wave: {waves}"))
        .to_string();
    let done = until(
        &server,
        &token,
        &format!("{base}/runs/{wave}"),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(done["run"]["kind"], "invite_wave", "{done}");
    assert_eq!(done["run"]["counts"]["updated"], 1, "{done}");
    let invited = production
        .get(&format!("/Users/{}", ids["legacy-reset"]))
        .await;
    assert_eq!(
        invited["urn:scim:wso2:schema"]["forcePasswordReset"], true,
        "{invited}"
    );
    assert_eq!(
        invited["urn:scim:wso2:schema"]["is_migrated"], "true",
        "{invited}"
    );
    let (_, coverage) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/coverage"),
        &token,
        None,
    )
    .await;
    let invited_type = coverage["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["user_type"] == "Invited")
        .unwrap();
    assert_eq!(invited_type["reset"], 1, "{coverage}");
    assert_eq!(invited_type["waiting"], 0, "{coverage}");
    // The wave changed users; it created none: the users still add up.
    let created: u64 = coverage["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["created"].as_u64().unwrap())
        .sum();
    assert_eq!(created as usize, vectors.len() + 2, "{coverage}");
    let (_, records) = send(
        &server,
        Method::GET,
        &format!("{base}/runs/{wave}/records"),
        &token,
        None,
    )
    .await;
    assert_eq!(records["records"][0]["state"], "updated", "{records}");
    // Nobody waits now: a wave by hand is refused, and no second wave starts.
    let (status, refused) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/waves"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(server.state.ferry.plan_waves().await.unwrap().is_empty());

    // The audit log names what was configured, never a secret.
    let (_, audit) = send(
        &server,
        Method::GET,
        &format!("/api/v1/audit?project={project}&limit=200"),
        &token,
        None,
    )
    .await;
    let text = audit.to_string();
    for action in [
        "\"PasswordServiceSaved\"",
        "\"PasswordServiceSecretRotated\"",
        "\"PasswordServiceKeySet\"",
        "\"PasswordRehearsed\"",
        "\"WavePlanSaved\"",
    ] {
        assert!(text.contains(action), "{action}");
    }
    assert!(!text.contains(&secret) && !text.contains(&key));
    if !two_instances {
        server.stop().await;
        return;
    }

    // Two instances on one database and key: a login started on one is polled and
    // answered by the other, and a token one issued works on the other.
    let (db, data) = server.stop_keeping_data().await;
    let one = Process::start(&db, data.path(), "one").await;
    let two = Process::start(&db, data.path(), "two").await;
    let on = |process: &Process, bearer: &str| Service {
        base: format!("{}/password-migration/{project}", process.base),
        client: client.clone(),
        bearer: bearer.into(),
    };
    let r = client
        .post(format!("{}/password-migration/{project}/token", one.base))
        .basic_auth(&client_id, Some(&rotated))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let issued_by_one = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (first, second) = (on(&one, &issued_by_one), on(&two, &issued_by_one));
    let k = vectors.len() - 3;
    let (id, login) = (
        &test_ids[&format!("legacy-{k}")],
        format!("v{k}@corp.example"),
    );
    let (status, started) = first
        .start(id, &login, vectors[k]["password"].as_str().unwrap())
        .await;
    assert_eq!(status, 200, "{started}");
    let context = started["contextId"].as_str().unwrap();
    second.wait(context).await;
    let (status, answer) = second.status(context, &login).await;
    assert_eq!(status, 200, "{answer}");
    assert!(success(&answer), "{answer}");
    let (status, _) = first.status(context, &login).await;
    assert_eq!(status, 400, "read twice, on another instance");
}

#[tokio::test]
async fn the_verification_service_on_sqlite() {
    let (Some(production), Some(test)) = (Peer::start().await, Peer::start().await) else {
        return;
    };
    story(sqlite_db(), &production, &test, false).await;
}

#[tokio::test]
async fn the_verification_service_on_postgres() {
    let (Some(db), Some(production), Some(test)) = (
        postgres_db().await,
        Peer::start().await,
        Peer::start().await,
    ) else {
        return;
    };
    story(db, &production, &test, true).await;
}

/// Contexts expire: after their time a poll says complete, the status says the context
/// is invalid, and housekeeping removes them; a verification still running when the
/// script reads the status answers that it had not finished; a caller with too many
/// failures is locked out.
async fn contexts_expire(db: TestDb) {
    use domain::{
        password_service::{SecretKind, ServiceSettings, StartRequest, StatusRequest},
        projects::ProjectDraft,
        service::ServiceCall,
    };
    let store = common::store(&db).await;
    let clock = common::TestClock::new();
    let ferry = common::service(store.clone(), clock.clone());
    let owner = common::first_owner(&ferry).await;
    let project = ferry
        .create_project(&owner, ProjectDraft::new("Expiry", "csv", "").unwrap())
        .await
        .unwrap()
        .id;
    let settings = ServiceSettings {
        enabled: true,
        ..Default::default()
    };
    ferry
        .save_password_service(&owner, project, settings, "https://ferry.example")
        .await
        .unwrap();
    let key = ferry
        .issue_service_secret(&owner, project, SecretKind::StaticKey)
        .await
        .unwrap()
        .secret;
    let call = || ServiceCall {
        project,
        bearer: Some(&key),
        caller: "10.0.0.9".into(),
    };
    let start = || StartRequest {
        id: "nobody".into(),
        username: "ann@corp.example".into(),
        password: domain::password_service::Secret::new("pw".into()),
    };
    let status = |context: &str| StatusRequest {
        context_id: context.into(),
        username: "ann@corp.example".into(),
    };

    // Read before its verification ended: "not finished", and gone. Another instance
    // sharing the key (nothing of the context written yet) also sees it pending; an id
    // it did not sign, or another project's, is complete (nothing to wait for).
    let other = common::service(store.clone(), clock.clone());
    let pending = ferry.start_authentication(call(), start()).await.unwrap();
    let early = pending.context_id.clone();
    assert!(
        !ferry
            .authentication_complete(project, &early)
            .await
            .unwrap()
    );
    assert!(
        !other
            .authentication_complete(project, &early)
            .await
            .unwrap()
    );
    let mut forged = early.clone();
    forged.pop();
    forged.push(if early.ends_with('A') { 'B' } else { 'A' });
    assert!(
        other
            .authentication_complete(project, &forged)
            .await
            .unwrap()
    );
    let elsewhere = domain::ids::ProjectId(uuid::Uuid::now_v7());
    assert!(
        other
            .authentication_complete(elsewhere, &early)
            .await
            .unwrap()
    );
    let answer = ferry
        .authentication_status(call(), status(&early))
        .await
        .unwrap();
    assert_eq!(answer.status, "FAIL");
    assert_eq!(answer.message, "The check had not finished");
    let (reason, errors) = ferry.verify_pending(pending).await;
    assert_eq!(reason, domain::password_service::Reason::UnknownUser);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        other
            .authentication_status(call(), status(&early))
            .await
            .is_err()
    );
    // Its verification is recorded all the same.
    let recorded = store
        .verifications(
            project,
            domain::pagination::PageRequest::new(None, Some(10)),
        )
        .await
        .unwrap();
    assert_eq!(recorded.total, 1);

    // Finished, read by another instance: complete, and answered there once.
    let pending = ferry.start_authentication(call(), start()).await.unwrap();
    let context = pending.context_id.clone();
    let _ = ferry.verify_pending(pending).await;
    assert!(
        other
            .authentication_complete(project, &context)
            .await
            .unwrap()
    );
    let answer = other
        .authentication_status(call(), status(&context))
        .await
        .unwrap();
    assert_eq!(answer.status, "FAIL");
    assert!(
        ferry
            .authentication_status(call(), status(&context))
            .await
            .is_err(),
        "read twice"
    );

    // Past its 60 s: complete to the poll, invalid to the status, purged.
    let pending = ferry.start_authentication(call(), start()).await.unwrap();
    let late = pending.context_id.clone();
    let (reason, errors) = ferry.verify_pending(pending).await;
    assert_eq!(reason, domain::password_service::Reason::UnknownUser);
    assert!(errors.is_empty(), "{errors:?}");
    clock.advance(chrono::Duration::seconds(61));
    assert!(ferry.authentication_complete(project, &late).await.unwrap());
    let refused = ferry
        .authentication_status(call(), status(&late))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.status, refused.message),
        (400, "Invalid context id")
    );
    let pending = ferry.start_authentication(call(), start()).await.unwrap();
    let digest =
        domain::ports::Secrets::hash_token(&server::security::OsSecrets, &pending.context_id);
    let _ = ferry.verify_pending(pending).await;
    clock.advance(chrono::Duration::seconds(61));
    assert!(ferry.housekeeping().await.unwrap() >= 1);
    let later = clock_now(&clock) - chrono::Duration::seconds(120);
    assert_eq!(
        store
            .discard_password_context(project, &digest, later, None)
            .await
            .unwrap(),
        domain::password_service::Discarded::Gone,
        "housekeeping left an expired context"
    );

    // The caller's lockout: failures for any user names from one address add up; past
    // the limit its logins are answered without being checked.
    let settings = ServiceSettings {
        enabled: true,
        max_caller_failures: 3,
        ..Default::default()
    };
    ferry
        .save_password_service(&owner, project, settings, "https://ferry.example")
        .await
        .unwrap();
    // A caller of its own: the failures above came from `call()`'s address.
    let call = || ServiceCall {
        caller: "10.0.0.11".into(),
        ..call()
    };
    let login = |name: &str| StartRequest {
        id: "nobody".into(),
        username: format!("{name}@corp.example"),
        password: domain::password_service::Secret::new("pw".into()),
    };
    for name in ["ann", "bea", "cy"] {
        let pending = ferry
            .start_authentication(call(), login(name))
            .await
            .unwrap();
        let (reason, _) = ferry.verify_pending(pending).await;
        assert_eq!(reason, domain::password_service::Reason::UnknownUser);
    }
    let pending = ferry
        .start_authentication(call(), login("dee"))
        .await
        .unwrap();
    let (reason, _) = ferry.verify_pending(pending).await;
    assert_eq!(reason, domain::password_service::Reason::LockedCaller);
    // Another caller is not locked.
    let elsewhere = ServiceCall {
        caller: "10.0.0.10".into(),
        ..call()
    };
    let pending = ferry
        .start_authentication(elsewhere, login("cy"))
        .await
        .unwrap();
    let (reason, _) = ferry.verify_pending(pending).await;
    assert_eq!(reason, domain::password_service::Reason::UnknownUser);

    // Logins that end together are written together (one statement for the contexts
    // that end at once, one for the status calls asked at once), and each context is
    // still answered once, and only under its own user name: 24 logins (each from its
    // own address, so no lockout) verified at once, then each context's status asked
    // twice at once under its user name, then 24 more asked at once under their own
    // name and under another's.
    let answered = domain::password_service::Reason::UnknownUser.message();
    let many = |round: usize| {
        (0..24).map(move |i| {
            (
                ServiceCall {
                    caller: format!("10.{round}.0.{i}"),
                    ..call()
                },
                format!("r{round}u{i}"),
            )
        })
    };
    for round in [1, 2] {
        let (mut started, mut pendings) = (Vec::new(), Vec::new());
        for (call, name) in many(round) {
            let pending = ferry
                .start_authentication(call, login(&name))
                .await
                .unwrap();
            started.push((pending.context_id.clone(), name));
            pendings.push(pending);
        }
        let checks = pendings.into_iter().map(|p| ferry.verify_pending(p));
        for (reason, errors) in futures_util::future::join_all(checks).await {
            assert_eq!(reason, domain::password_service::Reason::UnknownUser);
            assert!(errors.is_empty(), "{errors:?}");
        }
        let asked = started.iter().enumerate().flat_map(|(i, (context, name))| {
            // Round 1: the same name twice; round 2: its own name and another's.
            let second = if round == 1 {
                name.clone()
            } else {
                started[(i + 1) % started.len()].1.clone()
            };
            [name.clone(), second].map(|username| {
                ferry.authentication_status(
                    call(),
                    StatusRequest {
                        context_id: context.clone(),
                        username: format!("{username}@corp.example"),
                    },
                )
            })
        });
        let answers = futures_util::future::join_all(asked).await;
        for (i, pair) in answers.chunks(2).enumerate() {
            let got = |n: usize| pair[n].as_ref().is_ok_and(|a| a.message == answered);
            assert!(
                !(got(0) && got(1)),
                "context {i} of round {round} read twice"
            );
            if round == 1 {
                assert!(got(0) || got(1), "context {i} of round 1 never answered");
            } else {
                assert!(!got(1), "context {i} answered under another user name");
            }
        }
    }
}

fn clock_now(clock: &common::TestClock) -> chrono::DateTime<chrono::Utc> {
    use domain::ports::Clock;
    clock.now()
}

#[tokio::test]
async fn contexts_expire_on_sqlite() {
    contexts_expire(sqlite_db()).await;
}

#[tokio::test]
async fn contexts_expire_on_postgres() {
    if let Some(db) = postgres_db().await {
        contexts_expire(db).await;
    }
}
