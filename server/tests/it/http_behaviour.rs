//! The HTTP surface as a browser or an API client meets it: setup on a fresh instance,
//! sessions, CSRF, security headers, throttling, limits and API errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::TestServer;
use reqwest::{StatusCode, header};

const OWNER: (&str, &str) = ("olive@example.com", "owner passphrase one");

#[tokio::test]
async fn a_fresh_instance_leads_everyone_to_setup_and_wants_the_token() {
    let server = TestServer::start(common::sqlite_db()).await;
    let browser = server.browser();
    for path in ["/", "/login", "/members"] {
        let response = browser.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()[header::LOCATION], "/setup");
    }
    let health: serde_json::Value = browser
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["setup_required"], true);
    server.state.ferry.issue_setup_token().await.unwrap();
    let response = server
        .call(
            &browser,
            "auth/setup",
            &[
                ("setup_token", "guessed"),
                ("display_name", "Mallory"),
                ("email", "mallory@example.com"),
                ("password", "mallory passphrase"),
                ("confirm_password", "mallory passphrase"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["Domain"]["Invalid"]["field"], "setup_token");
    let owner = server.setup_owner(OWNER.0, OWNER.1).await;
    assert_eq!(
        owner.get(server.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let setup_again = owner.get(server.url("/setup")).send().await.unwrap();
    assert_eq!(setup_again.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cross_site_state_changes_are_refused_even_with_a_session() {
    let server = TestServer::start(common::sqlite_db()).await;
    let owner = server.setup_owner(OWNER.0, OWNER.1).await;
    let form = [
        ("name", "Forged"),
        ("source_kind", "okta"),
        ("description", ""),
    ];
    let forged = owner
        .post(server.url("/sfn/projects/create"))
        .header("Origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The Host header is the sender's to choose: an origin matching it proves nothing.
    let forged_host = owner
        .post(server.url("/sfn/projects/create"))
        .header("Origin", "http://evil.example")
        .header("Host", "evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged_host.status(), StatusCode::FORBIDDEN);
    let no_origin = owner
        .post(server.url("/sfn/projects/create"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);
    let same_site = owner
        .post(server.url("/sfn/projects/create"))
        .header("Sec-Fetch-Site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), StatusCode::OK);
    let projects: serde_json::Value = server
        .call(&owner, "projects/list", &[("include_archived", "true")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        projects["total"], 1,
        "only the same-origin request created a project"
    );
}

#[tokio::test]
async fn pages_carry_a_nonce_csp_and_the_other_security_headers() {
    let server = TestServer::start(common::sqlite_db()).await;
    server.setup_owner(OWNER.0, OWNER.1).await;
    let response = server
        .browser()
        .get(server.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let csp = headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the bootstrap script carries the nonce"
    );
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let api = server
        .browser()
        .get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        api.headers()[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("ferry_session="))
        .expect("a session cookie is set")
}

#[tokio::test]
async fn sessions_are_http_only_cookies_that_survive_a_restart_and_end_at_sign_out() {
    let server = TestServer::start(common::sqlite_db()).await;
    server.setup_owner(OWNER.0, OWNER.1).await;
    let browser = server.browser();
    let response = server
        .call(
            &browser,
            "auth/sign_in",
            &[("email", OWNER.0), ("password", OWNER.1)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(&response);
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();

    let db = server.stop().await;
    let restarted = TestServer::start(db).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = plain
        .get(restarted.url("/"))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the session outlived the restart"
    );

    let sign_out = plain
        .post(restarted.url("/sfn/auth/sign_out"))
        .header(header::COOKIE, &pair)
        .header("Origin", &restarted.base)
        .send()
        .await
        .unwrap();
    assert_eq!(sign_out.status(), StatusCode::OK);
    assert!(session_cookie(&sign_out).contains("Max-Age=0"));
    let after = plain
        .get(restarted.url("/"))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()[header::LOCATION], "/login");
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled() {
    let server = TestServer::start(common::sqlite_db()).await;
    server.setup_owner(OWNER.0, OWNER.1).await;
    let browser = server.browser();
    for _ in 0..5 {
        let response = server
            .call(
                &browser,
                "auth/sign_in",
                &[("email", OWNER.0), ("password", "not the password")],
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = server
        .call(
            &browser,
            "auth/sign_in",
            &[("email", OWNER.0), ("password", OWNER.1)],
        )
        .await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = locked.text().await.unwrap();
    assert!(body.contains("Throttled"), "{body}");
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let server = TestServer::start(common::sqlite_db()).await;
    server.setup_owner(OWNER.0, OWNER.1).await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let response = server
        .call(
            &server.browser(),
            "auth/sign_in",
            &[("email", OWNER.0), ("password", &huge)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_api_explains_its_errors_and_documents_itself() {
    let server = TestServer::start(common::sqlite_db()).await;
    let owner = server.setup_owner(OWNER.0, OWNER.1).await;
    let token = server.token(&owner, "ci", "admin").await;
    let token = token.as_str();
    let api = reqwest::Client::new();

    let anonymous = api.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key(header::WWW_AUTHENTICATE));

    let me: serde_json::Value = server.api_get("/api/v1/me", token).await;
    assert_eq!(me["email"], OWNER.0);
    assert!(me.get("password_hash").is_none());

    let broken = api
        .post(server.url("/api/v1/projects"))
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = broken.json().await.unwrap();
    assert_eq!(error["error"]["field"], "body");

    let unnamed = api
        .post(server.url("/api/v1/projects"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "  ", "source_kind": "okta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unnamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error: serde_json::Value = unnamed.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid");
    assert_eq!(error["error"]["field"], "name");

    let created = api
        .post(server.url("/api/v1/projects"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "Acme staff", "source_kind": "keycloak"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let project: serde_json::Value = created.json().await.unwrap();
    let missing = api
        .get(server.url("/api/v1/projects/not-a-uuid"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let audit: serde_json::Value = api
        .get(server.url(&format!(
            "/api/v1/audit?project={}",
            project["id"].as_str().unwrap()
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "ProjectCreated");
    assert!(
        entry["channel"].as_str().unwrap().starts_with("api:"),
        "API actions say so"
    );

    let doc: serde_json::Value = api
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/me",
        "/api/v1/projects",
        "/api/v1/projects/{id}",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert!(doc["components"]["securitySchemes"]["api_token"].is_object());
}
