//! `ferry-bench bench-reconcile`: a reconciliation end to end. Synthetic users are
//! imported and moved by a real run into the in-process null target, kept (it answers
//! `id` filters and `GET /Users/{id}` with what it was sent); then a reconciliation
//! reads every user back, 50 a request, compares each with what the mapping makes of
//! its record and settles it in the database. Timed from its start to its end, on
//! SQLite and, given its URL, PostgreSQL. Prints users/s and peak resident memory.
//!
//! Given the peer (`scim2-server`), also on SQLite: `peer_users` users are moved into
//! a fresh peer, the peer's own read ceiling is measured — the same `id` filters of
//! 50 users, pre-built, sent one at a time and eight at once, the better kept — and
//! a reconciliation reads them all back; its rate is printed as a share of the
//! ceiling (the reconciliation also lists the target's users at its end, which the
//! ceiling does not).

use crate::{
    ingest::peak_rss_bytes,
    null_target,
    run::{Scratch, drive, engine_pass_as},
};
use chrono::Utc;
use domain::{
    ids::RunId,
    ports::RunRecords,
    runs::{NewRun, RunKind, RunSettings, Tuning},
    scim::target::{ExistingPolicy, TargetRole},
    user_types::UserTypes,
};
use futures_util::StreamExt;
use std::{path::PathBuf, time::Instant};

fn reconcile_run(prepared: &crate::run::Prepared, concurrency: u32) -> NewRun {
    let settings = RunSettings {
        tuning: Tuning {
            concurrency,
            groups: false,
            failure_window: 100_000,
            failure_threshold: 100_000,
            ..Tuning::default()
        },
        user_types: UserTypes::default(),
        policy: ExistingPolicy::Skip,
        sample: None,
        window: None,
        placed: None,
    };
    NewRun {
        id: RunId(uuid::Uuid::now_v7()),
        project_id: prepared.project,
        kind: RunKind::Reconcile,
        target_role: TargetRole::Production.as_str().into(),
        mapping_version: Some(1),
        parent: None,
        settings: settings.to_json(),
        created_by: Some(prepared.actor.account_id),
        created_at: Utc::now(),
    }
}

/// The peer's rate answering `id` filters of 50 users, `at_once` requests in the air.
async fn read_ceiling(base: &str, ids: &[String], at_once: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let paths: Vec<String> = ids
        .chunks(50)
        .map(|chunk| {
            let filter = chunk
                .iter()
                .map(|id| format!("id eq \"{id}\""))
                .collect::<Vec<_>>()
                .join(" or ");
            format!("{base}/Users?count=50&filter={}", urlencode(&filter))
        })
        .collect();
    let started = Instant::now();
    let read: Vec<anyhow::Result<usize>> = futures_util::stream::iter(paths)
        .map(|url| {
            let http = http.clone();
            async move {
                let page: serde_json::Value = http
                    .get(url)
                    .bearer_auth(crate::scim::PEER_TOKEN)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                Ok(page["Resources"].as_array().map_or(0, Vec::len))
            }
        })
        .buffer_unordered(at_once)
        .collect()
        .await;
    let mut users = 0;
    for answer in read {
        users += answer?;
    }
    anyhow::ensure!(
        users == ids.len(),
        "the peer answered {users} of {} users",
        ids.len()
    );
    Ok(users as f64 / started.elapsed().as_secs_f64())
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The peer part: users moved into a fresh peer, its read ceiling, then a
/// reconciliation against it.
async fn against_peer(users: usize, executable: &std::path::Path) -> anyhow::Result<()> {
    let scratch = Scratch::new("ferry-bench-reconcile-peer-", users, None)?;
    let (name, url) = &scratch.databases[0];
    let prepared = scratch.prepare(name, url).await?;
    let peer = crate::scim::start_peer(executable).await?;
    let (moved, _) = engine_pass_as(
        &prepared,
        TargetRole::Production,
        &peer.base_url,
        crate::scim::PEER_TOKEN,
        false,
        1,
        UserTypes::default(),
    )
    .await?;
    anyhow::ensure!(moved.created() > 0, "no user reached the peer");
    let ids = prepared.store.known_scim_ids(prepared.project).await?;
    let one = read_ceiling(&peer.base_url, &ids, 1).await?;
    let eight = read_ceiling(&peer.base_url, &ids, 8).await?;
    let ceiling = one.max(eight);
    let run = reconcile_run(&prepared, 1);
    let (done, seconds) = drive(&prepared, &run, RunRecords::InTarget { sample: None }).await?;
    anyhow::ensure!(
        done.counts.failed == 0,
        "{} users did not match what was sent",
        done.counts.failed
    );
    let rate = done.total as f64 / seconds.max(f64::MIN_POSITIVE);
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>9.2} {:>10.0}",
        format!("{name}: reconciliation ← scim2-server"),
        done.total,
        done.counts.skipped,
        done.counts.failed,
        seconds,
        rate
    );
    println!(
        "{name}: the peer's read ceiling: {one:.0} users/s one request at a time, {eight:.0} eight at once"
    );
    println!(
        "{name}: the reconciliation read users at {:.1}% of the peer's ceiling",
        rate / ceiling * 100.0
    );
    Ok(())
}

pub async fn run(
    users: usize,
    peer: Option<PathBuf>,
    peer_users: usize,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    let scratch = Scratch::new("ferry-bench-reconcile-", users, postgres)?;
    println!(
        "{:<44} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "pass", "users", "matching", "failed", "seconds", "users/s"
    );
    for (name, url) in &scratch.databases {
        let prepared = scratch.prepare(name, url).await?;
        let (counter, kept) = (
            null_target::Counter::default(),
            null_target::Kept::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = null_target::router_keeping(counter, kept.clone());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let base = format!("http://{address}/v2");
        let (moved, _) = engine_pass_as(
            &prepared,
            TargetRole::Production,
            &base,
            "null",
            false,
            2,
            UserTypes::default(),
        )
        .await?;
        anyhow::ensure!(
            kept.len() as u64 == moved.created(),
            "the null target kept {} of {} users",
            kept.len(),
            moved.created()
        );
        let concurrency = std::env::var("BENCH_CONCURRENCY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let run = reconcile_run(&prepared, concurrency);
        let (done, seconds) = drive(&prepared, &run, RunRecords::InTarget { sample: None }).await?;
        server.abort();
        anyhow::ensure!(
            done.counts.failed == 0,
            "{} users did not match: the null target returns what it was sent",
            done.counts.failed
        );
        println!(
            "{:<44} {:>9} {:>9} {:>8} {:>9.2} {:>10.0}",
            format!("{name}: reconciliation ← null target"),
            done.total,
            done.counts.skipped,
            done.counts.failed,
            seconds,
            done.total as f64 / seconds.max(f64::MIN_POSITIVE)
        );
    }
    if let Some(executable) = &peer {
        against_peer(peer_users, executable).await?;
    }
    if let Some(peak) = peak_rss_bytes() {
        println!("peak RSS: {:.0} MiB", peak as f64 / (1024.0 * 1024.0));
    }
    Ok(())
}
