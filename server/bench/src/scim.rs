//! `ferry bench-scim`: the SCIM client benchmark. Pushes N synthetic users (a) into an
//! in-process null target that only parses requests, to measure Ferry's own cost, and
//! (b) into the real SCIM peer (`scim2-server`), compared in the same run with the
//! peer's own ceiling: a minimal client posting pre-built bulk bodies back to back.
//! Each pass against the peer starts a fresh one, so both face the same empty server.

use crate::{
    ingest::peak_rss_bytes,
    null_target::{self, Counter},
};
use domain::{
    ports::TargetConnector,
    scim::{
        bulk::{Operation, Packer},
        outcome::Outcome,
        target::{ExistingPolicy, Preset, TargetAuth, TargetInput, TargetSecrets, TargetSettings},
        urn,
    },
};
use serde_json::json;
use server::{
    keyring::Keyring,
    scim::{
        client::{Limits, ScimClient},
        connector::Targets,
        push::{Pusher, UserPush},
    },
    vault::Vault,
};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const DEPARTMENTS: [&str; 6] = [
    "Engineering",
    "Sales",
    "Support",
    "Finance",
    "Legal",
    "Operations",
];

/// A user as the mapping will produce them: core attributes, an e-mail, a phone and
/// the enterprise extension.
pub fn synthetic_user(prefix: &str, i: usize) -> UserPush {
    let name = format!("{prefix}{i:07}");
    UserPush {
        external_id: format!("legacy-{name}"),
        user_name: name.clone(),
        data: json!({
            "schemas": [urn::USER, urn::ENTERPRISE_USER],
            "userName": name,
            "externalId": format!("legacy-{name}"),
            "name": {"givenName": "Bench", "familyName": format!("User {i}")},
            "displayName": format!("Bench User {i}"),
            "emails": [{"value": format!("{name}@bench.example"), "type": "work", "primary": true}],
            "phoneNumbers": [{"value": format!("+1555{:07}", i % 10_000_000), "type": "mobile"}],
            "active": true,
            urn::ENTERPRISE_USER: {"department": DEPARTMENTS[i % DEPARTMENTS.len()], "employeeNumber": i.to_string()},
        }),
        maybe_sent: false,
        sent_at: None,
    }
}

fn settings(base_url: &str, token: &str) -> anyhow::Result<(TargetSettings, TargetSecrets)> {
    Ok(TargetInput {
        preset: Preset::Generic,
        base_url: base_url.into(),
        auth: TargetAuth::Bearer,
        secret: Some(token.into()),
        headers: None,
        ca_certificate: None,
        connect_timeout_secs: None,
        request_timeout_secs: Some(300),
        on_existing: ExistingPolicy::Fail,
        max_operations: None,
    }
    .validate(None)?)
}

struct Pass {
    users: usize,
    seconds: f64,
    requests: u64,
}

impl Pass {
    fn rate(&self) -> f64 {
        self.users as f64 / self.seconds.max(1e-9)
    }
}

/// Pushes one batch and times it; every user must have been created.
async fn timed_push(pusher: &Pusher<'_>, batch: &[UserPush]) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let result = pusher.push(batch, &[]).await;
    let took = started.elapsed();
    if let Some(other) = result
        .users
        .iter()
        .find(|o| !matches!(o, Outcome::Created { .. }))
    {
        anyhow::bail!("a user was not created: {other:?}");
    }
    Ok((took, result.requests))
}

/// Pushes `users` synthetic users through Ferry's client, a bulk request's worth at a
/// time (as the run runner hands them over), and checks every one was created. Only
/// the pushing is timed; each chunk is made just before it is pushed, so the memory
/// measured is the client's, not a hundred thousand users held at once.
async fn ferry_pass(
    base_url: &str,
    token: &str,
    users: usize,
    prefix: &str,
) -> anyhow::Result<Pass> {
    let (settings, secrets) = settings(base_url, token)?;
    let report = Targets::new(Keyring::server_only(Vault::new(&[0u8; 32])))
        .test_connection(&settings, &secrets, chrono::Utc::now())
        .await;
    if !report.passed() {
        anyhow::bail!("the connection test failed: {:?}", report.steps);
    }
    let limits = Limits::new(&settings, report.discovery.as_ref());
    let client = ScimClient::new(&settings, &secrets)?;
    let pusher = Pusher::new(&client, limits, settings.on_existing);
    let chunk = limits.max_operations as usize;
    let (mut elapsed, mut requests) = (Duration::ZERO, 0);
    for start in (0..users).step_by(chunk) {
        let batch: Vec<UserPush> = (start..(start + chunk).min(users))
            .map(|i| synthetic_user(prefix, i))
            .collect();
        let (took, sent) = timed_push(&pusher, &batch).await?;
        elapsed += took;
        requests += sent;
    }
    Ok(Pass {
        users,
        seconds: elapsed.as_secs_f64(),
        requests,
    })
}

/// Ferry against the peer's ceiling, taking turns request by request so that both
/// meet the same moments of a shared machine and servers of the same size: each round
/// posts one pre-built body (packed as Ferry packs, built before the clock starts) to
/// one fresh peer with a bare HTTP client, then lets Ferry push the same number of users
/// to another fresh peer. Returns (ceiling, Ferry, limits).
async fn peer_passes(executable: &Path, users: usize) -> anyhow::Result<(Pass, Pass, Limits)> {
    let ceiling_peer = start_peer(executable).await?;
    let ferry_peer = start_peer(executable).await?;
    let (settings, secrets) = settings(&ferry_peer.base_url, PEER_TOKEN)?;
    let report = Targets::new(Keyring::server_only(Vault::new(&[0u8; 32])))
        .test_connection(&settings, &secrets, chrono::Utc::now())
        .await;
    if !report.passed() {
        anyhow::bail!("the connection test failed: {:?}", report.steps);
    }
    let limits = Limits::new(&settings, report.discovery.as_ref());
    let client = ScimClient::new(&settings, &secrets)?;
    let pusher = Pusher::new(&client, limits, settings.on_existing);

    let mut packer = Packer::new(limits.max_operations, limits.max_payload_size);
    let mut bodies = Vec::new();
    for i in 0..users {
        let user = synthetic_user("ceiling", i);
        match packer.push(Operation::create_user(&format!("u{i}"), &user.data)) {
            Ok(Some(request)) => bodies.push(request),
            Ok(None) => {}
            Err(_) => anyhow::bail!("a user does not fit a bulk request"),
        }
    }
    bodies.extend(packer.take());

    let http = reqwest::Client::new();
    let (mut ceiling_time, mut ferry_time) = (Duration::ZERO, Duration::ZERO);
    let (mut ferry_requests, mut sent) = (0, 0);
    for request in bodies {
        let chunk: Vec<UserPush> = (sent..sent + request.bulk_ids.len())
            .map(|i| synthetic_user("ferry", i))
            .collect();
        sent += chunk.len();

        let started = Instant::now();
        post_bulk(&http, &ceiling_peer.base_url, request.body).await?;
        ceiling_time += started.elapsed();

        let (took, sent) = timed_push(&pusher, &chunk).await?;
        ferry_time += took;
        ferry_requests += sent;
    }
    let pass = |seconds: Duration, requests| Pass {
        users,
        seconds: seconds.as_secs_f64(),
        requests,
    };
    let ceiling_requests = ((users as u64).div_ceil(u64::from(limits.max_operations))).max(1);
    Ok((
        pass(ceiling_time, ceiling_requests),
        pass(ferry_time, ferry_requests),
        limits,
    ))
}

/// Posts one pre-built bulk body to a peer with a bare client, as its ceiling is
/// measured: no parsing of the answer beyond its status.
pub async fn post_bulk(
    http: &reqwest::Client,
    base_url: &str,
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let response = http
        .post(format!("{base_url}/Bulk"))
        .bearer_auth(PEER_TOKEN)
        .header("content-type", "application/scim+json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "the peer answered {}",
        response.status()
    );
    response.bytes().await?;
    Ok(())
}

/// A fresh `scim2-server`, killed when dropped.
pub struct Peer {
    child: Child,
    pub base_url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const PEER_TOKEN: &str = "bench-peer-token";

pub async fn start_peer(executable: &Path) -> anyhow::Result<Peer> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(executable)
        .args([
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--bearer-token",
            PEER_TOKEN,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", executable.display()))?;
    let peer = Peer {
        child,
        base_url: format!("http://127.0.0.1:{port}/v2"),
    };
    let started = Instant::now();
    let http = reqwest::Client::new();
    while !http
        .get(format!("{}/ServiceProviderConfig", peer.base_url))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if started.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("the SCIM peer did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(peer)
}

fn line(what: &str, pass: &Pass) {
    println!(
        "{what:<34} {:>9} {:>9} {:>9.2} {:>12.0}",
        pass.users,
        pass.requests,
        pass.seconds,
        pass.rate()
    );
}

pub async fn run(users: usize, peer: Option<PathBuf>) -> anyhow::Result<()> {
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>12}",
        "pass", "users", "requests", "seconds", "users/s"
    );

    // (b) The null target: Ferry's own cost.
    let counter = Counter::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let app = null_target::router(counter.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let null = ferry_pass(&format!("http://{address}/v2"), "null", users, "null").await?;
    server.abort();
    anyhow::ensure!(
        counter.get() == users as u64,
        "the null target saw {} users",
        counter.get()
    );
    line("Ferry → null target", &null);

    // (a) The real peer: its ceiling and Ferry, taking turns.
    if let Some(executable) = peer {
        let (ceiling, ferry, limits) = peer_passes(&executable, users).await?;
        line("peer ceiling (pre-built bodies)", &ceiling);
        line("Ferry → scim2-server", &ferry);
        println!(
            "\nFerry reached {:.1}% of the peer's ceiling (bulk of {} operations, {} bytes)",
            ferry.rate() / ceiling.rate() * 100.0,
            limits.max_operations,
            limits.max_payload_size
        );
    }
    if let Some(peak) = peak_rss_bytes() {
        println!("peak RSS: {:.0} MiB", peak as f64 / (1024.0 * 1024.0));
    }
    Ok(())
}

/// `ferry bench-map`: maps `records` synthetic normalized users with a mapping of the
/// kind a migration uses (names, e-mail and phone normalised, a template, a lookup, the
/// enterprise extension), on one thread, and prints records/s.
pub fn run_map(records: usize) -> anyhow::Result<()> {
    use domain::{
        import::record::{Email, NormalizedUser, Phone, UserStatus},
        mapping::{Mapping, Rule, transform::Transform},
    };
    let rule = Rule::new;
    let table = DEPARTMENTS
        .iter()
        .map(|d| (d.to_ascii_lowercase(), d.to_string()))
        .collect();
    let mapping = Mapping {
        rules: vec![
            Rule {
                required: true,
                max_length: Some(255),
                ..rule("userName", "email", vec![Transform::Email])
            },
            rule("name.givenName", "given_name", vec![Transform::Trim]),
            rule("name.familyName", "family_name", vec![Transform::Trim]),
            rule("displayName", "{given_name} {family_name}", vec![]),
            rule(
                "emails[type eq \"work\"].value",
                "email",
                vec![Transform::Email],
            ),
            rule(
                "phoneNumbers[type eq \"mobile\"].value",
                "phone",
                vec![Transform::Phone {
                    region: Some("US".into()),
                }],
            ),
            rule("active", "active", vec![]),
            rule(
                &format!("{}:department", urn::ENTERPRISE_USER),
                "attributes.department",
                vec![
                    Transform::Lower,
                    Transform::Lookup {
                        table,
                        default: Some("Other".into()),
                    },
                ],
            ),
            rule(
                &format!("{}:employeeNumber", urn::ENTERPRISE_USER),
                "source_id",
                vec![],
            ),
        ],
    };
    let compiled = mapping
        .compile(None)
        .map_err(|p| anyhow::anyhow!("the benchmark's mapping is invalid: {p:?}"))?;
    let user = |i: usize| {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert(
            "department".to_string(),
            json!([DEPARTMENTS[i % DEPARTMENTS.len()].to_ascii_lowercase()]),
        );
        NormalizedUser {
            source_id: format!("legacy-{i}"),
            username: Some(format!("user{i}")),
            emails: vec![Email {
                value: format!(" User{i}@Bench.Example "),
                primary: true,
                verified: Some(true),
            }],
            phones: vec![Phone {
                value: format!("(202) 555-{:04}", i % 10_000),
                kind: Some("mobile".into()),
                primary: true,
            }],
            given_name: Some("Bench".into()),
            family_name: Some(format!("User {i}")),
            status: UserStatus::Active,
            attributes,
            ..NormalizedUser::default()
        }
    };
    // The records are made in chunks outside the clock: only mapping is timed. Once
    // on one thread, then on every core, each taking its share of a chunk (as the
    // impact computation does).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut bytes = 0usize;
    for threads in [1, cores] {
        let (mut elapsed, mut failures) = (Duration::ZERO, 0usize);
        for start in (0..records).step_by(10_000) {
            let chunk: Vec<NormalizedUser> =
                (start..(start + 10_000).min(records)).map(user).collect();
            let started = Instant::now();
            let share = chunk.len().div_ceil(threads);
            let counted: Vec<(usize, usize)> = std::thread::scope(|scope| {
                let workers: Vec<_> = chunk
                    .chunks(share.max(1))
                    .map(|part| {
                        let compiled = &compiled;
                        scope.spawn(move || {
                            part.iter().fold((0, 0), |(f, b), record| {
                                let mapped = compiled.map(record);
                                (
                                    f + mapped.failures.len(),
                                    b + mapped.resource.as_object().map_or(0, |o| o.len()),
                                )
                            })
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap_or((0, 0)))
                    .collect()
            });
            elapsed += started.elapsed();
            for (f, b) in counted {
                failures += f;
                bytes += b;
            }
        }
        println!(
            "{:<34} {:>9} {:>9} {:>9.2} {:>12.0}",
            format!(
                "mapping ({} rules), {threads} thread{}",
                compiled.rule_count(),
                if threads == 1 { "" } else { "s" }
            ),
            records,
            failures,
            elapsed.as_secs_f64(),
            records as f64 / elapsed.as_secs_f64().max(1e-9)
        );
        if cores == 1 {
            break;
        }
    }
    anyhow::ensure!(bytes > 0, "nothing was mapped");
    Ok(())
}
