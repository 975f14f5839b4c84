//! Legacy identity providers for the live password checks: a real OpenLDAP `slapd`
//! (Debian's package, installed by the setup script) with its own database in a
//! temporary folder, the `moto` server (PyPI, a third-party emulator of Cognito,
//! installed in `tools/moto-venv`), and stand-ins named so for what cannot run here:
//! an OAuth2 token endpoint answering the password grant as Keycloak does, and Okta's
//! `/api/v1/authn`. Each is skipped when missing unless `FERRY_REQUIRE_LEGACY_PEERS=1`,
//! which the test command sets.

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    net::TcpListener,
    process::{Child, Command},
};

fn required(what: &str, path: &Path) -> bool {
    if path.exists() {
        return true;
    }
    assert!(
        std::env::var("FERRY_REQUIRE_LEGACY_PEERS").as_deref() != Ok("1"),
        "{what} is required but {} does not exist; run scripts/setup.sh --test",
        path.display()
    );
    eprintln!("skipped: {what} is not installed (scripts/setup.sh --test)");
    false
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn until_listening(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running `slapd` serving `dc=example,dc=org`, stopped when dropped (the child is
/// killed on drop).
pub struct Slapd {
    _child: Child,
    /// `ldap://127.0.0.1:PORT`
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts a directory holding `entries` (LDIF, below `dc=example,dc=org`; the base
    /// and `ou=people` are added), loaded with `slapadd` before it starts.
    pub async fn start(entries: &str) -> Option<Self> {
        let slapd = PathBuf::from("/usr/sbin/slapd");
        if !required("OpenLDAP's slapd", &slapd) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 pidfile {dir}/slapd.pid\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"dc=example,dc=org\"\n\
                 rootdn \"cn=admin,dc=example,dc=org\"\n\
                 rootpw admin-secret\n\
                 directory {db}\n",
                dir = dir.path().display(),
                db = db.display()
            ),
        )
        .unwrap();
        let data = dir.path().join("data.ldif");
        std::fs::write(
            &data,
            format!(
                "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\n\
                 o: Example\ndc: example\n\n\
                 dn: ou=people,dc=example,dc=org\nobjectClass: organizationalUnit\nou: people\n\n\
                 {entries}"
            ),
        )
        .unwrap();
        let loaded = std::process::Command::new("/usr/sbin/slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            loaded.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        let port = free_port().await;
        let url = format!("ldap://127.0.0.1:{port}");
        // `-d 0` keeps it in the foreground, so it is the child that is stopped.
        let child = Command::new(&slapd)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &format!("{url}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        until_listening(port, "slapd").await;
        Some(Self {
            _child: child,
            url,
            _dir: dir,
        })
    }
}

/// A running `moto` server (Cognito's API), stopped when dropped (likewise).
pub struct Moto {
    _child: Child,
    pub endpoint: String,
    http: reqwest::Client,
}

/// A Cognito user pool's app client, as `moto` made it.
pub struct CognitoClient {
    pub pool: String,
    pub client_id: String,
    pub secret: Option<String>,
}

impl Moto {
    pub async fn start() -> Option<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let executable = std::env::var_os("FERRY_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("tools/moto-venv/bin/moto_server"));
        if !required("the moto server", &executable) {
            return None;
        }
        let port = free_port().await;
        let child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        until_listening(port, "moto").await;
        Some(Self {
            _child: child,
            endpoint: format!("http://127.0.0.1:{port}/"),
            http: reqwest::Client::new(),
        })
    }

    /// One call of Cognito's administrative API (moto takes any credentials; the
    /// region is read from the signature's scope).
    async fn call(&self, action: &str, body: Value) -> Value {
        let r = self
            .http
            .post(&self.endpoint)
            .header("Content-Type", "application/x-amz-json-1.1")
            .header(
                "X-Amz-Target",
                format!("AWSCognitoIdentityProviderService.{action}"),
            )
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/cognito-idp/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{action}: {status} {body}");
        body
    }

    /// A user pool with an app client allowing `USER_PASSWORD_AUTH` (with a secret if
    /// asked), and users with permanent passwords.
    pub async fn pool(&self, with_secret: bool, users: &[(&str, &str)]) -> CognitoClient {
        let pool = self
            .call("CreateUserPool", json!({"PoolName": "ferry"}))
            .await["UserPool"]["Id"]
            .as_str()
            .unwrap()
            .to_string();
        let client = self
            .call(
                "CreateUserPoolClient",
                json!({"UserPoolId": pool, "ClientName": "ferry", "GenerateSecret": with_secret,
                    "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH"]}),
            )
            .await;
        for (name, password) in users {
            self.call(
                "AdminCreateUser",
                json!({"UserPoolId": pool, "Username": name, "MessageAction": "SUPPRESS"}),
            )
            .await;
            self.call(
                "AdminSetUserPassword",
                json!({"UserPoolId": pool, "Username": name, "Password": password, "Permanent": true}),
            )
            .await;
        }
        CognitoClient {
            pool,
            client_id: client["UserPoolClient"]["ClientId"]
                .as_str()
                .unwrap()
                .to_string(),
            secret: client["UserPoolClient"]["ClientSecret"]
                .as_str()
                .map(str::to_string),
        }
    }
}

/// What a stand-in saw: each request's form or body fields, never kept beyond the test.
#[derive(Clone, Default)]
pub struct Seen(Arc<Mutex<Vec<HashMap<String, String>>>>);

impl Seen {
    pub fn all(&self) -> Vec<HashMap<String, String>> {
        self.0.lock().unwrap().clone()
    }
    fn push(&self, fields: HashMap<String, String>) {
        self.0.lock().unwrap().push(fields);
    }
}

#[derive(Clone)]
struct StandIn {
    users: Arc<HashMap<String, String>>,
    client_id: String,
    client_secret: Option<String>,
    seen: Seen,
}

/// A stand-in (not the real product) for an OAuth2 token endpoint's password grant,
/// answering as Keycloak does: a token for the right password, 401 `invalid_grant`
/// for a wrong one, 401 `invalid_client` for a wrong client secret.
pub struct PasswordGrantStandIn {
    pub token_url: String,
    pub seen: Seen,
}

async fn token(
    State(s): State<StandIn>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    s.seen.push(form.clone());
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("password") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        );
    }
    if field("client_id") != Some(s.client_id.as_str())
        || field("client_secret") != s.client_secret.as_deref()
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    let right = field("username")
        .and_then(|u| s.users.get(u))
        .is_some_and(|p| Some(p.as_str()) == field("password"));
    if right {
        (
            StatusCode::OK,
            Json(json!({"access_token": "stand-in", "token_type": "Bearer", "expires_in": 300})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": "invalid_grant", "error_description": "Invalid user credentials"}),
            ),
        )
    }
}

/// A stand-in (not the real product) for Okta's `/api/v1/authn`: `SUCCESS` (or
/// `MFA_REQUIRED` for users with a factor) for the right password, 401 `E0000004` for
/// a wrong one.
pub struct OktaStandIn {
    pub org_url: String,
    pub seen: Seen,
}

async fn authn(
    State(s): State<StandIn>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    s.seen.push(HashMap::from([
        ("username".to_string(), text("username")),
        ("password".to_string(), text("password")),
        (
            "authorization".to_string(),
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
        ),
    ]));
    let user = text("username");
    let right = s.users.get(&user).is_some_and(|p| *p == text("password"));
    if !right {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errorCode": "E0000004", "errorSummary": "Authentication failed"})),
        );
    }
    let status = if user.starts_with("mfa-") {
        "MFA_REQUIRED"
    } else {
        "SUCCESS"
    };
    (
        StatusCode::OK,
        Json(json!({"status": status, "stateToken": "stand-in"})),
    )
}

async fn serve(router: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}")
}

impl PasswordGrantStandIn {
    pub async fn start(
        users: &[(&str, &str)],
        client_id: &str,
        client_secret: Option<&str>,
    ) -> Self {
        let seen = Seen::default();
        let state = StandIn {
            users: Arc::new(
                users
                    .iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
            ),
            client_id: client_id.into(),
            client_secret: client_secret.map(str::to_string),
            seen: seen.clone(),
        };
        let base = serve(
            Router::new()
                .route("/realms/legacy/protocol/openid-connect/token", post(token))
                .with_state(state),
        )
        .await;
        Self {
            token_url: format!("{base}/realms/legacy/protocol/openid-connect/token"),
            seen,
        }
    }
}

impl OktaStandIn {
    pub async fn start(users: &[(&str, &str)]) -> Self {
        let seen = Seen::default();
        let state = StandIn {
            users: Arc::new(
                users
                    .iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect(),
            ),
            client_id: String::new(),
            client_secret: None,
            seen: seen.clone(),
        };
        let org_url = serve(
            Router::new()
                .route("/api/v1/authn", post(authn))
                .with_state(state),
        )
        .await;
        Self { org_url, seen }
    }
}
