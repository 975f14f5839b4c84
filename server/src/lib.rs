//! Ferry's server: configuration, the stores, the security adapters, the HTTP surface,
//! and the start-up and shutdown of the whole process.

pub mod assessment;
pub mod background;
pub mod config;
pub mod ingest;
pub mod keyring;
pub mod legacy;
pub mod passwords;
pub mod progress;
pub mod record_work;
pub mod records;
pub mod runs;
pub mod scan;
pub mod scim;
pub mod security;
pub mod store;
pub mod vault;
pub mod web;

use config::Config;
use domain::service::{Ferry, Policy};
use leptos::prelude::LeptosOptions;
use security::{Argon2Hasher, OsSecrets, SecretKey, SystemClock};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use web::AppState;

/// How long a stopping Ferry waits for its background work (a run's batches in the
/// air settle or go back to pending) before it exits anyway.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Opens the data folder, the key and the database, and assembles the service.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data folder {}: {e}",
            config.data_dir.display()
        )
    })?;
    let key = SecretKey::load_or_create(&config.secret_key_file())?;
    let store = store::connect(&config.database_url()).await?;
    let uploads = ingest::uploads_dir(&config.data_dir);
    std::fs::create_dir_all(&uploads)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", uploads.display()))?;
    let vault = vault::Vault::new(key.bytes());
    let background = background::Supervisor::new();
    start_checkpoints(&background, config.database_url());
    let workers = workers(
        &store,
        &vault,
        uploads,
        runs::RunConfig {
            lease: std::time::Duration::from_secs(config.run_lease_secs.max(1)),
            instance: config.instance.clone().or_else(|| {
                // SQLite serves one instance: whoever held its leases before is gone.
                (store::Backend::of(&config.database_url()).ok() == Some(store::Backend::Sqlite))
                    .then(|| "single".to_string())
            }),
            ..runs::RunConfig::default()
        },
        &background,
    );
    let ferry = Ferry::new(
        store,
        Arc::new(SystemClock),
        Arc::new(OsSecrets),
        Arc::new(Argon2Hasher::new()?),
        Policy::default(),
        workers.ports(),
    );
    let leptos = LeptosOptions::builder()
        .output_name("ferry")
        .site_root(config.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build();
    let mut state = AppState::new(
        ferry,
        workers,
        leptos,
        config.public_url(),
        config.secure_cookies(),
        background,
    );
    state.max_upload_bytes = config.max_upload_bytes;
    state.allowed_origins = Arc::new(config.allowed_origins());
    state.trusted_proxies = Arc::new(config.trusted_proxies.clone());
    Ok(state)
}

/// The workers over `store`, holding `vault`'s key (the server's, which keeps each
/// project's own), reading uploads kept in `uploads`, their background work under
/// `background`.
pub fn workers(
    store: &Arc<dyn domain::ports::Store>,
    vault: &vault::Vault,
    uploads: std::path::PathBuf,
    run_config: runs::RunConfig,
    background: &background::Supervisor,
) -> web::Workers {
    let keys = keyring::Keyring::new(vault.clone(), store.clone(), uploads.clone());
    let targets = scim::connector::Targets::new(keys.clone());
    web::Workers {
        ingest: ingest::Ingest::new(store.clone(), keys.clone(), uploads, background.clone()),
        assessments: assessment::Assessments::new(store.clone(), keys.clone(), background.clone()),
        records: record_work::RecordWorker::new(store.clone(), keys.clone(), background.clone()),
        runs: runs::Runs::new(
            store.clone(),
            keys.clone(),
            targets.clone(),
            run_config,
            background.clone(),
        ),
        targets,
        passwords: passwords::PasswordWorker::new(keys.clone()),
        keys,
    }
}

/// On a fresh database, prints the one-time setup token the owner needs.
pub async fn announce_setup(state: &AppState) -> anyhow::Result<()> {
    if let Some(token) = state.ferry.issue_setup_token().await? {
        tracing::warn!(
            "Ferry has no owner yet. Open {}/setup and enter this one-time setup token: {token}",
            state.public_url
        );
    }
    Ok(())
}

/// Reads again the uploads a stopped server left half read (or stored but unread):
/// records are upserted, so nothing is counted twice.
/// Uploads a stopped server was reading are read again; assessments and impacts it was
/// computing are marked interrupted.
pub async fn resume_uploads(state: &AppState) -> anyhow::Result<()> {
    state.assessments.settle_interrupted().await?;
    state.records.settle_interrupted().await?;
    state.records.resume_review_tasks().await?;
    use domain::uploads::UploadStatus;
    for status in [UploadStatus::Parsing, UploadStatus::Stored] {
        for upload in state.ingest.uploads_with_status(status).await? {
            tracing::info!(upload = %upload.id, "reading an interrupted upload again");
            if let Err(err) = state.ingest.start(upload.id, Default::default()).await {
                tracing::error!(upload = %upload.id, error = %err, "the upload cannot be read again");
            }
        }
    }
    Ok(())
}

/// Removes expired sessions and tokens, and purges the projects whose retention
/// period ended, every ten minutes, until Ferry stops.
fn start_housekeeping(state: &AppState) {
    let (ferry, stop) = (state.ferry.clone(), state.background.stopping());
    state
        .background
        .spawn_logged("housekeeping", "every project", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match ferry.housekeeping().await {
                            Ok(removed) => tracing::debug!(removed, "housekeeping done"),
                            Err(err) => tracing::warn!(error = %err, "housekeeping failed"),
                        }
                        match ferry.purge_due().await {
                            Ok(purged) => {
                                for project in purged {
                                    tracing::info!(project = %project, "the retention period ended: the project's imported data was purged");
                                }
                            }
                            Err(err) => tracing::warn!(error = %err, "purging projects past their retention failed"),
                        }
                    }
                    () = stop.cancelled() => return Ok(()),
                }
            }
        });
}

/// SQLite's checkpoints, off the write path (see [`store::checkpoints`]).
fn start_checkpoints(background: &background::Supervisor, url: String) {
    let stop = background.stopping();
    background.spawn_logged("database checkpoints", "the SQLite database", async move {
        store::checkpoints(url, stop.cancelled_owned())
            .await
            .map_err(|err| background::Failure::from(err.to_string()))
    });
}

/// Every quarter of a minute, starts the invitation waves the projects' plans call
/// for (inside their hours, under their caps, when nothing else of the project runs).
fn start_wave_planner(state: &AppState) {
    let (ferry, stop) = (state.ferry.clone(), state.background.stopping());
    state
        .background
        .spawn_logged("wave planner", "every plan of invitation waves", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => match ferry.plan_waves().await {
                        Ok(started) => {
                            for run in started {
                                tracing::info!(run = %run.id, project = %run.project_id, users = run.total, "a plan started an invitation wave");
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "planning invitation waves failed"),
                    },
                    () = stop.cancelled() => return Ok(()),
                }
            }
        });
}

/// Serves Ferry on `listener` until `shutdown` completes. Stopping is one path: the
/// supervisor's signal ends event streams and background work at once, requests in
/// flight are drained, and the background work gets [`SHUTDOWN_DEADLINE`] to settle.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    state.assessments.keep_current(state.ingest.settled());
    start_housekeeping(&state);
    start_wave_planner(&state);
    // Also takes up the runs a stopped server left running.
    state.runs.start_scheduler();
    let background = state.background.clone();
    let stopping = background.stopping();
    let app = web::router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        stopping.cancel();
    })
    .await?;
    background.shut_down(SHUTDOWN_DEADLINE).await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
}
