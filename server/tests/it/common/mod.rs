//! Test harness: a fixed clock, fresh databases (a SQLite file, or a new database on
//! the PostgreSQL server the test command starts), and the real server on port 0.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod legacy;
pub mod scim;

use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::Parser;
use domain::{
    ports::{Clock, Store},
    service::{Ferry, Policy},
};
use server::{
    config::Config,
    security::{Argon2Hasher, OsSecrets},
    web::AppState,
};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;

/// A clock that moves only when told to.
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
        )))
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A database for one test, and whatever keeps it alive.
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ferry.db").display());
    TestDb {
        url,
        _dir: Some(dir),
    }
}

/// A new, empty database on the PostgreSQL server named by `FERRY_TEST_POSTGRES_URL`.
/// Without it the test is skipped, unless `FERRY_REQUIRE_POSTGRES=1` (the test command
/// sets both), in which case it fails.
pub async fn postgres_db() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var("FERRY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("FERRY_REQUIRE_POSTGRES").is_err(),
            "FERRY_REQUIRE_POSTGRES is set but FERRY_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: set FERRY_TEST_POSTGRES_URL to run the PostgreSQL store tests");
        return None;
    };
    let name = format!("ferry_test_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    Some(TestDb {
        url: format!("{base}/{name}"),
        _dir: None,
    })
}

pub async fn store(db: &TestDb) -> Arc<dyn Store> {
    server::store::connect(&db.url).await.unwrap()
}

/// Claims a fresh instance through the setup token and returns its owner, signed in.
pub async fn first_owner(ferry: &Ferry) -> domain::accounts::Actor {
    let here = domain::accounts::RequestOrigin {
        address: Some("10.0.0.1".into()),
    };
    let token = ferry.issue_setup_token().await.unwrap().unwrap();
    let session = ferry
        .complete_setup(
            &here,
            &token,
            "olive@example.com",
            "Olive",
            "owner passphrase one",
        )
        .await
        .unwrap();
    ferry
        .session_actor(&session.session_token, None)
        .await
        .unwrap()
        .unwrap()
}

/// The service over `store` with real workers (a fixed key; uploads are read by the
/// tests' own `Ingest`, so the workers' upload folder is never written).
pub fn service(store: Arc<dyn Store>, clock: Arc<TestClock>) -> Ferry {
    let workers = server::workers(
        &store,
        &server::vault::Vault::new(&[7u8; 32]),
        std::env::temp_dir(),
        Default::default(),
        &Default::default(),
    );
    Ferry::new(
        store,
        clock,
        Arc::new(OsSecrets),
        Arc::new(Argon2Hasher::new().unwrap()),
        Policy::default(),
        workers.ports(),
    )
}

/// The real router serving on 127.0.0.1 with a port the OS picks.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub db: TestDb,
    data: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    /// Starts with extra command-line flags.
    pub async fn start_with(db: TestDb, flags: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listen = addr.to_string();
        let mut args = vec![
            "ferry",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--database-url",
            &db.url,
            "--listen",
            &listen,
        ];
        args.extend_from_slice(flags);
        let config = Config::parse_from(args);
        let state = server::build_state(&config).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        let handle = tokio::spawn(async move {
            server::serve(serve_state, listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            state,
            db,
            data,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Stops serving and hands back the database, as after a shutdown.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
        self.db
    }

    /// Stops serving and hands back the database and the data folder (with the key
    /// the records are sealed under), for a `ferry` process to go on with.
    pub async fn stop_keeping_data(mut self) -> (TestDb, TempDir) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
        (self.db, self.data)
    }

    /// The data folder: the key, the uploads' sealed files.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with an API token, read as JSON.
    pub async fn api_get(&self, path: &str, token: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An API request with a token and an optional JSON body: the status and the body
    /// (as JSON, or as a JSON string when it is not JSON).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// A new API token's secret, created by `owner` with `role`.
    pub async fn token(&self, owner: &reqwest::Client, name: &str, role: &str) -> String {
        let issued: serde_json::Value = self
            .call(owner, "tokens/create", &[("name", name), ("role", role)])
            .await
            .json()
            .await
            .unwrap();
        issued["secret"].as_str().unwrap().to_string()
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Calls a server function the way the hydrated app does.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        client
            .post(self.url(&format!("/sfn/{endpoint}")))
            .header("Origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Creates the owner through the setup page's server function; returns its client.
    pub async fn setup_owner(&self, email: &str, password: &str) -> reqwest::Client {
        let token = self.state.ferry.issue_setup_token().await.unwrap().unwrap();
        let owner = self.browser();
        let response = self
            .call(
                &owner,
                "auth/setup",
                &[
                    ("setup_token", &token),
                    ("display_name", "Olive Owner"),
                    ("email", email),
                    ("password", password),
                    ("confirm_password", password),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        owner
    }

    /// Invites a member as the owner and signs them in through their link.
    pub async fn member(
        &self,
        owner: &reqwest::Client,
        email: &str,
        role: &str,
        password: &str,
    ) -> reqwest::Client {
        let response = self
            .call(
                owner,
                "members/invite",
                &[("email", email), ("display_name", email), ("role", role)],
            )
            .await;
        assert_eq!(response.status(), 200);
        let invite: serde_json::Value = response.json().await.unwrap();
        let link = invite["link"].as_str().unwrap();
        let token = link.rsplit('/').next().unwrap();
        let client = self.browser();
        let response = self
            .call(
                &client,
                "auth/accept_invite",
                &[
                    ("token", token),
                    ("password", password),
                    ("confirm_password", password),
                ],
            )
            .await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        client
    }
}

pub async fn owner_with_token(
    server: &TestServer,
    role: &str,
) -> (reqwest::Client, String, String) {
    let owner = server
        .setup_owner("olive@example.com", "owner passphrase one")
        .await;
    let project: serde_json::Value = server
        .call(
            &owner,
            "projects/create",
            &[
                ("name", "Imports"),
                ("source_kind", "csv"),
                ("description", ""),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let token = server.token(&owner, "ci", role).await;
    (owner, project["id"].as_str().unwrap().into(), token)
}

/// Sends `body` as an upload of `project` named `name`; the created upload.
pub async fn upload(
    server: &TestServer,
    project: &str,
    token: &str,
    name: &str,
    body: Vec<u8>,
) -> serde_json::Value {
    reqwest::Client::new()
        .post(server.url(&format!(
            "/api/v1/projects/{project}/uploads?file_name={name}"
        )))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits for the background read to settle (bounded: a stuck read fails the test).
pub async fn settled(server: &TestServer, token: &str, id: &str) -> serde_json::Value {
    for _ in 0..200 {
        let upload: serde_json::Value = server
            .api_get(&format!("/api/v1/uploads/{id}"), token)
            .await;
        if upload["status"] == "parsed" || upload["status"] == "failed" {
            return upload;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("upload {id} never finished reading");
}
