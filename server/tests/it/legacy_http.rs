//! Live password checks for users whose export carried no hash, over HTTP on SQLite
//! and PostgreSQL with users a real run created in the SCIM peer: the login script's
//! start → poll → status answered by asking a real OpenLDAP `slapd` (a bind to the DN
//! the LDIF export named, then to a template's), a stand-in OAuth2 password grant, a
//! stand-in Okta authn, and Cognito as the `moto` emulator serves it; right and wrong
//! passwords; a connection test that expects a made-up user refused; a provider that
//! cannot be reached answers "try again" and locks nobody; a locked user name is
//! refused before the provider is asked; a stored secret never follows a changed
//! address; no password or secret in the log, the audit or the connection's view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{
    self, TestDb,
    legacy::{Moto, OktaStandIn, PasswordGrantStandIn, Slapd},
    owner_with_token, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use crate::passwords_http::{Service, crosswalk, success};
use crate::runs_http::{impact_computed_with, send, target, until};
use reqwest::{Client, Method};
use serde_json::{Value, json};

const WRONG: &str = "not-the-password-9";

/// The users of the export, each with the password its legacy provider holds.
const USERS: [(&str, &str); 6] = [
    ("ada", "Analytical-Engine-1843"),
    ("grace", "Compiler-A0-1952"),
    ("linus", "Kernel-Freax-1991"),
    ("mfa-margaret", "Apollo-Guidance-69"),
    ("barbara", "Liskov-Substitution-87"),
    ("edsger", "Goto-Considered-68"),
];

fn password(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

/// An LDIF export as a directory's administrator makes it without the right to read
/// `userPassword`: entries with DNs, no hashes.
fn export() -> Vec<u8> {
    let mut ldif = String::from("version: 1\n\n");
    for (uid, _) in USERS {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.org\n\n"
        ));
    }
    ldif.into_bytes()
}

/// Two of them in the directory with their passwords: one as OpenLDAP's `slappasswd`
/// stored it (`{SSHA}`), the other in clear; the directory checks both.
fn directory() -> String {
    let entry = |uid: &str, stored: &str| {
        format!(
            "dn: uid={uid},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {stored}\n\n"
        )
    };
    entry("ada", password("ada")) + &entry("grace", "{SSHA}BVjSb42tpRP8qRrI2DXkflYaRpl9U2zv")
}

/// The Passwords step of the project's checklist.
async fn passwords_step(server: &common::TestServer, token: &str, base: &str) -> Value {
    let (_, journey) = send(server, Method::GET, &format!("{base}/journey"), token, None).await;
    journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "passwords")
        .cloned()
        .unwrap()
}

async fn story(db: TestDb) {
    let (Some(slapd), Some(moto), Some(peer)) = (
        Slapd::start(&directory()).await,
        Moto::start().await,
        Peer::start().await,
    ) else {
        return;
    };
    let keycloak = PasswordGrantStandIn::start(
        &[("linus", password("linus"))],
        "ferry",
        Some("kc-client-secret"),
    )
    .await;
    let elsewhere = PasswordGrantStandIn::start(&[], "ferry", None).await;
    let okta = OktaStandIn::start(&[("mfa-margaret", password("mfa-margaret"))]).await;
    let cognito = moto.pool(true, &[("barbara", password("barbara"))]).await;

    let server = common::TestServer::start(db).await;
    let (_owner, project, token) = owner_with_token(&server, "owner").await;
    let base = format!("/api/v1/projects/{project}");
    let created = upload(&server, &project, &token, "people.ldif", export()).await;
    settled(&server, &token, created["id"].as_str().unwrap()).await;
    let (status, view) = send(&server, Method::PUT, &format!("{base}/user-types"), &token,
        Some(json!({"user_types": [{"name": "Everyone", "include": true, "password": "silent_migration"}]}))).await;
    assert_eq!(status, 200, "{view}");
    target(
        &server,
        &token,
        &base,
        "production",
        &peer.base_url,
        PEER_TOKEN,
    )
    .await;
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
    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let run = started["run"]["id"].as_str().unwrap().to_string();
    let done = until(
        &server,
        &token,
        &format!("{base}/runs/{run}"),
        &["failed", "succeeded"],
    )
    .await;
    assert_eq!(done["run"]["counts"]["created"], USERS.len(), "{done}");
    let ids = crosswalk(&server, &token, &base, &run).await;
    let id = |uid: &str| ids[&format!("uid={uid},ou=people,dc=example,dc=org")].clone();

    // The service, with a static key for the script.
    let (status, view) = send(
        &server,
        Method::PUT,
        &format!("{base}/passwords/service"),
        &token,
        Some(
            json!({"enabled": true, "context_ttl_secs": 60, "token_ttl_secs": 3600,
            "login_origin": "https://login.example.com", "max_user_failures": 3,
            "max_caller_failures": 1000, "failure_window_secs": 900}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let (status, issued) = send(
        &server,
        Method::POST,
        &format!("{base}/passwords/service/key"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let script = Service {
        base: server.url(&format!("/password-migration/{project}")),
        client: Client::new(),
        bearer: issued["secret"].as_str().unwrap().to_string(),
    };
    let legacy = format!("{base}/passwords/legacy");
    let test_path = format!("{legacy}/test");
    let put = |body: Value| send(&server, Method::PUT, &legacy, &token, Some(body));
    let test_connection = || send(&server, Method::POST, &test_path, &token, None);

    // Without a connection, a user without a hash cannot be verified.
    let (status, none) = send(&server, Method::GET, &legacy, &token, None).await;
    assert_eq!(status, 404, "{none}");
    assert!(!success(
        &script.login(&id("ada"), "ada", password("ada")).await
    ));

    // Fields are checked one by one and named.
    for (settings, field) in [
        (json!({"kind": "ldap", "url": "http://127.0.0.1:1"}), "url"),
        (
            json!({"kind": "ldap", "url": slapd.url, "dn_template": "ou=people"}),
            "dn_template",
        ),
        (
            json!({"kind": "cognito", "region": "nowhere", "client_id": "x"}),
            "region",
        ),
        (
            json!({"kind": "okta", "org_url": "https://x.okta.com/api/v1/authn"}),
            "org_url",
        ),
    ] {
        let (status, error) = put(json!({"settings": settings})).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (status, error) =
        put(json!({"settings": {"kind": "ldap", "url": slapd.url}, "secret": "x"})).await;
    assert_eq!(
        (status.as_u16(), error["error"]["field"].as_str()),
        (422, Some("secret")),
        "{error}"
    );

    // LDAP: a simple bind to the DN the export gave the user.
    let (status, view) = put(json!({"settings": {"kind": "ldap", "url": slapd.url}})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["method"], "LDAP bind");
    let (status, tested) = test_connection().await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["last_test"]["ok"], true, "{tested}");
    assert!(!success(&script.login(&id("ada"), "ada", WRONG).await));
    let answer = script.login(&id("ada"), "ada", password("ada")).await;
    assert!(success(&answer), "{answer}");
    // Moved: never asked again.
    assert!(!success(
        &script.login(&id("ada"), "ada", password("ada")).await
    ));
    // Or to a template's DN, the login escaped.
    let (status, view) = put(json!({"settings": {"kind": "ldap", "url": slapd.url,
        "dn_template": "uid={login},ou=people,dc=example,dc=org"}}))
    .await;
    assert_eq!(status, 200, "{view}");
    assert!(success(
        &script
            .login(&id("grace"), "GRACE@example.org", password("grace"))
            .await
    ));

    // OAuth2's password grant (a Keycloak-like stand-in) with the client's secret.
    let keycloak_settings = json!({"kind": "oauth2_password", "token_url": keycloak.token_url,
        "client_id": "ferry", "scope": "openid"});
    let (status, view) =
        put(json!({"settings": keycloak_settings, "secret": "kc-client-secret"})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["has_secret"], true);
    assert!(!view.to_string().contains("kc-client-secret"));
    let (_, tested) = test_connection().await;
    assert_eq!(tested["last_test"]["ok"], true, "{tested}");
    assert!(!success(&script.login(&id("linus"), "linus", WRONG).await));
    assert!(success(
        &script.login(&id("linus"), "linus", password("linus")).await
    ));
    // Saved again unchanged, the secret stays; sent elsewhere, it does not follow.
    let (status, view) = put(json!({"settings": keycloak_settings})).await;
    assert_eq!(
        (status.as_u16(), view["has_secret"].as_bool()),
        (200, Some(true)),
        "{view}"
    );
    let moved =
        json!({"kind": "oauth2_password", "token_url": elsewhere.token_url, "client_id": "ferry"});
    let (status, error) = put(json!({"settings": moved})).await;
    assert_eq!(
        (status.as_u16(), error["error"]["field"].as_str()),
        (422, Some("secret")),
        "{error}"
    );
    let (status, view) = put(json!({"settings": moved, "secret": ""})).await;
    assert_eq!(
        (status.as_u16(), view["has_secret"].as_bool()),
        (200, Some(false)),
        "{view}"
    );
    test_connection().await;
    assert!(!elsewhere.seen.all().is_empty());
    assert!(
        elsewhere
            .seen
            .all()
            .iter()
            .all(|f| !f.contains_key("client_secret"))
    );
    assert!(
        keycloak
            .seen
            .all()
            .iter()
            .all(|f| f.get("client_secret").map(String::as_str) == Some("kc-client-secret"))
    );

    // Okta's authn (a stand-in): a password accepted before a second factor is right.
    let (status, view) = put(json!({"settings": {"kind": "okta", "org_url": okta.org_url}})).await;
    assert_eq!(status, 200, "{view}");
    let (_, tested) = test_connection().await;
    assert_eq!(tested["last_test"]["ok"], true, "{tested}");
    assert!(!success(
        &script
            .login(&id("mfa-margaret"), "mfa-margaret", WRONG)
            .await
    ));
    assert!(success(
        &script
            .login(
                &id("mfa-margaret"),
                "mfa-margaret",
                password("mfa-margaret")
            )
            .await
    ));

    // Cognito (the moto emulator): USER_PASSWORD_AUTH with the client's secret hash.
    let (status, view) = put(
        json!({"settings": {"kind": "cognito", "region": "eu-west-1",
        "client_id": cognito.client_id, "endpoint": moto.endpoint},
        "secret": cognito.secret.clone().unwrap()}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let (_, tested) = test_connection().await;
    assert_eq!(tested["last_test"]["ok"], true, "{tested}");
    assert!(!success(
        &script.login(&id("barbara"), "barbara", WRONG).await
    ));
    assert!(success(
        &script
            .login(&id("barbara"), "barbara", password("barbara"))
            .await
    ));
    // A client id the pool does not have fails the test, and says why.
    let (status, _) = put(
        json!({"settings": {"kind": "cognito", "region": "eu-west-1",
        "client_id": "no-such-client", "endpoint": moto.endpoint}, "secret": ""}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, tested) = test_connection().await;
    assert_eq!(tested["last_test"]["ok"], false, "{tested}");
    assert!(
        tested["last_test"]["message"]
            .as_str()
            .unwrap()
            .contains("ResourceNotFoundException"),
        "{tested}"
    );

    // A provider that cannot be reached: "try again", and nobody is locked for it.
    let (status, _) = put(json!({"settings": {"kind": "ldap", "url": "ldap://127.0.0.1:9"}})).await;
    assert_eq!(status, 200);
    let (_, tested) = test_connection().await;
    assert_eq!(tested["last_test"]["ok"], false, "{tested}");
    assert!(
        tested["last_test"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{tested}"
    );
    for _ in 0..4 {
        let answer = script
            .login(&id("edsger"), "edsger", password("edsger"))
            .await;
        assert_eq!(
            answer["message"], "The password could not be checked now; try again",
            "{answer}"
        );
    }
    // Three wrong guesses lock the user name; the fourth is refused before the
    // provider is asked, even with the right password.
    let (status, _) = put(json!({"settings": {"kind": "okta", "org_url": okta.org_url}})).await;
    assert_eq!(status, 200);
    for _ in 0..3 {
        assert!(!success(
            &script.login(&id("edsger"), "edsger", WRONG).await
        ));
    }
    let asked = okta.seen.all().len();
    let answer = script
        .login(&id("edsger"), "edsger", password("edsger"))
        .await;
    assert_eq!(
        answer["message"], "Too many failed attempts; try again later",
        "{answer}"
    );
    assert_eq!(okta.seen.all().len(), asked);

    // The log says how each was checked, and no password or secret is anywhere.
    let (_, log) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/verifications?limit=200"),
        &token,
        None,
    )
    .await;
    let mut methods: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["reason"] == "success")
        .map(|i| i["method"].as_str().unwrap())
        .collect();
    methods.sort_unstable();
    assert_eq!(
        methods,
        [
            "Cognito USER_PASSWORD_AUTH",
            "LDAP bind",
            "LDAP bind",
            "OAuth2 password grant",
            "Okta authn"
        ]
    );
    let reasons = log.to_string();
    for reason in [
        "no_credential",
        "wrong_password",
        "legacy_unavailable",
        "locked_user",
        "already_migrated",
    ] {
        assert!(reasons.contains(reason), "{reason} missing: {log}");
    }
    let (_, audit) = send(
        &server,
        Method::GET,
        &format!("/api/v1/audit?project={project}&limit=200"),
        &token,
        None,
    )
    .await;
    let (_, view) = send(&server, Method::GET, &legacy, &token, None).await;
    for text in [log.to_string(), audit.to_string(), view.to_string()] {
        for (_, password) in USERS {
            assert!(!text.contains(password));
        }
        assert!(!text.contains(WRONG) && !text.contains("kc-client-secret"));
        assert!(!text.contains(cognito.secret.as_deref().unwrap()));
    }
    for action in ["\"LegacyConnectionSaved\"", "\"LegacyConnectionTested\""] {
        assert!(audit.to_string().contains(action), "{action} missing");
    }

    // The project's checklist counts the passwords that moved.
    let step = passwords_step(&server, &token, &base).await;
    assert_eq!(step["state"], "working", "{step}");
    assert_eq!(step["summary"], "5 of 6 passwords moved (83 %)", "{step}");

    // Removed: users without a hash cannot be verified again.
    let (status, _) = send(&server, Method::DELETE, &legacy, &token, None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&server, Method::GET, &legacy, &token, None).await;
    assert_eq!(status, 404);
    let answer = script
        .login(&id("edsger"), "edsger", password("edsger"))
        .await;
    assert_eq!(
        answer["message"],
        "Too many failed attempts; try again later"
    );

    // Rolled back, the users take their moved passwords with them; created again, each
    // is one user whose password has still to move (not twelve, not five moved).
    let (status, rollback) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/{run}/rollback"),
        &token,
        Some(json!({"confirm": USERS.len()})),
    )
    .await;
    assert_eq!(status, 201, "{rollback}");
    let rollback = rollback["id"]
        .as_str()
        .or(rollback["run"]["id"].as_str())
        .unwrap()
        .to_string();
    until(
        &server,
        &token,
        &format!("{base}/runs/{rollback}"),
        &["succeeded"],
    )
    .await;
    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let again = started["run"]["id"].as_str().unwrap().to_string();
    until(
        &server,
        &token,
        &format!("{base}/runs/{again}"),
        &["succeeded"],
    )
    .await;
    let (_, coverage) = send(
        &server,
        Method::GET,
        &format!("{base}/passwords/coverage"),
        &token,
        None,
    )
    .await;
    let sum = |field: &str| -> u64 {
        coverage["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t[field].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        (sum("created"), sum("verified"), sum("waiting")),
        (6, 0, 6),
        "{coverage}"
    );
    let step = passwords_step(&server, &token, &base).await;
    assert_eq!(step["summary"], "0 of 6 passwords moved (0 %)", "{step}");
    drop(cognito);
}

#[tokio::test]
async fn live_checks_against_legacy_providers_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test]
async fn live_checks_against_legacy_providers_on_postgres() {
    if let Some(db) = postgres_db().await {
        story(db).await;
    }
}
