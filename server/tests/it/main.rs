//! Ferry's server tests in one binary: the store on SQLite and PostgreSQL, the HTTP
//! API and pages, reading uploads, runs, and the SCIM client against the real peer.
//! One binary rather than one per file: each links the whole server, and fourteen of
//! them filled the disk of a fresh machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod assessment_http;
mod assessment_store;
mod background;
mod delta_http;
mod goals_http;
mod http_behaviour;
mod ingest;
mod legacy_http;
mod mapping_http;
mod mapping_store;
mod passwords_http;
mod plan_http;
mod purge_http;
mod reconcile_http;
mod review_http;
mod review_store;
mod role_matrix;
mod run_store;
mod runs_http;
mod scim_peer;
mod store_story;
mod targets_http;
mod uploads_http;
