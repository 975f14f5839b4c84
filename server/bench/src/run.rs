//! `ferry bench-run`: the run engine end to end. Synthetic users are imported (the
//! upload path), a mapping is saved and the run table written before the clock
//! starts; then the engine runs the run — claims under leases, opens and maps each
//! record, pushes, settles every outcome in the database, then the groups — into the
//! in-process null target and, given the `scim2-server` executable, into a fresh peer
//! beside that peer's own ceiling measured in the same run. On SQLite, and on
//! PostgreSQL when given its URL. Prints records/s and peak resident memory.

use crate::{
    gen_export::{ExportFormat, write},
    ingest::{fresh, import, peak_rss_bytes},
    null_target,
    scim::{PEER_TOKEN, post_bulk, start_peer},
};
use chrono::Utc;
use domain::{
    accounts::{Actor, Channel},
    ids::{ProjectId, RunId},
    mapping::{Mapping, Rule, transform::Transform},
    ports::{RunEngine, RunRecords, Store},
    roles::Role,
    runs::{NewRun, RunEvent, RunKind, RunState},
    runs::{RunSettings, Tuning},
    scim::target::{ExistingPolicy, Preset, TargetAuth, TargetInput, TargetRole},
    service::{Ferry, advance},
    user_types::UserTypes,
};
use server::{
    ingest::Ingest,
    keyring::Keyring,
    runs::{RunConfig, Runs},
    scim::connector::Targets,
    security::random_bytes,
    vault::Vault,
};
use std::{path::PathBuf, sync::Arc, time::Instant};

/// What one engine pass measured.
pub(crate) struct Measured {
    records: u64,
    created: u64,
    failed: u64,
    seconds: f64,
}

impl Measured {
    pub(crate) fn created(&self) -> u64 {
        self.created
    }

    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// The mapping a migration of the generated CSV would use.
fn mapping() -> Mapping {
    let rule = Rule::new;
    Mapping {
        rules: vec![
            // The legacy id: unique, so no user collides with another (collisions are
            // resolved by lookups, which the tests cover; here they would measure the
            // peer's filter speed, not the run).
            rule("userName", "source_id", vec![]),
            rule("name.givenName", "given_name", vec![]),
            rule("name.familyName", "family_name", vec![]),
            rule("displayName", "{given_name} {family_name}", vec![]),
            rule(
                "emails[type eq \"work\"].value",
                "email",
                vec![Transform::Trim, Transform::Lower],
            ),
            rule("title", "attributes.department", vec![]),
        ],
    }
}

/// One database: a project with `users` imported, a target, the mapping saved.
pub(crate) struct Prepared {
    pub(crate) ferry: Ferry,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: Keyring,
    pub(crate) actor: Actor,
    pub(crate) project: ProjectId,
    pub(crate) records: u64,
}

pub(crate) async fn prepare(
    url: &str,
    dir: &std::path::Path,
    export: &std::path::Path,
) -> anyhow::Result<Prepared> {
    let key: [u8; 32] = random_bytes();
    let vault = Vault::new(&key);
    let uploads = dir.join("uploads");
    let (store, ferry, owner) = fresh(url, &vault, &uploads).await?;
    let actor = Actor {
        account_id: owner,
        role: Role::Owner,
        channel: Channel::Web,
        address: None,
    };
    let keys = Keyring::new(vault, store.clone(), uploads.clone());
    let ingest = Ingest::new(store.clone(), keys.clone(), uploads, Default::default());
    let (project, measure) = import(&store, &ingest, owner, export, "Run benchmark").await?;
    ferry
        .save_mapping(&actor, project, mapping(), "benchmark")
        .await?;
    Ok(Prepared {
        ferry,
        store,
        keys,
        actor,
        project,
        records: measure.records,
    })
}

/// Points the project's test target at `base_url`, tests it (for its limits), writes
/// a real run's table of records, then times the engine from start to finish.
async fn engine_pass(
    prepared: &Prepared,
    base_url: &str,
    token: &str,
    groups: bool,
    concurrency: u32,
) -> anyhow::Result<Measured> {
    engine_pass_with(
        prepared,
        base_url,
        token,
        groups,
        concurrency,
        UserTypes::default(),
    )
    .await
    .map(|(measured, _)| measured)
}

/// A real run into the target at `base_url` with these user types; the run's id
/// comes back with what it measured.
pub(crate) async fn engine_pass_with(
    prepared: &Prepared,
    base_url: &str,
    token: &str,
    groups: bool,
    concurrency: u32,
    user_types: UserTypes,
) -> anyhow::Result<(Measured, RunId)> {
    engine_pass_as(
        prepared,
        TargetRole::Test,
        base_url,
        token,
        groups,
        concurrency,
        user_types,
    )
    .await
}

/// A real run into the `role` target at `base_url`.
pub(crate) async fn engine_pass_as(
    prepared: &Prepared,
    role: TargetRole,
    base_url: &str,
    token: &str,
    groups: bool,
    concurrency: u32,
    user_types: UserTypes,
) -> anyhow::Result<(Measured, RunId)> {
    let input = TargetInput {
        preset: Preset::Generic,
        base_url: base_url.into(),
        auth: TargetAuth::Bearer,
        secret: Some(token.into()),
        headers: None,
        ca_certificate: None,
        connect_timeout_secs: None,
        request_timeout_secs: Some(120),
        on_existing: ExistingPolicy::Skip,
        max_operations: None,
    };
    let (ferry, actor, project) = (&prepared.ferry, &prepared.actor, prepared.project);
    ferry.save_target(actor, project, role, input).await?;
    let tested = ferry.test_target(actor, project, role).await?;
    anyhow::ensure!(
        tested.last_test.as_ref().is_some_and(|r| r.passed()),
        "the target at {base_url} did not pass its connection test"
    );
    let settings = RunSettings {
        tuning: Tuning {
            groups,
            concurrency,
            batch_size: from_env("BENCH_BATCH"),
            ..Tuning::default()
        },
        user_types,
        policy: ExistingPolicy::Skip,
        sample: None,
        window: None,
        placed: None,
    };
    let run = NewRun {
        id: RunId(uuid::Uuid::now_v7()),
        project_id: project,
        kind: RunKind::RealRun,
        target_role: role.as_str().into(),
        mapping_version: Some(1),
        parent: None,
        settings: settings.to_json(),
        created_by: Some(actor.account_id),
        created_at: Utc::now(),
    };
    let done = drive(prepared, &run, RunRecords::Project).await?;
    Ok((
        Measured {
            records: done.0.total,
            created: done.0.counts.created,
            failed: done.0.counts.failed,
            seconds: done.1,
        },
        run.id,
    ))
}

/// Writes `run`'s table of `records`, then times the engine from its start to its
/// end; the run as it ended and the seconds it took.
pub(crate) async fn drive(
    prepared: &Prepared,
    run: &NewRun,
    records: RunRecords<'_>,
) -> anyhow::Result<(domain::runs::Run, f64)> {
    let actor = &prepared.actor;
    let audit = domain::audit::NewAuditEntry::by(
        actor,
        Utc::now(),
        domain::audit::AuditAction::RunCreated,
        domain::audit::ObjectKind::Run,
        run.id,
    );
    let store = &prepared.store;
    let targets = Targets::new(prepared.keys.clone());
    let created = store.create_run(run, records, &audit).await?;
    let runs = Runs::new(
        store.clone(),
        prepared.keys.clone(),
        targets,
        RunConfig::default(),
        Default::default(),
    );
    let started = Instant::now();
    advance(
        store.as_ref(),
        &created,
        &RunEvent::Start,
        Some(actor),
        Utc::now(),
    )
    .await?;
    runs.wake(run.id);
    let done = loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let run = store
            .run(run.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the run vanished"))?;
        if run.state.is_final() || run.state == RunState::Paused {
            break run;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        done.state.is_final(),
        "the run paused: {:?}",
        done.pause_reason
    );
    anyhow::ensure!(
        done.counts.total() == done.total && done.counts.settled() == done.total,
        "the counts do not add up: {:?} of {}",
        done.counts,
        done.total
    );
    Ok((done, seconds))
}

/// A number the environment sets for a pass (`BENCH_BATCH`, `BENCH_CONCURRENCY`, …).
fn from_env<T: std::str::FromStr>(variable: &str) -> Option<T> {
    std::env::var(variable).ok()?.parse().ok()
}

/// The peer's ceiling for exactly the users the engine creates: every imported record
/// mapped (with its random password) and packed as Ferry packs, before the clock
/// starts; then the bodies are posted back to back with a bare HTTP client. Returns
/// the users posted and the seconds the posts took.
async fn ceiling_pass(prepared: &Prepared, base_url: &str) -> anyhow::Result<(u64, f64)> {
    use domain::{
        runs::{PasswordAction, apply_password},
        scim::bulk::{Operation, Packer},
    };
    let compiled = mapping()
        .compile(None)
        .map_err(|p| anyhow::anyhow!("the benchmark's mapping: {}", p[0].message))?;
    let vault = prepared.keys.vault(prepared.project).await?;
    let mut packer = Packer::new(1000, 1_048_576);
    let mut bodies = Vec::new();
    let mut users = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = prepared
            .store
            .records_with_upload(prepared.project, after.as_deref(), 5_000)
            .await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        for (id, _, sealed) in &page {
            let user = server::records::open(&vault, prepared.project, id, sealed)?;
            let mut mapped = compiled.map(&user);
            if !mapped.failures.is_empty() {
                continue;
            }
            apply_password(
                &mut mapped.resource,
                &PasswordAction::RandomPassword,
                server::runs::random_password,
            );
            users += 1;
            match packer.push(Operation::create_user(
                &format!("u{users}"),
                &mapped.resource,
            )) {
                Ok(Some(request)) => bodies.push(request.body),
                Ok(None) => {}
                Err(_) => anyhow::bail!("a user does not fit a bulk request"),
            }
        }
    }
    bodies.extend(packer.take().map(|r| r.body));
    let http = reqwest::Client::new();
    let started = Instant::now();
    for body in bodies {
        post_bulk(&http, base_url, body).await?;
    }
    Ok((users, started.elapsed().as_secs_f64()))
}

fn line(what: &str, m: &Measured) {
    println!(
        "{what:<40} {:>9} {:>9} {:>8} {:>9.2} {:>12.0}",
        m.records,
        m.created,
        m.failed,
        m.seconds,
        m.rate()
    );
}

/// A scratch folder holding a generic CSV export of `users` synthetic users, and the
/// databases to measure on: a SQLite file in the folder, and PostgreSQL when given.
pub(crate) struct Scratch {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) export: PathBuf,
    pub(crate) databases: Vec<(&'static str, String)>,
}

impl Scratch {
    pub(crate) fn new(
        prefix: &str,
        users: usize,
        postgres: Option<String>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        let export = dir.path().join("users.csv");
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&export)?);
            write(ExportFormat::Csv, users as u64, 7, &mut out)?;
        }
        let mut databases = vec![(
            "SQLite",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        )];
        if let Some(url) = postgres {
            databases.push(("PostgreSQL", url));
        }
        Ok(Self {
            dir,
            export,
            databases,
        })
    }

    /// One database's project, prepared in its own folder.
    pub(crate) async fn prepare(&self, name: &str, url: &str) -> anyhow::Result<Prepared> {
        let folder = self.dir.path().join(name);
        std::fs::create_dir_all(&folder)?;
        let prepared = prepare(url, &folder, &self.export).await?;
        anyhow::ensure!(prepared.records > 0, "nothing was imported");
        Ok(prepared)
    }
}

pub async fn run(
    users: usize,
    peer: Option<PathBuf>,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    let scratch = Scratch::new("ferry-bench-run-", users, postgres)?;
    println!(
        "{:<40} {:>9} {:>9} {:>8} {:>9} {:>12}",
        "pass", "records", "created", "failed", "seconds", "records/s"
    );
    for (name, url) in &scratch.databases {
        let prepared = scratch.prepare(name, url).await?;

        let counter = null_target::Counter::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = null_target::router(counter.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let null = engine_pass(
            &prepared,
            &format!("http://{address}/v2"),
            "null",
            true,
            from_env("BENCH_CONCURRENCY").unwrap_or(2),
        )
        .await?;
        server.abort();
        line(&format!("{name}: engine → null target"), &null);

        if let Some(executable) = &peer {
            // Users only on both sides (groups are not part of the ceiling); two fresh
            // peers, so both start empty.
            let ceiling_peer = start_peer(executable).await?;
            let (posted, seconds) = ceiling_pass(&prepared, &ceiling_peer.base_url).await?;
            drop(ceiling_peer);
            let ferry_peer = start_peer(executable).await?;
            // One worker, as the ceiling posts one request at a time: the peer handles
            // requests under one lock, and a second request in flight only makes its
            // threads contend (77–91% of the ceiling with two workers, 88–104% with
            // one, on the same machine).
            let to_peer = engine_pass(
                &prepared,
                &ferry_peer.base_url,
                PEER_TOKEN,
                false,
                from_env("BENCH_PEER_CONCURRENCY").unwrap_or(1),
            )
            .await?;
            drop(ferry_peer);
            let ceiling = Measured {
                records: posted,
                created: posted,
                failed: 0,
                seconds,
            };
            line(
                &format!("{name}: peer ceiling (pre-built bodies)"),
                &ceiling,
            );
            line(&format!("{name}: engine → scim2-server"), &to_peer);
            println!(
                "{name}: the engine created users at {:.1}% of the peer's ceiling",
                to_peer.created as f64 / to_peer.seconds / ceiling.rate() * 100.0
            );
        }
    }
    if let Some(peak) = peak_rss_bytes() {
        println!("peak RSS: {:.0} MiB", peak as f64 / (1024.0 * 1024.0));
    }
    Ok(())
}
