//! Runs over HTTP against the real SCIM peer: a test run on a sample (counts that add
//! up, every user created once with its groups, read back and compared, the crosswalk,
//! failed records by class, a retry and a rollback) on SQLite and PostgreSQL; the
//! controls (pause, resume, cancel); the stop on 401 and the pause on a failure rate;
//! the real run's pre-flight checks, its window, the scheduler's start and pause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{
    TestDb, TestServer, owner_with_token, postgres_db,
    scim::{Chaos, Fault, FaultProxy, PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

pub(crate) async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    server.send(method, path, token, body).await
}

/// `n` users; every tenth has an address the mapping rejects. Groups by remainder.
pub fn export(prefix: &str, n: usize) -> String {
    let mut csv = String::from("id,username,email,first_name,last_name,groups,department\n");
    for i in 0..n {
        let email = if i % 10 == 9 {
            format!("not an address {i}")
        } else {
            format!("{prefix}{i}@corp.example")
        };
        let groups = ["staff", "staff;eng", "ops"][i % 3];
        csv.push_str(&format!(
            "{prefix}-{i},{prefix}{i},{email},Given{i},Family{i},{groups},Dept{}\n",
            i % 4
        ));
    }
    csv
}

pub(crate) fn rules() -> Value {
    json!([
        {"target": "userName", "source": "email", "transforms": [{"op": "email"}]},
        {"target": "name.givenName", "source": "given_name"},
        {"target": "name.familyName", "source": "family_name"},
        {"target": "emails[type eq \"work\"].value", "source": "email", "transforms": [{"op": "email"}]},
        {"target": "title", "source": "attributes.department"}
    ])
}

/// A project with `n` users read, a target (`role`) on the peer, tested, and the
/// mapping saved: ready to run.
pub(crate) async fn ready(
    server: &TestServer,
    peer_url: &str,
    secret: &str,
    role: &str,
    n: usize,
) -> (String, String) {
    let (_owner, token, base) = ready_as(server, peer_url, secret, role, n, "admin").await;
    (token, base)
}

/// [`ready`] with 12 users (u-9's address rejected by the mapping), the impact
/// computed and a real run into the target at `url` finished with 11 created: the
/// token, the base path, and the run's view.
pub(crate) async fn moved(server: &TestServer, url: &str) -> (String, String, Value) {
    let (token, base) = ready(server, url, PEER_TOKEN, "production", 12).await;
    impact_computed(server, &token, &base).await;
    let (status, started) = send(
        server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let path = format!("{base}/runs/{}", started["run"]["id"].as_str().unwrap());
    let real = until(server, &token, &path, &["succeeded", "failed"]).await;
    adds_up(&real["run"]);
    assert_eq!(real["run"]["counts"]["created"], 11, "{real}");
    (token, base, real)
}

/// As [`ready`], with an API token of `token_role`.
pub(crate) async fn ready_as(
    server: &TestServer,
    peer_url: &str,
    secret: &str,
    role: &str,
    n: usize,
    token_role: &str,
) -> (Client, String, String) {
    let (owner, project, token) = owner_with_token(server, token_role).await;
    let created = upload(server, &project, &token, "users.csv", export("u", n).into()).await;
    let read = settled(server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["rows_ok"], n as u64, "{read}");
    let base = format!("/api/v1/projects/{project}");
    target(server, &token, &base, role, peer_url, secret).await;
    let (status, saved) = send(
        server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": rules()})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["problems"], json!([]), "{saved}");
    (owner, token, base)
}

pub(crate) async fn target(
    server: &TestServer,
    token: &str,
    base: &str,
    role: &str,
    url: &str,
    secret: &str,
) {
    let input = json!({
        "preset": "generic",
        "base_url": url,
        "auth": {"type": "bearer"},
        "secret": secret,
        "on_existing": "skip",
    });
    let (status, view) = send(
        server,
        Method::PUT,
        &format!("{base}/targets/{role}"),
        token,
        Some(input),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    let (status, tested) = send(
        server,
        Method::POST,
        &format!("{base}/targets/{role}/test"),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{tested}");
}

/// The counts of a run add up to its total.
pub(crate) fn adds_up(run: &Value) {
    let counts = &run["counts"];
    let sum: u64 = [
        "pending",
        "in_flight",
        "created",
        "updated",
        "skipped",
        "failed",
        "deleted",
    ]
    .iter()
    .map(|k| counts[k].as_u64().unwrap())
    .sum();
    assert_eq!(sum, run["total"].as_u64().unwrap(), "{run}");
}

/// Waits until the run is in one of `states` (bounded), checking the counts on the way.
pub(crate) async fn until(server: &TestServer, token: &str, path: &str, states: &[&str]) -> Value {
    for _ in 0..600 {
        let (status, view) = send(server, Method::GET, path, token, None).await;
        assert_eq!(status, 200, "{view}");
        adds_up(&view["run"]);
        if states.contains(&view["run"]["state"].as_str().unwrap()) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run at {path} never reached {states:?}");
}

async fn story(db: TestDb, peer: &Peer) {
    let server = TestServer::start(db).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 40).await;

    // Bad requests name their field.
    for (body, field) in [
        (json!({"size": 0}), "size"),
        (json!({"size": 5, "target": "staging"}), "target"),
        (
            json!({"size": 5, "tuning": {"concurrency": 99}}),
            "concurrency",
        ),
        (json!({"size": 5, "target": "production"}), "target"),
    ] {
        let (status, error) = send(
            &server,
            Method::POST,
            &format!("{base}/runs/test"),
            &token,
            Some(body),
        )
        .await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }

    // A test run on a random sample of 20, seeded.
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 20, "seed": 7, "tuning": {"batch_size": 6, "concurrency": 2}})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["kind"], "test_run");
    assert_eq!(run["total"], 20);
    adds_up(&run);
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());

    let view = until(&server, &token, &run, &["succeeded", "failed"]).await;
    let counts = &view["run"]["counts"];
    let failed = counts["failed"].as_u64().unwrap();
    let created = counts["created"].as_u64().unwrap();
    assert_eq!(created + failed, 20, "{view}");
    assert!(failed >= 1, "every tenth address is rejected: {view}");
    assert_eq!(view["run"]["state"], "failed");
    assert_eq!(view["settings"]["sample"]["seed"], 7);
    assert_eq!(view["classes"][0]["error_class"], "mapping", "{view}");
    assert_eq!(view["classes"][0]["count"], failed);

    // Every created user is in the peer exactly once, under its legacy id.
    let (_, records) = send(
        &server,
        Method::GET,
        &format!("{run}/records?state=created&limit=100"),
        &token,
        None,
    )
    .await;
    let records = records["records"].as_array().unwrap().clone();
    assert_eq!(records.len() as u64, created);
    for r in &records {
        assert_eq!(
            peer.count("externalId", r["source_id"].as_str().unwrap())
                .await,
            1
        );
        assert!(r["scim_id"].as_str().is_some());
    }
    // Failed ones are listed by class with their detail, values left out.
    let (_, failures) = send(
        &server,
        Method::GET,
        &format!("{run}/records?error_class=mapping"),
        &token,
        None,
    )
    .await;
    let failures = failures["records"].as_array().unwrap().clone();
    assert_eq!(failures.len() as u64, failed);
    assert!(
        failures[0]["error_detail"]
            .as_str()
            .unwrap()
            .starts_with("rule 1:")
    );
    assert!(
        !failures
            .iter()
            .any(|f| f.to_string().contains("not an address"))
    );
    let (status, error) = send(
        &server,
        Method::GET,
        &format!("{run}/records?state=lost"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 422, "{error}");

    // The groups followed, with their members.
    assert!(view["groups"]["created"].as_u64().unwrap() >= 2, "{view}");
    let groups = peer.get("/Groups").await;
    let staff = groups["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["displayName"] == "staff")
        .expect("the staff group");
    assert!(!staff["members"].as_array().unwrap().is_empty());

    // Read back: every created user compared, the target keeps what was sent.
    let readback = &view["readback"];
    assert_eq!(readback["checked"], created, "{readback}");
    assert_eq!(readback["missing"], 0);
    assert_eq!(
        readback["matching"].as_u64().unwrap()
            + readback["mismatches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["source_id"].as_str().unwrap())
                .collect::<std::collections::HashSet<_>>()
                .len() as u64,
        created,
        "{readback}"
    );

    // The crosswalk: a header and one line per created user.
    let crosswalk = Client::new()
        .get(server.url(&format!("{run}/crosswalk.csv")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(crosswalk.status(), 200);
    let text = crosswalk.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "source_id,scim_id,state");
    assert_eq!(lines.len() as u64, created + 1, "{text}");

    // Before anything changed, the retry plan says so: the mapping's rejects would
    // fail again. A retry must be confirmed with its number of records.
    let (status, plan) = send(&server, Method::GET, &format!("{run}/retry"), &token, None).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["failed"], failed, "{plan}");
    assert_eq!(plan["failed_on_mapping"], failed, "{plan}");
    assert_eq!(plan["changed"], json!([]), "{plan}");
    assert!(
        plan["checks"].is_null(),
        "a test target's retry has no pre-flight"
    );
    let (status, error) = send(
        &server,
        Method::POST,
        &format!("{run}/retry"),
        &token,
        Some(json!({"confirm": failed + 1})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "confirm");

    // Retry the failures after fixing the mapping: the address is no longer required
    // to be one (a plain userName).
    let mut fixed = rules();
    fixed[0] = json!({"target": "userName", "source": "username"});
    fixed[3] = json!({"target": "nickName", "source": "username"});
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": fixed})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    let (_, plan) = send(&server, Method::GET, &format!("{run}/retry"), &token, None).await;
    assert_eq!(
        plan["changed"],
        json!(["the mapping: version 2 (the run used version 1)"]),
        "{plan}"
    );
    let (status, retry) = send(
        &server,
        Method::POST,
        &format!("{run}/retry"),
        &token,
        Some(json!({"confirm": failed})),
    )
    .await;
    assert_eq!(status, 201, "{retry}");
    assert_eq!(retry["kind"], "retry");
    assert_eq!(retry["total"], failed);
    let retry_run = format!("{base}/runs/{}", retry["id"].as_str().unwrap());
    let retried = until(&server, &token, &retry_run, &["succeeded", "failed"]).await;
    assert_eq!(retried["run"]["state"], "succeeded", "{retried}");
    assert_eq!(retried["run"]["counts"]["created"], failed);

    // Roll the test run back: the confirmation must match.
    let (status, error) = send(
        &server,
        Method::POST,
        &format!("{run}/rollback"),
        &token,
        Some(json!({"confirm": created + 1})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "confirm");
    let (status, rollback) = send(
        &server,
        Method::POST,
        &format!("{run}/rollback"),
        &token,
        Some(json!({"confirm": created})),
    )
    .await;
    assert_eq!(status, 201, "{rollback}");
    let rollback_run = format!("{base}/runs/{}", rollback["id"].as_str().unwrap());
    let rolled = until(&server, &token, &rollback_run, &["succeeded", "failed"]).await;
    assert_eq!(rolled["run"]["counts"]["deleted"], created, "{rolled}");
    for r in &records {
        assert_eq!(
            peer.count("externalId", r["source_id"].as_str().unwrap())
                .await,
            0
        );
    }
    // The groups the test run created: those the retry's users are in are kept, and
    // said so; those left empty are deleted.
    let made = view["groups"]["created"].as_u64().unwrap();
    let kept = rolled["groups"]["kept"].as_u64().unwrap();
    assert!(kept >= 1, "{rolled}");
    assert_eq!(
        rolled["groups"]["deleted"].as_u64().unwrap() + kept,
        made,
        "{rolled}"
    );
    // Rolling the retry back too leaves them empty: then they go (one gone already
    // counts as deleted).
    let (status, rollback) = send(
        &server,
        Method::POST,
        &format!("{retry_run}/rollback"),
        &token,
        Some(json!({"confirm": failed})),
    )
    .await;
    assert_eq!(status, 201, "{rollback}");
    let second = format!("{base}/runs/{}", rollback["id"].as_str().unwrap());
    let rolled = until(&server, &token, &second, &["succeeded", "failed"]).await;
    assert_eq!(rolled["groups"]["deleted"], made, "{rolled}");
    let groups = peer.get("/Groups").await;
    assert_eq!(groups["totalResults"], 0, "{groups}");

    // The history lists all three, newest first.
    let (_, history) = send(&server, Method::GET, &format!("{base}/runs"), &token, None).await;
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rollback", "rollback", "retry", "test_run"]);

    // A crosswalk cut short by a database error never looks complete: the download
    // fails instead of ending as though it were whole.
    let gone = "ALTER TABLE job_records RENAME TO job_records_gone";
    if server.db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&server.db.url).await.unwrap();
        sqlx::query(gone).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&server.db.url).await.unwrap();
        sqlx::query(gone).execute(&pool).await.unwrap();
    }
    let cut = Client::new()
        .get(server.url(&format!("{run}/crosswalk.csv")))
        .bearer_auth(&token)
        .send()
        .await;
    let whole = match cut {
        Ok(response) if response.status() == 200 => response.text().await.ok(),
        Ok(_) | Err(_) => None,
    };
    assert!(
        whole.is_none(),
        "a broken crosswalk arrived as whole: {whole:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_run_on_sqlite_settles_every_record_once_and_rolls_back() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    story(sqlite_db(), &peer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_run_on_postgres_settles_every_record_once_and_rolls_back() {
    let (Some(db), Some(peer)) = (postgres_db().await, Peer::start().await) else {
        return;
    };
    story(db, &peer).await;
}

/// Waits (polling the run) until `done` holds of it; fails after `within`.
async fn wait_for_run(
    server: &TestServer,
    run: &str,
    token: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    loop {
        let (_, view) = send(server, Method::GET, run, token, None).await;
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < within,
            "the run never got there: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_ends_a_wait_for_the_targets_retry_after_at_once() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    // The target asks for an hour's patience before the first batch.
    proxy.inject(
        "POST /v2/Bulk",
        Fault::Status {
            code: 429,
            retry_after: Some("3600".into()),
        },
    );
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &proxy.base_url, PEER_TOKEN, "test", 20).await;
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 20})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    let started = std::time::Instant::now();
    while proxy.count("POST /v2/Bulk") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing was sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, paused) = send(&server, Method::POST, &format!("{run}/pause"), &token, None).await;
    assert_eq!(status, 200, "{paused}");
    // The worker stops waiting: the batch goes back to pending (the export's two bad
    // e-mail addresses fail by the mapping, never sent), nothing failed for the wait,
    // and the counts add up, long before the hour is over.
    let view = wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        v["run"]["counts"]["in_flight"] == 0
    })
    .await;
    adds_up(&view["run"]);
    assert_eq!(view["run"]["state"], "paused");
    assert_eq!(view["run"]["counts"]["failed"], 2, "{view}");
    assert_eq!(view["classes"][0]["error_class"], "mapping", "{view}");
    assert_eq!(view["run"]["counts"]["created"], 0, "{view}");
    assert_eq!(view["run"]["counts"]["pending"], 18, "{view}");
    assert_eq!(
        proxy.count("POST /v2/Bulk"),
        1,
        "nothing is sent after the pause"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_found_after_a_lost_answer_are_settled_before_their_batch_ends() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let proxy = FaultProxy::start(peer.port).await;
    // The peer creates the batch's users but the answer is lost; the listing of what
    // it created since is refused, so they are looked up 50 at a time, and the second
    // look-up is slow to answer.
    proxy.inject("POST /v2/Bulk", Fault::DropAnswer);
    proxy.inject(
        "filter=meta.created",
        Fault::Status {
            code: 400,
            retry_after: None,
        },
    );
    proxy.inject("filter=externalId", Fault::Slow(Duration::ZERO));
    proxy.inject("filter=externalId", Fault::Slow(Duration::from_secs(6)));
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &proxy.base_url, PEER_TOKEN, "test", 120).await;
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 120, "tuning": {"batch_size": 120, "concurrency": 1}})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    // The first look-up's 50 users are settled while the batch still waits for the
    // second: a crash now would not look them up again.
    let early = wait_for_run(&server, &run, &token, Duration::from_secs(30), |v| {
        v["run"]["counts"]["created"].as_u64().unwrap_or(0) >= 50
    })
    .await;
    adds_up(&early["run"]);
    assert_eq!(early["run"]["counts"]["created"], 50, "{early}");
    assert!(
        early["run"]["counts"]["in_flight"].as_u64().unwrap() > 0,
        "the batch had ended: {early}"
    );
    let done = wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        v["run"]["counts"]["in_flight"] == 0 && v["run"]["counts"]["pending"] == 0
    })
    .await;
    adds_up(&done["run"]);
    let failed = done["run"]["counts"]["failed"].as_u64().unwrap();
    assert_eq!(
        done["run"]["counts"]["created"].as_u64().unwrap() + failed,
        120
    );
    assert_eq!(done["classes"][0]["error_class"], "mapping", "{done}");
    assert_eq!(
        proxy.count("POST /v2/Bulk"),
        1,
        "a found user was sent again"
    );
    assert_eq!(peer.count("externalId", "u-1").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_pause_resume_and_cancel_with_counts_that_add_up() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 60).await;
    // Slow on purpose: 20 users a second in batches of 4.
    let slow = json!({"size": 54, "tuning": {"batch_size": 4, "concurrency": 1, "max_users_per_second": 20}});
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(slow.clone()),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    // Paused once something has settled (a wait on the run's state, not on a clock).
    wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        v["run"]["counts"]["created"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let (status, paused) = send(&server, Method::POST, &format!("{run}/pause"), &token, None).await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    assert_eq!(paused["pause_reason"]["kind"], "manual");
    // The batch in hand settles; then nothing moves.
    wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        v["run"]["counts"]["in_flight"] == 0
    })
    .await;
    let (_, first) = send(&server, Method::GET, &run, &token, None).await;
    adds_up(&first["run"]);
    assert_eq!(first["run"]["counts"]["in_flight"], 0, "{first}");
    assert_eq!(first["paused_because"], "paused by hand");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, second) = send(&server, Method::GET, &run, &token, None).await;
    assert_eq!(first["run"]["counts"], second["run"]["counts"]);
    let settled_before = 54 - first["run"]["counts"]["pending"].as_u64().unwrap();
    assert!(settled_before > 0 && settled_before < 54, "{first}");
    // One run at a time: a paused one still holds the project.
    let (status, busy) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 5})),
    )
    .await;
    assert_eq!(status, 409, "{busy}");
    assert!(
        busy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another run")
    );

    // Refused moves say why.
    let (status, error) = send(&server, Method::POST, &format!("{run}/pause"), &token, None).await;
    assert_eq!(status, 409, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paused")
    );

    let (status, resumed) = send(
        &server,
        Method::POST,
        &format!("{run}/resume"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{resumed}");
    // Cancelled once the resumed run has moved on.
    wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        54 - v["run"]["counts"]["pending"].as_u64().unwrap_or(54) > settled_before
    })
    .await;
    let (status, cancelled) = send(
        &server,
        Method::POST,
        &format!("{run}/cancel"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    let last = wait_for_run(&server, &run, &token, Duration::from_secs(60), |v| {
        v["run"]["counts"]["in_flight"] == 0
    })
    .await;
    adds_up(&last["run"]);
    assert_eq!(last["run"]["counts"]["in_flight"], 0, "{last}");
    assert!(last["run"]["counts"]["pending"].as_u64().unwrap() > 0);
    let (status, _) = send(
        &server,
        Method::POST,
        &format!("{run}/resume"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 409);
    // What the cancelled run failed waits for review, once each.
    let failed = last["run"]["counts"]["failed"].as_u64().unwrap();
    let mut queued = 0;
    for _ in 0..100 {
        let (_, queue) = send(
            &server,
            Method::GET,
            &format!("{base}/review?run={}", last["run"]["id"].as_str().unwrap()),
            &token,
            None,
        )
        .await;
        queued = queue["matching"].as_u64().unwrap();
        if queued == failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(queued, failed, "the cancelled run's failures in the queue");
    // A created user is in the target once, whatever the pauses.
    let (_, created) = send(
        &server,
        Method::GET,
        &format!("{run}/records?state=created&limit=100"),
        &token,
        None,
    )
    .await;
    for r in created["records"].as_array().unwrap() {
        assert_eq!(
            peer.count("externalId", r["source_id"].as_str().unwrap())
                .await,
            1
        );
    }

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_stops_the_run_and_a_fixed_one_resumes_it() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 20).await;
    // The token changes after the connection test: the target answers 401.
    target(&server, &token, &base, "test", &peer.base_url, PEER_TOKEN).await;
    let (status, _) = send(
        &server,
        Method::PUT,
        &format!("{base}/targets/test"),
        &token,
        Some(
            json!({"preset": "generic", "base_url": peer.base_url, "auth": {"type": "bearer"},
            "secret": "wrong-token", "on_existing": "skip"}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 18})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    let view = until(&server, &token, &run, &["paused"]).await;
    assert_eq!(
        view["run"]["pause_reason"]["kind"], "unauthorized",
        "{view}"
    );
    assert_eq!(view["run"]["pause_reason"]["status"], 401);
    assert!(
        view["paused_because"]
            .as_str()
            .unwrap()
            .contains("credentials")
    );
    // Nothing was lost: what was not sent waits.
    assert_eq!(view["run"]["counts"]["created"], 0);
    assert!(view["run"]["counts"]["pending"].as_u64().unwrap() > 0);

    // Credentials fixed, resumed: it finishes.
    target(&server, &token, &base, "test", &peer.base_url, PEER_TOKEN).await;
    let (status, _) = send(
        &server,
        Method::POST,
        &format!("{run}/resume"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let done = until(&server, &token, &run, &["succeeded", "failed"]).await;
    assert_eq!(
        done["run"]["counts"]["created"].as_u64().unwrap()
            + done["run"]["counts"]["failed"].as_u64().unwrap(),
        18
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_run_drive_pauses_the_run_with_the_reason_and_it_resumes() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 20).await;
    server.state.background.panic_next("run drive");
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 18})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    let view = until(&server, &token, &run, &["paused"]).await;
    adds_up(&view["run"]);
    assert_eq!(view["run"]["pause_reason"]["kind"], "cannot_run", "{view}");
    let because = view["paused_because"].as_str().unwrap();
    assert!(because.contains("internal error"), "{because}");
    // Ferry keeps serving, and the run, resumed, finishes.
    let (status, _) = send(&server, Method::GET, &run, &token, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &server,
        Method::POST,
        &format!("{run}/resume"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let done = until(&server, &token, &run, &["succeeded", "failed"]).await;
    adds_up(&done["run"]);
    assert_eq!(
        done["run"]["counts"]["created"].as_u64().unwrap()
            + done["run"]["counts"]["failed"].as_u64().unwrap(),
        18
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_failures_pauses_the_run() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 30).await;
    // Every record fails its mapping: userName from a field nobody has.
    let mut broken = rules();
    broken[0] = json!({"target": "userName", "source": "attributes.nickname", "required": true});
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": broken})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    let (status, run) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/test"),
        &token,
        Some(json!({"size": 27, "tuning": {"batch_size": 3, "concurrency": 1, "failure_window": 6, "failure_threshold": 5}})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    let view = until(&server, &token, &run, &["paused"]).await;
    assert_eq!(
        view["run"]["pause_reason"],
        json!({"kind": "failure_rate", "failed": 6, "of": 6}),
        "{view}"
    );
    assert_eq!(view["paused_because"], "6 of the last 6 records failed");
    assert_eq!(view["run"]["counts"]["failed"], 6);
    assert_eq!(view["run"]["counts"]["pending"], 21);
    server.stop().await;
}

/// Colliding records block the real run with what to do: the rule to change, or an
/// administrator accepts that exactly those records fail into review (audited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_records_block_the_real_run_with_a_way_forward() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "production", 30).await;
    // Four departments for thirty users: 26 records take a user name another took.
    let colliding = json!([
        {"target": "userName", "source": "attributes.department"},
        {"target": "name.givenName", "source": "given_name"}
    ]);
    let (status, saved) = send(
        &server,
        Method::PUT,
        &format!("{base}/mapping"),
        &token,
        Some(json!({"rules": colliding})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    impact_computed_with(&server, &token, &base, colliding).await;
    // The colliding values are the users' own: masked, the record ids say where.
    let (_, impact) = send(
        &server,
        Method::GET,
        &format!("{base}/mapping/impact"),
        &token,
        None,
    )
    .await;
    let example = &impact["report"]["collisions"][0];
    assert!(
        example["value"].as_str().unwrap().contains('•'),
        "{example}"
    );
    assert!(!impact.to_string().contains("Dept1"), "{impact}");
    let preflight = |accept: Option<u64>| {
        let path = match accept {
            Some(n) => format!("{base}/runs/preflight?accept_collisions={n}"),
            None => format!("{base}/runs/preflight"),
        };
        let (server, token) = (&server, &token);
        async move {
            let (status, checks) = send(server, Method::GET, &path, token, None).await;
            assert_eq!(status, 200, "{checks}");
            checks["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "data")
                .unwrap()
                .clone()
        }
    };
    let data = preflight(None).await;
    assert_eq!(data["passed"], false, "{data}");
    assert_eq!(data["acceptable"], 26, "{data}");
    let detail = data["detail"].as_str().unwrap();
    for words in ["26 records", "userName (rule 1)", "source_id", "accept"] {
        assert!(detail.contains(words), "{words:?} in {detail}");
    }
    // Accepting a number other than the one reported (the data changed since) is no
    // acceptance.
    let real = |accept: u64| {
        json!({"accept_collisions": accept, "window": {
        "start": (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M").to_string(),
        "end": (chrono::Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M").to_string(),
        "zone": "UTC"}})
    };
    let (status, error) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(real(25)),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let data = preflight(Some(26)).await;
    assert_eq!(data["passed"], true, "{data}");
    assert!(
        data["detail"]
            .as_str()
            .unwrap()
            .contains("26 colliding on userName (rule 1) accepted"),
        "{data}"
    );
    let (status, created) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(real(26)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let audit = server.api_get("/api/v1/audit", &token).await.to_string();
    assert!(
        audit.contains("accepted 26 colliding records to fail into review"),
        "{audit}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_run_waits_for_its_checks_and_its_window() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "production", 30).await;

    // Without the impact of the mapping, the data check fails, and the run is refused.
    let (status, checks) = send(
        &server,
        Method::GET,
        &format!("{base}/runs/preflight"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{checks}");
    let failing: Vec<&str> = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["data"], "{checks}");
    let (status, error) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "preflight");

    // The impact computed: the checks pass.
    impact_computed(&server, &token, &base).await;
    let (_, checks) = send(
        &server,
        Method::GET,
        &format!("{base}/runs/preflight"),
        &token,
        None,
    )
    .await;
    assert!(
        checks["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "{checks}"
    );

    // A window in the past is refused; one tomorrow schedules the run.
    let now = chrono::Utc::now();
    let local = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let (status, error) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(
            json!({"window": {"start": local(now - chrono::Duration::hours(3)),
            "end": local(now - chrono::Duration::hours(2)), "zone": "UTC"}}),
        ),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "window.end");
    let (status, created) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(json!({"window": {"start": local(now + chrono::Duration::days(1)),
            "end": local(now + chrono::Duration::days(1) + chrono::Duration::hours(4)), "zone": "Europe/Berlin"}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["run"]["state"], "scheduled");
    assert_eq!(created["run"]["total"], 30);
    let run = format!("{base}/runs/{}", created["run"]["id"].as_str().unwrap());
    let (_, view) = send(&server, Method::GET, &run, &token, None).await;
    assert_eq!(view["window"]["phase"], "before", "{view}");
    assert!(view["window"]["seconds"].as_u64().unwrap() > 20 * 3600);

    // Given a window open now, the scheduler starts it; it finishes inside it.
    let (status, moved) = send(
        &server,
        Method::PUT,
        &format!("{run}/window"),
        &token,
        Some(json!({"start": local(now - chrono::Duration::minutes(1)),
            "end": local(now + chrono::Duration::hours(1)), "zone": "UTC"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let done = until(&server, &token, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["run"]["counts"]["created"], 27, "{done}");
    assert_eq!(done["run"]["counts"]["failed"], 3);
    assert!(done["readback"].is_null(), "only test runs are read back");
    // A retry against production passes the checks that concern it, run now.
    let (status, plan) = send(&server, Method::GET, &format!("{run}/retry"), &token, None).await;
    assert_eq!(status, 200, "{plan}");
    let names: Vec<&str> = plan["checks"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"target") && !names.contains(&"data"),
        "{plan}"
    );
    assert!(
        plan["checks"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "{plan}"
    );

    // A window that closes while the run is under way: the scheduler pauses it; given
    // the next window, it resumes there and finishes (everyone exists now: skipped).
    let now = chrono::Utc::now();
    let exact = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let (status, created) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/real"),
        &token,
        Some(
            json!({"window": {"start": exact(now - chrono::Duration::minutes(1)),
            "end": exact(now + chrono::Duration::seconds(3)), "zone": "UTC"},
            "tuning": {"concurrency": 1, "max_users_per_second": 4}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let run = format!("{base}/runs/{}", created["run"]["id"].as_str().unwrap());
    let paused = until(&server, &token, &run, &["paused"]).await;
    assert_eq!(
        paused["run"]["pause_reason"]["kind"], "window_ended",
        "{paused}"
    );
    assert_eq!(paused["paused_because"], "the downtime window ended");
    assert_eq!(paused["window"]["phase"], "over");
    let pending = paused["run"]["counts"]["pending"].as_u64().unwrap();
    assert!(pending > 0 && pending < 30, "{paused}");
    let (status, moved) = send(
        &server,
        Method::PUT,
        &format!("{run}/window"),
        &token,
        Some(json!({"start": exact(now - chrono::Duration::minutes(1)),
            "end": exact(now + chrono::Duration::hours(1)), "zone": "UTC"})),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let done = until(&server, &token, &run, &["succeeded", "failed"]).await;
    assert_eq!(done["run"]["counts"]["skipped"], 27, "{done}");
    assert_eq!(
        done["classes"][0]["error_class"], "already_exists",
        "{done}"
    );
    server.stop().await;
}

/// A `ferry` process serving `db` with the data folder `data`, named `instance` (the
/// same name across its restarts), stopped (SIGKILL) when dropped.
pub(crate) struct Process {
    child: std::process::Child,
    pub(crate) base: String,
}

impl Process {
    pub(crate) async fn start(db: &TestDb, data: &std::path::Path, instance: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Each process's warnings go to a file of its own in the data folder, for a
        // drill that went wrong to be read afterwards.
        let log = std::fs::File::create(data.join(format!("ferry-{port}.log"))).ok();
        let out = |log: &Option<std::fs::File>| {
            log.as_ref()
                .and_then(|f| f.try_clone().ok())
                .map_or_else(std::process::Stdio::null, std::process::Stdio::from)
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["--data-dir", data.to_str().unwrap()])
            .args(["--database-url", &db.url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("FERRY_RUN_LEASE_SECS", "2")
            .env("FERRY_INSTANCE", instance)
            .env("FERRY_LOG", "warn")
            .env("FERRY_LOG_FORMAT", "json")
            .stdout(out(&log))
            .stderr(out(&log))
            .spawn()
            .unwrap();
        // Held at once, so that a failed start is killed and waited for on drop.
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..300 {
            if let Ok(r) = Client::new()
                .get(format!("{}/healthz", process.base))
                .send()
                .await
                && r.status().is_success()
            {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ferry did not start");
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    /// Stops it the hard way, as a crash or an OOM kill would.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until the run satisfies `done`; the counts add up on the way.
async fn watch(process: &Process, token: &str, run: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..1200 {
        let (status, view) = process.send(Method::GET, run, token, None).await;
        assert_eq!(status, 200, "{view}");
        adds_up(&view["run"]);
        if done(&view) {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run at {run} never got there");
}

/// Every user the run created is in the peer exactly once, and nothing else is.
async fn created_once(process: &Process, token: &str, run: &str, peer: &Peer) -> u64 {
    let mut after: Option<u64> = None;
    let mut created = 0;
    loop {
        let query = match after {
            Some(a) => format!("{run}/records?state=created&limit=1000&after={a}"),
            None => format!("{run}/records?state=created&limit=1000"),
        };
        let (_, page) = process.send(Method::GET, &query, token, None).await;
        for r in page["records"].as_array().unwrap() {
            created += 1;
            assert_eq!(
                peer.count("externalId", r["source_id"].as_str().unwrap())
                    .await,
                1,
                "{r}"
            );
        }
        match page["next_after"].as_u64() {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    let all = peer.get("/Users?count=1").await;
    assert_eq!(
        all["totalResults"].as_u64().unwrap(),
        created,
        "no user twice, none extra"
    );
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_survives_sigkill_without_losing_or_duplicating_a_user() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 200).await;
    let (db, data) = server.stop_keeping_data().await;

    let first = Process::start(&db, data.path(), "a").await;
    let (status, run) = first
        .send(
            Method::POST,
            &format!("{base}/runs/test"),
            &token,
            Some(json!({"size": 180, "tuning": {"batch_size": 10, "concurrency": 2, "max_users_per_second": 60}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    // Killed mid-run, with batches in flight.
    watch(&first, &token, &run, |v| {
        v["run"]["counts"]["created"].as_u64().unwrap() >= 40
    })
    .await;
    first.kill();

    // Restarted: it takes the run up again (the dead worker's leases expire) and
    // finishes it.
    let second = Process::start(&db, data.path(), "a").await;
    let done = watch(&second, &token, &run, |v| {
        matches!(v["run"]["state"].as_str(), Some("succeeded" | "failed"))
    })
    .await;
    let counts = &done["run"]["counts"];
    assert_eq!(counts["pending"], 0, "{done}");
    assert_eq!(counts["in_flight"], 0);
    assert_eq!(
        counts["created"].as_u64().unwrap() + counts["failed"].as_u64().unwrap(),
        180,
        "{done}"
    );
    let created = created_once(&second, &token, &run, &peer).await;
    assert_eq!(created, counts["created"].as_u64().unwrap());
    // The dead worker's batch was claimed again (and looked up before sending).
    let (_, all) = second
        .send(
            Method::GET,
            &format!("{run}/records?limit=1000"),
            &token,
            None,
        )
        .await;
    assert!(
        all["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["attempts"].as_u64().unwrap() >= 2),
        "nothing was in flight when the process died"
    );
    drop(second);
    drop(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_with_a_run_in_flight_loses_no_record_and_ends_in_time() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(sqlite_db()).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 200).await;
    let (db, data) = server.stop_keeping_data().await;
    let process = Process::start(&db, data.path(), "a").await;
    let (status, run) = process
        .send(
            Method::POST,
            &format!("{base}/runs/test"),
            &token,
            Some(json!({"size": 180, "tuning": {"batch_size": 10, "concurrency": 2, "max_users_per_second": 40}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let run = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    watch(&process, &token, &run, |v| {
        v["run"]["counts"]["created"].as_u64().unwrap() >= 30
    })
    .await;
    // Asked to stop (SIGTERM), as a service manager would: it exits within its
    // deadline, and every record is settled or back to pending, none held.
    let stopped = std::time::Instant::now();
    let code = process.terminate();
    assert!(code.success(), "{code:?}");
    assert!(
        stopped.elapsed() < server::SHUTDOWN_DEADLINE + Duration::from_secs(5),
        "took {:?}",
        stopped.elapsed()
    );
    let counts = record_states(&db).await;
    assert_eq!(counts.get("in_flight"), None, "{counts:?}");
    let pending = counts.get("pending").copied().unwrap_or(0);
    let settled: i64 = counts
        .iter()
        .filter(|(state, _)| *state != "pending")
        .map(|(_, n)| n)
        .sum();
    assert!(pending > 0, "the run was over before the stop: {counts:?}");
    assert_eq!(pending + settled, 180, "{counts:?}");

    // Started again, it finishes the run with every user created once.
    let again = Process::start(&db, data.path(), "a").await;
    let done = watch(&again, &token, &run, |v| {
        matches!(v["run"]["state"].as_str(), Some("succeeded" | "failed"))
    })
    .await;
    adds_up(&done["run"]);
    let created = created_once(&again, &token, &run, &peer).await;
    assert_eq!(created, done["run"]["counts"]["created"].as_u64().unwrap());
    drop(again);
    drop(data);
}

/// How many of the database's run records are in each state, read straight from it.
async fn record_states(db: &TestDb) -> std::collections::BTreeMap<String, i64> {
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM job_records GROUP BY state")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_split_a_run_without_overlap() {
    let (Some(db), Some(peer)) = (postgres_db().await, Peer::start().await) else {
        return;
    };
    let server = TestServer::start(db).await;
    let (token, base) = ready(&server, &peer.base_url, PEER_TOKEN, "test", 240).await;
    let (db, data) = server.stop_keeping_data().await;
    let one = Process::start(&db, data.path(), "one").await;
    let two = Process::start(&db, data.path(), "two").await;
    // Each instance sends at most 40 users a second: alone, it would take six.
    let (status, run) = one
        .send(
            Method::POST,
            &format!("{base}/runs/test"),
            &token,
            Some(json!({"size": 216, "tuning": {"batch_size": 4, "concurrency": 1, "max_users_per_second": 40}})),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    let run = format!("{base}/runs/{id}");
    let done = watch(&two, &token, &run, |v| {
        matches!(v["run"]["state"].as_str(), Some("succeeded" | "failed"))
    })
    .await;
    let counts = &done["run"]["counts"];
    assert_eq!(
        counts["created"].as_u64().unwrap() + counts["failed"].as_u64().unwrap(),
        216,
        "{done}"
    );
    created_once(&one, &token, &run, &peer).await;
    // Both instances settled records, each record once.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let owners: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT split_part(lease_owner, ':', 1), COUNT(*) FROM job_records \
         WHERE job_id = $1::uuid GROUP BY 1",
    )
    .bind(&id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(owners.len(), 2, "{owners:?}");
    assert!(
        owners.iter().all(|(owner, n)| owner.is_some() && *n > 20),
        "{owners:?}"
    );
    assert_eq!(owners.iter().map(|(_, n)| n).sum::<i64>(), 216);
    drop((one, two, data));
}

/// Computes the mapping's impact and waits (bounded) until it is ready.
pub(crate) async fn impact_computed(server: &TestServer, token: &str, base: &str) {
    impact_computed_with(server, token, base, rules()).await;
}

pub(crate) async fn impact_computed_with(
    server: &TestServer,
    token: &str,
    base: &str,
    rules: Value,
) {
    let impact = format!("{base}/mapping/impact");
    let (status, _) = send(
        server,
        Method::POST,
        &impact,
        token,
        Some(json!({"rules": rules})),
    )
    .await;
    assert_eq!(status, 202);
    let started = std::time::Instant::now();
    loop {
        let (_, view) = send(server, Method::GET, &impact, token, None).await;
        if view["status"] == "ready" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the impact never got ready: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn drill_env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The warnings and errors the processes logged into `data`, each kind with how often
/// (the fields that vary, such as ids and counts, left out).
fn warnings(data: &std::path::Path) -> Vec<(String, usize)> {
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for entry in std::fs::read_dir(data).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("ferry-") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let kind = format!(
                "{} {}",
                event["level"].as_str().unwrap_or("?"),
                event["fields"]["message"].as_str().unwrap_or("?")
            );
            *kinds.entry(kind).or_default() += 1;
        }
    }
    kinds.into_iter().collect()
}

/// The crash drill (`scripts/drill.sh`): a real run of `FERRY_DRILL_USERS` users into
/// the SCIM peer through a proxy answering at random with 429 (`Retry-After: 1`), 503,
/// resets before and after the peer handled a request and slow answers, while the
/// `ferry` processes are SIGKILLed and restarted `FERRY_DRILL_KILLS` times, on SQLite
/// or (with `FERRY_DRILL_POSTGRES=1`) PostgreSQL with `FERRY_DRILL_INSTANCES`
/// instances. Every user the mapping accepts must be in the target exactly once and
/// nothing may fail for a reason of Ferry's own; it prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run by scripts/drill.sh"]
async fn drill() {
    let users = drill_env("FERRY_DRILL_USERS", 100_000) as usize;
    let kills = drill_env("FERRY_DRILL_KILLS", 20);
    let every = Duration::from_millis(drill_env("FERRY_DRILL_KILL_EVERY_MS", 4_000));
    let instances = drill_env("FERRY_DRILL_INSTANCES", 1).max(1) as usize;
    let faults = drill_env("FERRY_DRILL_FAULTS", 1) == 1;
    let on_postgres = drill_env("FERRY_DRILL_POSTGRES", 0) == 1;
    let peer = Peer::start().await.expect("the SCIM peer is required");
    let proxy = FaultProxy::start(peer.port).await;
    let db = if on_postgres {
        postgres_db()
            .await
            .expect("FERRY_TEST_POSTGRES_URL is required")
    } else {
        sqlite_db()
    };
    let server = TestServer::start(db).await;
    let (token, base) = ready(&server, &proxy.base_url, PEER_TOKEN, "production", users).await;
    impact_computed(&server, &token, &base).await;
    let (db, data) = server.stop_keeping_data().await;
    let mut running: Vec<Process> = Vec::new();
    for n in 0..instances {
        running.push(Process::start(&db, data.path(), &format!("drill-{n}")).await);
    }
    if faults {
        proxy.chaos(Some(Chaos::drill(0x5eed)));
    }
    let started = std::time::Instant::now();
    let (status, created) = running[0]
        .send(
            Method::POST,
            &format!("{base}/runs/real"),
            &token,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let run = format!("{base}/runs/{}", created["run"]["id"].as_str().unwrap());
    // Paused is an end here too: nothing in the drill may pause the run.
    let finished = |v: &Value| {
        matches!(
            v["run"]["state"].as_str(),
            Some("succeeded" | "failed" | "paused")
        )
    };
    let mut killed = 0;
    let mut kill_times = String::new();
    let mut last_report = started;
    let done = loop {
        tokio::time::sleep(if killed < kills {
            every
        } else {
            Duration::from_millis(500)
        })
        .await;
        let (status, view) = running[0].send(Method::GET, &run, &token, None).await;
        assert_eq!(status, 200, "{view}");
        adds_up(&view["run"]);
        if finished(&view) {
            break view;
        }
        if last_report.elapsed() >= Duration::from_secs(20) {
            last_report = std::time::Instant::now();
            let counts = &view["run"]["counts"];
            println!(
                "drill: at {:.0} s: created {}, failed {}, in flight {}, pending {}",
                started.elapsed().as_secs_f64(),
                counts["created"],
                counts["failed"],
                counts["in_flight"],
                counts["pending"]
            );
        }
        if killed < kills {
            // SIGKILL one instance (in turn) with batches in flight, and restart it.
            let victim = (killed as usize) % running.len();
            running.remove(victim).kill();
            kill_times += &format!("{:.2} KILL\n", started.elapsed().as_secs_f64());
            running.insert(
                victim,
                Process::start(&db, data.path(), &format!("drill-{victim}")).await,
            );
            killed += 1;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    proxy.chaos(None);
    let counts = &done["run"]["counts"];
    let number = |k: &str| counts[k].as_u64().unwrap();
    // The target holds each created user once.
    let mut by_external: std::collections::HashMap<String, u32> = Default::default();
    let mut start = 1;
    loop {
        let page = peer
            .get(&format!("/Users?startIndex={start}&count=1000"))
            .await;
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            break;
        }
        for r in &resources {
            *by_external
                .entry(r["externalId"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        start += resources.len();
    }
    let in_target: u32 = by_external.values().sum();
    let duplicates = by_external.values().filter(|n| **n > 1).count();
    let (_, classes) = running[0].send(Method::GET, &run, &token, None).await;
    let lookups =
        proxy.count("GET /v2/Users?filter=externalId") + proxy.count("filter=meta.created");
    println!(
        "drill: {users} users, {killed} kills, {instances} instance(s) on {}, faults {}: \
         {seconds:.1} s; created {}, failed {}, skipped {}, in the target {in_target}, \
         duplicate externalIds {duplicates}, look-up requests {lookups}, requests {}",
        if on_postgres { "PostgreSQL" } else { "SQLite" },
        if faults { "on" } else { "off" },
        number("created"),
        number("failed"),
        number("skipped"),
        proxy.seen().len(),
    );
    println!("drill: error classes {}", classes["classes"]);
    // The request timeline (seconds since the start, request line), for reading where
    // the time went.
    if let Ok(path) = std::env::var("FERRY_DRILL_TIMELINE") {
        let lines: String = proxy
            .seen()
            .iter()
            .map(|(at, head)| {
                let at = at.saturating_duration_since(started).as_secs_f64();
                format!("{at:.2} {}\n", head.lines().next().unwrap_or_default())
            })
            .collect();
        std::fs::write(&path, lines + &kill_times).unwrap();
    }
    for (warning, n) in warnings(data.path()) {
        println!("drill: {n} × {warning}");
    }
    // Ended, not paused: the export's bad addresses make it end "failed".
    assert_ne!(done["run"]["state"], "paused", "{done}");
    assert_eq!(duplicates, 0, "a user was created twice");
    assert_eq!(u64::from(in_target), number("created"));
    assert_eq!(number("skipped"), 0, "{done}");
    for class in classes["classes"].as_array().unwrap() {
        assert_eq!(
            class["error_class"], "mapping",
            "failed for a reason of Ferry's own: {class}"
        );
    }
    assert_eq!(number("created") + number("failed"), users as u64);
    drop(running);
    drop(data);
}
