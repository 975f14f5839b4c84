//! The SCIM side of the test harness: the real peer (PyPI `scim2-server`, installed in
//! `tools/scim-venv` by the setup script) started on a free port with a WSO2-like
//! user extension, and a fault-injecting proxy between client and peer for what the
//! peer never does by itself (429 with `Retry-After`, 503, connection resets, answers
//! lost after the work was done, slow answers), optionally as a TLS front whose
//! certificate comes from a private CA made for the test.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
};

pub const PEER_TOKEN: &str = "peer-token-for-tests";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The peer's executable, or `None` when it is not installed (the test is then
/// skipped, unless `FERRY_REQUIRE_SCIM_PEER=1`, which the test command sets).
fn peer_executable() -> Option<PathBuf> {
    let path = std::env::var_os("FERRY_SCIM_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tools/scim-venv/bin/scim2-server"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("FERRY_REQUIRE_SCIM_PEER").as_deref() != Ok("1"),
        "the SCIM peer is required but {} does not exist; run scripts/setup.sh --test",
        path.display()
    );
    eprintln!("skipped: the SCIM peer is not installed (scripts/setup.sh --test)");
    None
}

/// A running `scim2-server`, stopped when dropped.
pub struct Peer {
    child: Child,
    /// `http://127.0.0.1:PORT/v2`
    pub base_url: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

impl Peer {
    /// Starts a peer with RFC 7643's schemas plus the WSO2-like extension on User.
    pub async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra_args: &[&str]) -> Option<Self> {
        let executable = peer_executable()?;
        let dir = tempfile::tempdir().unwrap();
        // The peer's own RFC 7643 schemas and resource types, with the extension added.
        let python = executable.with_file_name("python");
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                "import scim2_server, os; print(os.path.dirname(scim2_server.__file__))",
            ])
            .output()
            .unwrap();
        let package = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        let mut schemas = read(package.join("resources/default-schemas.json"));
        let extension = read(root().join("server/tests/fixtures/scim/wso2-extension.json"));
        schemas.as_array_mut().unwrap().push(extension);
        let mut types = read(package.join("resources/default-resource-types.json"));
        for t in types.as_array_mut().unwrap() {
            if t["name"] == "User" {
                t["schemaExtensions"]
                    .as_array_mut()
                    .unwrap()
                    .push(serde_json::json!({"schema": "urn:scim:wso2:schema", "required": false}));
            }
        }
        let schema_file = dir.path().join("schemas.json");
        let types_file = dir.path().join("resource-types.json");
        std::fs::write(&schema_file, schemas.to_string()).unwrap();
        std::fs::write(&types_file, types.to_string()).unwrap();

        let port = free_port().await;
        let mut command = Command::new(&executable);
        command
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", PEER_TOKEN])
            .arg("--schema")
            .arg(&schema_file)
            .arg("--resource-type")
            .arg(&types_file)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn().unwrap();
        let base_url = format!("http://127.0.0.1:{port}/v2");
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            let ready = http
                .get(format!("{base_url}/ServiceProviderConfig"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the SCIM peer did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(Self {
            child,
            base_url,
            port,
            _dir: dir,
        })
    }

    /// A plain request to the peer, for checking what it holds.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(PEER_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// How many users have `attribute eq value`.
    pub async fn count(&self, attribute: &str, value: &str) -> u64 {
        let filter = format!("{attribute} eq \"{value}\"");
        let doc: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/Users", self.base_url))
            .query(&[("filter", filter.as_str())])
            .bearer_auth(PEER_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        doc["totalResults"].as_u64().unwrap()
    }
}

/// Faults at random, for requests no queued fault matches: each request draws one.
#[derive(Clone, Debug)]
pub struct Chaos {
    /// xorshift state: the same seed gives the same sequence of draws.
    pub seed: u64,
    /// 429 with `Retry-After: 1`.
    pub throttled: f64,
    /// 503.
    pub unavailable: f64,
    /// The connection closes before the peer sees the request.
    pub reset_before: f64,
    /// The peer does the work; the answer is lost.
    pub reset_after: f64,
    /// The answer comes late.
    pub slow: f64,
    pub slow_by: Duration,
}

impl Chaos {
    /// The drill's mix: 8% 429, 4% 503, 0.5% resets before and 0.5% after the peer
    /// handled the request, 2% answers slowed by a second.
    pub fn drill(seed: u64) -> Self {
        Self {
            seed: seed.max(1),
            throttled: 0.08,
            unavailable: 0.04,
            reset_before: 0.005,
            reset_after: 0.005,
            slow: 0.02,
            slow_by: Duration::from_secs(1),
        }
    }

    fn draw(&mut self) -> Option<Fault> {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let roll = (self.seed >> 11) as f64 / (1u64 << 53) as f64;
        let mut edge = 0.0;
        for (rate, fault) in [
            (
                self.throttled,
                Fault::Status {
                    code: 429,
                    retry_after: Some("1".into()),
                },
            ),
            (
                self.unavailable,
                Fault::Status {
                    code: 503,
                    retry_after: None,
                },
            ),
            (self.reset_before, Fault::Reset),
            (self.reset_after, Fault::DropAnswer),
            (self.slow, Fault::Slow(self.slow_by)),
        ] {
            edge += rate;
            if roll < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// What the proxy does to a request it matches.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answers itself with this status (and `Retry-After`, if given); the peer never
    /// sees the request.
    Status {
        code: u16,
        retry_after: Option<String>,
    },
    /// Closes the connection without forwarding or answering.
    Reset,
    /// Forwards the request (the peer does the work), then closes the connection
    /// without passing the answer on.
    DropAnswer,
    /// Forwards the request and passes the answer on after a delay.
    Slow(Duration),
    /// Answers itself with this status and JSON body (a target that filters loosely,
    /// or one whose index lags behind its writes); the peer never sees the request.
    Answer { code: u16, body: serde_json::Value },
}

/// A proxy in front of a peer. Faults are queued with the text a request line must
/// contain (`"POST /v2/Bulk"`); each is used once, in order.
pub struct FaultProxy {
    pub base_url: String,
    faults: Arc<Mutex<VecDeque<(String, Fault)>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
    /// Every request head seen (request line and headers), with when it arrived.
    pub seen: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A private CA and a certificate it signed for 127.0.0.1 and localhost.
pub struct TestCa {
    /// The CA certificate, as an administrator would paste it.
    pub ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Ferry test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        Self {
            ca_pem: ca.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl FaultProxy {
    pub async fn start(peer_port: u16) -> Self {
        Self::start_with(peer_port, None).await
    }

    /// A proxy that speaks TLS to its clients with a certificate of `ca`.
    pub async fn start_tls(peer_port: u16, ca: &TestCa) -> Self {
        Self::start_with(peer_port, Some(ca.acceptor.clone())).await
    }

    async fn start_with(peer_port: u16, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults: Arc<Mutex<VecDeque<(String, Fault)>>> = Arc::default();
        let chaos: Arc<Mutex<Option<Chaos>>> = Arc::default();
        let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let (f, s, c) = (faults.clone(), seen.clone(), chaos.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (f, s, c, tls) = (f.clone(), s.clone(), c.clone(), tls.clone());
                tokio::spawn(async move {
                    let _ = match tls {
                        // A client that refuses the certificate simply goes away.
                        Some(acceptor) => match acceptor.accept(client).await {
                            Ok(stream) => serve(stream, peer_port, f, s, c).await,
                            Err(_) => Ok(()),
                        },
                        None => serve(client, peer_port, f, s, c).await,
                    };
                });
            }
        });
        Self {
            base_url: format!("{scheme}://127.0.0.1:{port}/v2"),
            faults,
            chaos,
            seen,
            task,
        }
    }

    /// From now on, requests no queued fault matches meet faults at random.
    pub fn chaos(&self, chaos: Option<Chaos>) {
        *self.chaos.lock().unwrap() = chaos;
    }

    pub fn inject(&self, request_line_contains: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .push_back((request_line_contains.to_string(), fault));
    }

    pub fn seen(&self) -> Vec<(Instant, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// The requests whose request line contains `text`.
    pub fn count(&self, text: &str) -> usize {
        self.seen()
            .iter()
            .filter(|(_, head)| head.lines().next().is_some_and(|l| l.contains(text)))
            .count()
    }
}

/// One request per connection: read it whole, apply the first matching fault or
/// forward it to the peer (HTTP/1.0: it answers and closes), then close.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    peer_port: u16,
    faults: Arc<Mutex<VecDeque<(String, Fault)>>>,
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
    chaos: Arc<Mutex<Option<Chaos>>>,
) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = head.lines().next().unwrap_or_default().to_string();
    seen.lock().unwrap().push((Instant::now(), head.clone()));
    let fault = {
        let mut faults = faults.lock().unwrap();
        let at = faults.iter().position(|(m, _)| line.contains(m.as_str()));
        at.and_then(|i| faults.remove(i)).map(|(_, f)| f)
    }
    .or_else(|| chaos.lock().unwrap().as_mut().and_then(Chaos::draw));
    match fault {
        Some(Fault::Status { code, retry_after }) => {
            let body = format!(
                "{{\"schemas\":[\"urn:ietf:params:scim:api:messages:2.0:Error\"],\"status\":\"{code}\",\"detail\":\"injected by the test proxy\"}}"
            );
            let mut answer = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(after) = retry_after {
                answer.push_str(&format!("Retry-After: {after}\r\n"));
            }
            answer.push_str("\r\n");
            answer.push_str(&body);
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Some(Fault::Answer { code, body }) => {
            let body = body.to_string();
            let answer = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        Some(Fault::Reset) => Ok(()),
        Some(Fault::DropAnswer) => {
            forward(&request, peer_port).await?;
            Ok(())
        }
        Some(Fault::Slow(delay)) => {
            let answer = forward(&request, peer_port).await?;
            tokio::time::sleep(delay).await;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        None => {
            let answer = forward(&request, peer_port).await?;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
    }
}

async fn forward(request: &[u8], peer_port: u16) -> std::io::Result<Vec<u8>> {
    let mut peer = TcpStream::connect(("127.0.0.1", peer_port)).await?;
    peer.write_all(request).await?;
    let mut answer = Vec::new();
    peer.read_to_end(&mut answer).await?;
    Ok(answer)
}
