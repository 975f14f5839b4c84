//! `ferry-bench bench-passwords`: the verification service as WSO2's login script
//! drives it — start, poll once the check ended, status — through the same use-cases the
//! endpoints call, on the real store and the real hashing pool, at 1, 16 and 64 logins
//! at once, with a cheap scheme (salted SHA-256) and with bcrypt at cost 10. Users are
//! imported from an Auth0 export and moved by a real run into the in-process null
//! target first, so each login finds its user by the id the target gave it. Prints
//! sequences a second, latency p50/p99, Ferry's own share of it (the latency less the
//! hash's own cost, measured apart), and the peak resident memory.

use crate::{
    ingest::peak_rss_bytes,
    null_target,
    run::{Prepared, engine_pass_with, prepare},
};
use domain::{
    password_service::{Secret, SecretKind, ServiceSettings, StartRequest, StatusRequest},
    passwords::Credential,
    ports::RecordFilter,
    runs::RecordState,
    service::ServiceCall,
    user_types::{PasswordStrategy, UserType, UserTypes},
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

const PASSWORD: &str = "correct horse battery staple";
const SALT: &str = "3866f893d8aaf0d1";

/// The two schemes: a salted SHA-256 (hex, salt first) and bcrypt at cost 10.
fn hashes() -> anyhow::Result<(String, String)> {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    digest.update(SALT.as_bytes());
    digest.update(PASSWORD.as_bytes());
    let sha = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let bcrypt = bcrypt::hash(PASSWORD, 10)?;
    Ok((sha, bcrypt))
}

/// An Auth0 bulk-import file: `cheap` users with the salted SHA-256 credential, then
/// `slow` with the bcrypt one (the same hash for all: a login's cost is the same).
fn export(cheap: usize, slow: usize, sha: &str, bcrypt: &str) -> String {
    let mut users = Vec::with_capacity(cheap + slow);
    for i in 0..cheap + slow {
        let mut user = serde_json::json!({
            "email": format!("u{i}@bench.example"),
            "user_id": format!("u-{i:06}"),
        });
        if i < cheap {
            user["custom_password_hash"] = serde_json::json!({
                "algorithm": "sha256",
                "hash": {"value": sha, "encoding": "hex"},
                "salt": {"value": SALT, "encoding": "utf8", "position": "prefix"},
            });
        } else {
            user["password_hash"] = serde_json::Value::String(bcrypt.into());
        }
        users.push(user);
    }
    serde_json::Value::Array(users).to_string()
}

/// One pass's figures.
struct Figures {
    sequences: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    failed: usize,
}

/// Logins of the users `users[..]`, `concurrency` at a time; each a start, the check
/// (spawned, as the endpoint spawns it), one poll, and the status.
async fn pass(
    prepared: &Prepared,
    key: &str,
    users: &[(String, String)],
    concurrency: usize,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(users.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (ferry, project) = (prepared.ferry.clone(), prepared.project);
        let (next, users, key) = (next.clone(), users.clone(), key.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((scim_id, login)) = users.get(i) else {
                    break;
                };
                let began = Instant::now();
                let call = || ServiceCall {
                    project,
                    bearer: Some(&key),
                    caller: "10.0.0.1".into(),
                };
                let pending = ferry
                    .start_authentication(
                        call(),
                        StartRequest {
                            id: scim_id.clone(),
                            username: login.clone(),
                            password: Secret::new(PASSWORD.into()),
                        },
                    )
                    .await
                    .map_err(|r| anyhow::anyhow!("start refused: {}", r.message))?;
                let context = pending.context_id.clone();
                // As the endpoint does: the check runs beside the answer. The waiting
                // page polls every 2 s; here the one poll comes as the check ends, so
                // the latency is Ferry's work and the hash's, not a polling interval.
                let checker = ferry.clone();
                tokio::spawn(async move { checker.verify_pending(pending).await }).await?;
                anyhow::ensure!(
                    ferry.authentication_complete(project, &context).await?,
                    "a finished check polled as pending"
                );
                let answer = ferry
                    .authentication_status(
                        call(),
                        StatusRequest {
                            context_id: context,
                            username: login.clone(),
                        },
                    )
                    .await
                    .map_err(|r| anyhow::anyhow!("status refused: {}", r.message))?;
                if answer.status != "SUCCESS" {
                    failed += 1;
                }
                latencies.push(began.elapsed());
            }
            anyhow::Ok((latencies, failed))
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (mut l, f) = task.await??;
        latencies.append(&mut l);
        failed += f;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Figures {
        sequences: latencies.len(),
        seconds,
        p50: at(0.50),
        p99: at(0.99),
        failed,
    })
}

/// The median cost of one check of `credential`, on this thread.
fn hash_cost(credential: &Credential) -> Duration {
    let mut times: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            assert!(credential.verify(PASSWORD));
            t.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

pub async fn run(cheap_logins: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let levels = [1usize, 16, 64];
    // Each login moves its user; a user is used once. bcrypt logins are few (each
    // costs tens of milliseconds of a core).
    let slow_logins = 192;
    let cheap = cheap_logins * levels.len();
    let slow = slow_logins * levels.len();
    let (sha, bcrypt) = hashes()?;
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-passwords-")
        .tempdir()?;
    let file = dir.path().join("users.json");
    std::fs::write(&file, export(cheap, slow, &sha, &bcrypt))?;
    let costs = [
        (
            "salted SHA-256",
            hash_cost(&domain::passwords::salted_digest(
                "sha256",
                domain::passwords::Encoding::Hex.decode("hash", &sha)?,
                SALT.as_bytes().to_vec(),
                domain::passwords::SaltPosition::Prefix,
            )?),
        ),
        (
            "bcrypt cost 10",
            hash_cost(&domain::passwords::parse(&bcrypt)?),
        ),
    ];
    let mut databases = vec![(
        "SQLite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Some(url) = postgres {
        databases.push(("PostgreSQL", url));
    }
    println!(
        "{:<40} {:>9} {:>8} {:>10} {:>10} {:>10} {:>14}",
        "pass", "logins", "seq/s", "p50 ms", "p99 ms", "hash ms", "Ferry p99 ms"
    );
    for (name, url) in databases {
        let folder = dir.path().join(name);
        std::fs::create_dir_all(&folder)?;
        let prepared = prepare(&url, &folder, &file).await?;
        // As the server does: SQLite's checkpoints off the write path.
        let checkpoints = tokio::spawn(server::store::checkpoints(
            url.clone(),
            std::future::pending(),
        ));
        anyhow::ensure!(
            prepared.records as usize == cheap + slow,
            "{} of {} users were imported",
            prepared.records,
            cheap + slow
        );
        // Every user migrates its password silently.
        let user_types = UserTypes {
            user_types: vec![UserType {
                name: "Everyone".into(),
                combine: Default::default(),
                conditions: Vec::new(),
                include: true,
                password: PasswordStrategy::SilentMigration,
            }],
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = null_target::router(null_target::Counter::default());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let (_, run) = engine_pass_with(
            &prepared,
            &format!("http://{address}/v2"),
            "null",
            false,
            2,
            user_types,
        )
        .await?;
        server.abort();
        // Legacy id → the id the target gave, in legacy-id order.
        let mut crosswalk = Vec::with_capacity(cheap + slow);
        let mut after = None;
        loop {
            let filter = RecordFilter {
                state: Some(RecordState::Created),
                error_class: None,
            };
            let page = prepared
                .store
                .run_records(run, &filter, after, 1_000)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.seq);
            crosswalk.extend(
                page.into_iter()
                    .filter_map(|r| r.scim_id.map(|id| (r.source_id, id))),
            );
        }
        crosswalk.sort();
        anyhow::ensure!(
            crosswalk.len() == cheap + slow,
            "not every user was created"
        );
        let logins: Vec<(String, String)> = crosswalk
            .into_iter()
            .map(|(source, scim)| {
                let n: usize = source.trim_start_matches("u-").parse().unwrap_or(0);
                (scim, format!("u{n}@bench.example"))
            })
            .collect();
        let (ferry, actor, project) = (&prepared.ferry, &prepared.actor, prepared.project);
        let settings = ServiceSettings {
            enabled: true,
            max_caller_failures: 1_000_000,
            ..ServiceSettings::default()
        };
        ferry
            .save_password_service(actor, project, settings, "http://127.0.0.1")
            .await?;
        let key = ferry
            .issue_service_secret(actor, project, SecretKind::StaticKey)
            .await?
            .secret;
        let (cheap_users, slow_users) = logins.split_at(cheap);
        for (scheme, users, per_level) in
            [(0, cheap_users, cheap_logins), (1, slow_users, slow_logins)]
        {
            let (label, cost) = costs[scheme];
            for (n, level) in levels.iter().enumerate() {
                let chunk = &users[n * per_level..(n + 1) * per_level];
                crate::ingest::reset_peak_rss();
                let f = pass(&prepared, &key, chunk, *level).await?;
                anyhow::ensure!(f.failed == 0, "{} logins failed", f.failed);
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                println!(
                    "{:<40} {:>9} {:>8.0} {:>10.2} {:>10.2} {:>10.2} {:>14.2}   peak RSS {}",
                    format!("{name}: {label}, {level} at once"),
                    f.sequences,
                    f.sequences as f64 / f.seconds.max(1e-9),
                    ms(f.p50),
                    ms(f.p99),
                    ms(cost),
                    (ms(f.p99) - ms(cost)).max(0.0),
                    crate::ingest::mib(peak_rss_bytes()),
                );
            }
        }
        checkpoints.abort();
    }
    Ok(())
}
