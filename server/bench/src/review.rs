//! `ferry-bench bench-review`: support staff's queue at scale. A run's failures are
//! written into the queue the way a run's finish writes them (in pages of 1,000 users),
//! then the queue is read the way its page reads it — the first page with its counts,
//! a filter, a search by address, a page deep in the queue and grouped views — through
//! the service, on SQLite and, given its URL, PostgreSQL. Prints each answer's median
//! time of five (after one to warm the caches).

use crate::ingest::fresh;
use chrono::{Duration, Utc};
use domain::{
    accounts::{Actor, Channel},
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::RunId,
    ports::RunRecords,
    projects::{ProjectDraft, SourceKind},
    review::{GroupBy, QueueFilter, QueuedFailure},
    roles::Role,
    runs::{NewRun, RunKind},
};
use server::{records, security::random_bytes, vault::Vault};
use std::time::Instant;

/// Failures written per call, as a run's finish pages through its records.
const PAGE: usize = 1_000;

/// The failure of user `i`: classes, rules, attributes and details in the proportions
/// a messy migration has, each detail quoting a value of the user's.
fn failure(i: usize) -> (String, String, Option<String>, String, String) {
    let id = format!("u{i:07}");
    let email = format!("user{i}@corp.example");
    let (class, scim_type, detail) = match i % 8 {
        0..=2 => (
            "mapping",
            None,
            format!("rule {}: the value is not an e-mail address", 1 + i % 3),
        ),
        3 | 4 => (
            "invalid_data",
            Some("invalidValue"),
            format!("Attribute emails has an invalid value \"{email}\""),
        ),
        5 => (
            "already_exists",
            Some("uniqueness"),
            format!("userName \"{email}\" is already taken"),
        ),
        6 => (
            "invalid_data",
            Some("invalidSyntax"),
            format!("phoneNumbers[0].value \"+1 555 {i:07}\" is not a phone number"),
        ),
        _ => ("server_error", None, "HTTP 500: internal error".to_string()),
    };
    (
        id,
        email,
        scim_type.map(str::to_string),
        class.to_string(),
        detail,
    )
}

async fn timed<T, F, Fut>(what: &str, mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = domain::Result<T>>,
{
    call().await?;
    let mut times = Vec::with_capacity(5);
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        last = Some(call().await?);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("  {what:<58} {:>9.1} ms", times[2]);
    last.ok_or_else(|| anyhow::anyhow!("no answer"))
}

pub async fn run(failed: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ferry-bench-review-")
        .tempdir()?;
    let mut databases = vec![(
        "SQLite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Some(url) = postgres {
        databases.push(("PostgreSQL", url));
    }
    let key: [u8; 32] = random_bytes();
    let vault = Vault::new(&key);
    for (name, url) in databases {
        let folder = dir.path().join(name);
        let (store, ferry, owner) = fresh(&url, &vault, &folder).await?;
        let actor = Actor {
            account_id: owner,
            role: Role::Owner,
            channel: Channel::Web,
            address: None,
        };
        let project = ferry
            .create_project(
                &actor,
                ProjectDraft {
                    name: "Review benchmark".into(),
                    source_kind: SourceKind::Csv,
                    description: String::new(),
                },
            )
            .await?
            .id;
        let run = RunId(uuid::Uuid::now_v7());
        let now = Utc::now();
        store
            .create_run(
                &NewRun {
                    id: run,
                    project_id: project,
                    kind: RunKind::RealRun,
                    target_role: "production".into(),
                    mapping_version: None,
                    parent: None,
                    settings: "{}".into(),
                    created_by: Some(owner),
                    created_at: now,
                },
                RunRecords::Ids(&[]),
                &NewAuditEntry::by(&actor, now, AuditAction::RunCreated, ObjectKind::Run, run)
                    .in_project(project),
            )
            .await?;

        let started = Instant::now();
        let types = ["Staff", "Contractors", "Customers"];
        for first in (0..failed).step_by(PAGE) {
            let page: Vec<QueuedFailure> = (first..(first + PAGE).min(failed))
                .map(|i| {
                    let at = now - Duration::seconds((failed - i) as i64);
                    let (id, email, scim_type, class, detail) = failure(i);
                    let keys = [format!("id:{id}"), format!("name:{email}")];
                    QueuedFailure {
                        digests: keys
                            .iter()
                            .map(|k| records::search_digest(&vault, project, k))
                            .collect(),
                        source_id: id,
                        at,
                        error_class: class,
                        scim_type,
                        detail,
                        user_type: Some(types[i % 3].to_string()),
                    }
                })
                .collect();
            store
                .queue_outcomes(project, run, "production", &page, &[])
                .await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{name}: {failed} failed users written into the queue in {seconds:.1} s ({:.0} users/s)",
            failed as f64 / seconds
        );

        let everyone = QueueFilter::default();
        let view = timed("first page (waiting for review, with counts)", || {
            ferry.review_queue(&actor, project, &everyone, None, 50)
        })
        .await?;
        anyhow::ensure!(
            view.matching == failed as u64,
            "the queue holds {} of {failed}",
            view.matching
        );
        let filter = QueueFilter {
            error_class: Some("invalid_data".into()),
            scim_type: Some("invalidSyntax".into()),
            ..Default::default()
        };
        let narrowed = timed("filter: invalid_data with scimType invalidSyntax", || {
            ferry.review_queue(&actor, project, &filter, None, 50)
        })
        .await?;
        anyhow::ensure!(narrowed.matching > 0, "the filter found nobody");
        let text = QueueFilter {
            text: Some("phone number".into()),
            ..Default::default()
        };
        timed("filter: text in the detail", || {
            ferry.review_queue(&actor, project, &text, None, 50)
        })
        .await?;
        let search = QueueFilter {
            search: Some(format!("USER{}@corp.example", failed / 2)),
            ..Default::default()
        };
        let found = timed("search by e-mail address (keyed digest)", || {
            ferry.review_queue(&actor, project, &search, None, 50)
        })
        .await?;
        anyhow::ensure!(
            found.page.items.len() == 1,
            "the search found {}",
            found.page.items.len()
        );
        let deep = format!("u{:07}", failed / 2);
        timed("a page half-way down (keyset)", || {
            ferry.review_queue(&actor, project, &everyone, Some(&deep), 50)
        })
        .await?;
        for by in [GroupBy::Class, GroupBy::Fault, GroupBy::Pattern] {
            timed(&format!("grouped by {}", by.label().to_lowercase()), || {
                ferry.review_groups(&actor, project, &everyone, by)
            })
            .await?;
        }
        timed("grouped by pattern, filtered by class", || {
            ferry.review_groups(&actor, project, &filter, GroupBy::Pattern)
        })
        .await?;
    }
    Ok(())
}
