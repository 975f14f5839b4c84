//! The cutover delta over HTTP on SQLite and PostgreSQL against the real SCIM peer:
//! after a real run, a newer export of the same source brings two new users, one
//! changed and two gone. A delta run creates the new ones, PATCHes only what changed
//! of the changed one, and applies the policy to the gone ones (deactivated, or
//! deleted), every decision counted and adding up; its rollback undoes each: the
//! created deleted, the changed one given its former values, the deactivated made
//! active and the deleted created again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{
    TestDb, TestServer, postgres_db,
    scim::{PEER_TOKEN, Peer},
    settled, sqlite_db, upload,
};
use crate::passwords_http::crosswalk;
use crate::runs_http::{adds_up, export, impact_computed, moved, send, until};
use reqwest::Method;
use serde_json::{Value, json};

async fn finished(server: &TestServer, token: &str, base: &str, run: &Value) -> Value {
    let path = format!("{base}/runs/{}", run["id"].as_str().unwrap());
    let done = until(server, token, &path, &["succeeded", "failed"]).await;
    adds_up(&done["run"]);
    done
}

async fn peer_user(peer: &Peer, id: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .get(format!("{}/Users/{id}", peer.base_url))
        .bearer_auth(PEER_TOKEN)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// Classes of a run's records with their counts.
async fn classes(server: &TestServer, token: &str, base: &str, run: &Value) -> Value {
    let (status, view) = send(
        server,
        Method::GET,
        &format!("{base}/runs/{}", run["run"]["id"].as_str().unwrap()),
        token,
        None,
    )
    .await;
    assert_eq!(status, 200, "{view}");
    view["classes"].clone()
}

fn count_of(classes: &Value, class: &str) -> u64 {
    classes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error_class"] == class)
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

async fn story(db: TestDb, policy: &str) {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let server = TestServer::start(db).await;
    // 12 users (u-9 rejected by the mapping): 11 created.
    let (token, base, real) = moved(&server, &peer.base_url).await;
    let project = base.rsplit('/').next().unwrap().to_string();
    let ids = crosswalk(&server, &token, &base, real["run"]["id"].as_str().unwrap()).await;

    // The newer export: u-0…u-8 with u-2's given name changed, u-12 and u-13 new;
    // u-10 and u-11 gone (u-9 was never moved).
    let older = export("u", 14);
    let mut newer = String::new();
    for (i, line) in older.lines().enumerate() {
        let n = i as i64 - 1;
        if (9..=11).contains(&n) {
            continue;
        }
        if n == 2 {
            newer.push_str(&line.replace("Given2", "Renamed2"));
        } else {
            newer.push_str(line);
        }
        newer.push('\n');
    }
    let created = upload(&server, &project, &token, "newer.csv", newer.into()).await;
    let read = settled(&server, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(read["records_new"], 2, "{read}");
    assert_eq!(read["records_changed"], 1, "{read}");
    impact_computed(&server, &token, &base).await;

    // Bad input is refused by field.
    let (status, bad) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/delta"),
        &token,
        Some(json!({"upload": created["id"], "missing": "shred"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");
    let (status, bad) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/delta"),
        &token,
        Some(json!({"upload": "0190a4f4-0000-7000-8000-000000000000", "missing": policy})),
    )
    .await;
    assert_eq!(status, 404, "{bad}");

    let (status, started) = send(
        &server,
        Method::POST,
        &format!("{base}/runs/delta"),
        &token,
        Some(json!({"upload": created["id"], "missing": policy})),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["kind"], "delta_run");
    // Two new, one changed, two gone: five decisions.
    assert_eq!(started["total"], 5, "{started}");
    let delta = finished(&server, &token, &base, &started).await;
    let counts = &delta["run"]["counts"];
    assert_eq!(counts["created"], 2, "{delta}");
    let found = classes(&server, &token, &base, &delta).await;
    assert_eq!(count_of(&found, "delta_changed"), 1, "{found}");
    let (status, changed) = peer_user(&peer, &ids["u-2"]).await;
    assert_eq!(status, 200);
    assert_eq!(changed["name"]["givenName"], "Renamed2", "{changed}");
    assert_eq!(changed["name"]["familyName"], "Family2", "{changed}");
    for gone in ["u-10", "u-11"] {
        let (status, user) = peer_user(&peer, &ids[gone]).await;
        if policy == "delete" {
            assert_eq!(status, 404, "{user}");
        } else {
            assert_eq!(status, 200);
            assert_eq!(user["active"], false, "{user}");
        }
    }
    let class = if policy == "delete" {
        "missing_deleted"
    } else {
        "missing_deactivated"
    };
    assert_eq!(count_of(&found, class), 2, "{found}");
    let new_ids = crosswalk(&server, &token, &base, delta["run"]["id"].as_str().unwrap()).await;
    assert_eq!(new_ids.len(), 2, "{new_ids:?}");

    // The rollback undoes every decision.
    let (status, rollback) = send(
        &server,
        Method::POST,
        &format!(
            "{base}/runs/{}/rollback",
            delta["run"]["id"].as_str().unwrap()
        ),
        &token,
        Some(json!({"confirm": 5})),
    )
    .await;
    assert_eq!(status, 201, "{rollback}");
    assert_eq!(rollback["total"], 5, "{rollback}");
    let undone = finished(&server, &token, &base, &rollback).await;
    assert_eq!(undone["run"]["counts"]["failed"], 0, "{undone}");
    for id in new_ids.values() {
        assert_eq!(peer_user(&peer, id).await.0, 404);
    }
    let (_, restored) = peer_user(&peer, &ids["u-2"]).await;
    assert_eq!(restored["name"]["givenName"], "Given2", "{restored}");
    if policy == "delete" {
        // Created again, with new ids.
        let again = crosswalk(
            &server,
            &token,
            &base,
            undone["run"]["id"].as_str().unwrap(),
        )
        .await;
        assert_eq!(again.len(), 2, "{again:?}");
        for (source, id) in &again {
            let (status, user) = peer_user(&peer, id).await;
            assert_eq!(status, 200, "{source}: {user}");
        }
    } else {
        for gone in ["u-10", "u-11"] {
            let (_, user) = peer_user(&peer, &ids[gone]).await;
            assert_eq!(user["active"], true, "{user}");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_run_deactivates_the_gone_and_its_rollback_undoes_it_on_sqlite() {
    story(sqlite_db(), "deactivate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_run_deletes_the_gone_and_its_rollback_undoes_it_on_postgres() {
    if let Some(db) = postgres_db().await {
        story(db, "delete").await;
    }
}
