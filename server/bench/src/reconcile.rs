//! `ferry-bench bench-reconcile`: a reconciliation end to end. Synthetic users are
//! imported and moved by a real run into the in-process null target, kept (it answers
//! `id` filters and `GET /Users/{id}` with what it was sent); then a reconciliation
//! reads every user back, 50 a request, compares each with what the mapping makes of
//! its record and settles it in the database. Timed from its start to its end, on
//! SQLite and, given its URL, PostgreSQL. Prints users/s and peak resident memory.

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

pub async fn run(users: usize, postgres: Option<String>) -> anyhow::Result<()> {
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
        let settings = RunSettings {
            tuning: Tuning {
                concurrency: std::env::var("BENCH_CONCURRENCY")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(2),
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
        let run = NewRun {
            id: RunId(uuid::Uuid::now_v7()),
            project_id: prepared.project,
            kind: RunKind::Reconcile,
            target_role: TargetRole::Production.as_str().into(),
            mapping_version: Some(1),
            parent: None,
            settings: settings.to_json(),
            created_by: Some(prepared.actor.account_id),
            created_at: Utc::now(),
        };
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
    if let Some(peak) = peak_rss_bytes() {
        println!("peak RSS: {:.0} MiB", peak as f64 / (1024.0 * 1024.0));
    }
    Ok(())
}
