//! Retention and purge over HTTP on SQLite and PostgreSQL: after a real run into the
//! real SCIM peer, the retention period ends (the run's end moved back in the
//! database) and the scheduled purge destroys the project's key and imported data,
//! keeping the crosswalk and the report as chosen; another project is purged on an
//! owner's request, keeping neither; one upload is purged alone. Each purge is
//! verified by reading the whole database and the data folder with the key the
//! project had: nothing of it opens any more, while a project not purged still does.
//! A purged project is read only and says so; only owners purge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{
    TestDb, TestServer, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use crate::runs_http::{export, impact_computed, ready_as, send, until};
use reqwest::Method;
use serde_json::{Value, json};
use server::vault::Vault;
use std::{path::Path, sync::Arc};

/// The contexts everything of `project` is sealed under: its records (by source id),
/// its reports, target and legacy secrets, Firebase parameters and its runs' read-backs.
fn contexts(project: &str, source_ids: &[String], runs: &[String]) -> Vec<String> {
    let mut all: Vec<String> = source_ids
        .iter()
        .map(|id| format!("record:{project}:{id}"))
        .collect();
    for fixed in [
        "assessment",
        "impact",
        "target:{}:production",
        "target:{}:test",
        "legacy-connection:{}",
        "secret:{}:firebase",
    ] {
        all.push(if fixed.contains("{}") {
            fixed.replace("{}", project)
        } else {
            format!("{fixed}:{project}")
        });
    }
    all.extend(runs.iter().map(|run| format!("readback:{run}")));
    all
}

/// Every value in the database, and every file in the data folder, that `vault`
/// opens under one of `contexts`: where each was found.
/// How many records the places a scan opened hold.
fn records_in(opened: &[String]) -> usize {
    opened
        .iter()
        .filter(|p| p.as_str() == "records.data")
        .count()
}

async fn openable(db: &TestDb, data: &Path, vault: &Vault, contexts: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |place: String, value: &[u8]| {
        if contexts
            .iter()
            .any(|c| vault.open(value, c.as_bytes()).is_ok())
        {
            found.push(place);
        }
    };
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&pool)
                .await
                .unwrap();
        for table in tables {
            let columns: Vec<(i64, String, String, i64, Option<String>, i64)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("PRAGMA table_info({table})")))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            for (_, column, _, _, _, _) in columns {
                let values: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT \"{column}\" FROM \"{table}\" WHERE typeof(\"{column}\") = 'blob'"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                for value in values {
                    check(format!("{table}.{column}"), &value);
                }
            }
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type = 'bytea'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(!columns.is_empty());
        for (table, column) in columns {
            let values: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT \"{column}\" FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            for value in values {
                check(format!("{table}.{column}"), &value);
            }
        }
        pool.close().await;
    }
    for entry in walk(data) {
        let Ok(file) = std::fs::File::open(&entry) else {
            continue;
        };
        if let Ok(mut reader) = vault.reader(std::io::BufReader::new(file)) {
            let mut sink = Vec::new();
            if std::io::Read::read_to_end(&mut reader, &mut sink).is_ok() {
                found.push(entry.display().to_string());
            }
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn project_vault(server: &TestServer, project: &str) -> Arc<Vault> {
    server
        .state
        .ingest
        .vault(project.parse().unwrap())
        .await
        .unwrap()
}

async fn story(db: TestDb) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(db).await;
    // Project A: 12 users, a real run into the peer (11 created, u-9 rejected).
    let (owner, token, base) = ready_as(
        &server,
        &peer.base_url,
        PEER_TOKEN,
        "production",
        12,
        "owner",
    )
    .await;
    let a = base.rsplit('/').next().unwrap().to_string();
    impact_computed(&server, &token, &base).await;
    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let real_id = started["run"]["id"].as_str().unwrap().to_string();
    let real = until(
        &server,
        &token,
        &format!("{base}/runs/{real_id}"),
        &["succeeded", "failed"],
    )
    .await;
    assert_eq!(real["run"]["counts"]["created"], 11, "{real}");

    // Project B: two uploads, the second bringing three of the first's users again.
    let (status, b) = send(
        &server,
        Method::POST,
        "/api/v1/projects",
        &token,
        Some(json!({"name": "Second", "source_kind": "csv", "description": ""})),
    )
    .await;
    assert_eq!(status, 201, "{b}");
    let b = b["id"].as_str().unwrap().to_string();
    let b_base = format!("/api/v1/projects/{b}");
    let first = upload(&server, &b, &token, "first.csv", export("b", 6).into()).await;
    settled(&server, &token, first["id"].as_str().unwrap()).await;
    let second_csv: String = export("b", 6)
        .lines()
        .take(1)
        .chain(export("b", 9).lines().skip(4))
        .map(|l| format!("{l}\n"))
        .collect();
    let second = upload(&server, &b, &token, "second.csv", second_csv.into()).await;
    settled(&server, &token, second["id"].as_str().unwrap()).await;

    let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();
    let (vault_a, vault_b) = (
        project_vault(&server, &a).await,
        project_vault(&server, &b).await,
    );
    let contexts_a = contexts(&a, &ids("u", 12), std::slice::from_ref(&real_id));
    let contexts_b = contexts(&b, &ids("b", 9), &[]);
    let records_of_b = || async {
        records_in(&openable(&server.db, server.data_dir(), &vault_b, &contexts_b).await)
    };
    // The scan sees what is there: both projects' records, the target's secrets and
    // the uploads' files open before any purge.
    let before_a = openable(&server.db, server.data_dir(), &vault_a, &contexts_a).await;
    assert!(records_in(&before_a) == 12, "{before_a:?}");
    assert!(
        before_a.iter().any(|p| p == "targets.sealed_secrets"),
        "{before_a:?}"
    );
    assert!(
        before_a.iter().any(|p| p.ends_with(".sealed")),
        "{before_a:?}"
    );
    assert_eq!(records_of_b().await, 9);

    // The retention as it stands, then 30 days after the real run, keeping both.
    let (status, view) = send(
        &server,
        Method::GET,
        &format!("{base}/retention"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        view["holding"],
        json!({"records": 12, "uploads": 1, "crosswalk_rows": 11}),
        "{view}"
    );
    assert_eq!(view["own_key"], true);
    assert_eq!(view["purge_due_at"], Value::Null);
    let (status, bad) = send(
        &server,
        Method::PUT,
        &format!("{base}/retention"),
        &token,
        Some(json!({"days": 0, "keep_crosswalk": true, "keep_report": true})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["error"]["field"], "days", "{bad}");
    let (status, view) = send(
        &server,
        Method::PUT,
        &format!("{base}/retention"),
        &token,
        Some(json!({"days": 30, "keep_crosswalk": true, "keep_report": true})),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert!(view["purge_due_at"].is_string(), "{view}");
    // Not due yet: nothing purged.
    assert!(server.state.ferry.purge_due().await.unwrap().is_empty());

    // Administrators may read the retention, not change it or purge.
    let admin = server.token(&owner, "admin", "admin").await;
    let (status, _) = send(
        &server,
        Method::GET,
        &format!("{base}/retention"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        Method::POST,
        &format!("{base}/purge"),
        &admin,
        Some(json!({"confirm": "Imports"})),
    )
    .await;
    assert_eq!(status, 403);

    // Thirty-one days later (the run's end moved back), the scheduled purge runs.
    move_back(&server.db, &real_id, 31).await;
    let purged = server.state.ferry.purge_due().await.unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].to_string(), a);
    let after_a = openable(&server.db, server.data_dir(), &vault_a, &contexts_a).await;
    assert!(
        after_a.is_empty(),
        "still opens after the purge: {after_a:?}"
    );
    // The server's key opens none of them either (they were never under it).
    let key =
        server::security::SecretKey::load_or_create(&server.data_dir().join("secret.key")).unwrap();
    let master = Vault::new(key.bytes());
    assert!(
        openable(&server.db, server.data_dir(), &master, &contexts_a)
            .await
            .is_empty()
    );
    // Project B is untouched.
    assert_eq!(records_of_b().await, 9);

    // A is read only and says so; what was kept stays readable.
    let (status, project) = send(
        &server,
        Method::GET,
        &format!("/api/v1/projects/{a}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(project["purged_at"].is_string(), "{project}");
    let (status, refused) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": crate::runs_http::rules()})),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("purged"),
        "{refused}"
    );
    let (status, refused) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 2, "seed": 1})),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    let (status, report) = send(
        &server,
        Method::GET,
        &format!("{base}/report"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert!(report["purged_at"].is_string(), "{report}");
    assert_eq!(report["standing"]["migrated"], 11, "{report}");
    // The crosswalk was kept: the run's created users still name their target ids.
    let kept = crate::passwords_http::crosswalk(&server, &token, &base, &real_id).await;
    assert_eq!(kept.len(), 11);
    let (_, view) = send(
        &server,
        Method::GET,
        &format!("{base}/retention"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        view["holding"],
        json!({"records": 0, "uploads": 0, "crosswalk_rows": 11}),
        "{view}"
    );
    let (status, again) = send(
        &server,
        Method::POST,
        &format!("{base}/purge"),
        &token,
        Some(json!({"confirm": "Imports"})),
    )
    .await;
    assert_eq!(status, 409, "{again}");
    let (_, audit) = send(
        &server,
        Method::GET,
        &format!("/api/v1/audit?project={a}"),
        &token,
        None,
    )
    .await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "ProjectPurged")
        .expect("the purge is in the audit log");
    assert!(
        entry["detail"].as_str().unwrap().contains("12 records"),
        "{entry}"
    );

    // B: the first upload purged alone takes the three users only it brought.
    let (status, purged) = send(
        &server,
        Method::POST,
        &format!("{b_base}/uploads/{}/purge", first["id"].as_str().unwrap()),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(purged["records"], 3, "{purged}");
    assert!(
        !server
            .state
            .ingest
            .path(first["id"].as_str().unwrap().parse().unwrap())
            .exists()
    );
    let (_, view) = send(
        &server,
        Method::GET,
        &format!("{b_base}/retention"),
        &token,
        None,
    )
    .await;
    assert_eq!(view["holding"]["records"], 6, "{view}");
    assert_eq!(view["holding"]["uploads"], 1, "{view}");

    // Then the whole of B on request, keeping nothing: a wrong name is refused first.
    let (status, _) = send(
        &server,
        Method::PUT,
        &format!("{b_base}/retention"),
        &token,
        Some(json!({"days": null, "keep_crosswalk": false, "keep_report": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, wrong) = send(
        &server,
        Method::POST,
        &format!("{b_base}/purge"),
        &token,
        Some(json!({"confirm": "second"})),
    )
    .await;
    assert_eq!(status, 422, "{wrong}");
    assert_eq!(wrong["error"]["field"], "confirm");
    let (status, outcome) = send(
        &server,
        Method::POST,
        &format!("{b_base}/purge"),
        &token,
        Some(json!({"confirm": "Second"})),
    )
    .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["records"], 6, "{outcome}");
    assert_eq!(outcome["key_destroyed"], true, "{outcome}");
    assert_eq!(outcome["kept_report"], false, "{outcome}");
    let after_b = openable(&server.db, server.data_dir(), &vault_b, &contexts_b).await;
    assert!(
        after_b.is_empty(),
        "still opens after the purge: {after_b:?}"
    );
    let (status, gone) = send(
        &server,
        Method::GET,
        &format!("{b_base}/report"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404, "{gone}");
    let (status, refused) = send(
        &server,
        Method::POST,
        &format!("/api/v1/projects/{b}/uploads?file_name=late.csv"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    server.stop().await;
}

/// Moves the run's end `days` back, as if that long had passed.
async fn move_back(db: &TestDb, run: &str, days: i64) {
    let shift = days * 86_400_000;
    let run = uuid::Uuid::parse_str(run).unwrap();
    let sql = "UPDATE jobs SET finished_at = finished_at - $1 WHERE id = $2";
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .bind(shift)
            .bind(run)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .bind(shift)
            .bind(run)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_leave_nothing_of_a_project_readable_on_sqlite() {
    story(sqlite_db()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_leave_nothing_of_a_project_readable_on_postgres() {
    if let Some(db) = postgres_db().await {
        story(db).await;
    }
}
