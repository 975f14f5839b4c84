//! Runs through the API, so a migration can be driven headless: test runs, the
//! pre-flight checks and the real run (in a window or now), windows, controls, the
//! run's view and live progress, its records by state and error class, the crosswalk,
//! retries and rollbacks.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, PageParams, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::{
    DomainError,
    ids::RunId,
    pagination::{Page, PageRequest},
    ports::RecordFilter,
    runs::{Preflight, Progress, RealRunRequest, ReconcileRequest, TestRunRequest},
    runs::{RecordState, Run, Window},
    service::{Control, RecordsPage, RunView},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn run_id(id: &str) -> ApiResult<RunId> {
    Ok(id.parse()?)
}

/// A project's runs, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, body = Page<Run>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<Run>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state.ferry.runs(&actor, project_id(&id)?, page).await?,
    ))
}

/// Starts a test run: a sample of the moving users (random with a seed, or
/// stratified by user type) with the latest mapping, against the test target (or
/// production). Its users are read back and compared when it ends.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/test", tag = "runs",
    params(("id" = String, Path, description = "Project id")),
    request_body = TestRunRequest,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_test(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TestRunRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .start_test_run(&actor, project_id(&id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Starts a reconciliation: every user the production runs put in the target (or
/// `sample` of them at random) read back by its SCIM id, at most
/// `max_users_per_minute`, and compared with what the latest mapping makes of its
/// record. Users that differ (`differs_in_target`, naming the attributes) or are gone
/// (`missing_in_target`) fail into the review queue; a retry replaces what the target
/// holds.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/reconcile", tag = "runs",
    params(("id" = String, Path, description = "Project id")),
    request_body = ReconcileRequest,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reconcile(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReconcileRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .start_reconciliation(&actor, project_id(&id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// At cutover, a newer export of the same source as a delta run against production
/// (after a real run): its new users created, those it changed PATCHed where the
/// target differs, and those gone from it left, deactivated or deleted (`missing`:
/// `leave`, `deactivate`, `delete`). Each decision is counted by class
/// (`delta_changed`, `delta_unchanged`, `missing_left`, `missing_deactivated`,
/// `missing_deleted`); its rollback undoes them all.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/delta", tag = "runs",
    params(("id" = String, Path, description = "Project id")),
    request_body = domain::runs::delta::DeltaRequest,
    responses((status = 201, body = Run), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn delta(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<domain::runs::delta::DeltaRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .start_delta(&actor, project_id(&id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// What the pre-flight checks are asked with.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PreflightQuery {
    /// Colliding records accepted to fail into review (the number the data check
    /// reported as `acceptable`).
    accept_collisions: Option<u64>,
}

/// Runs the real run's pre-flight checks now (the production target is tested live).
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/preflight", tag = "runs",
    params(("id" = String, Path, description = "Project id"), PreflightQuery),
    responses((status = 200, body = Preflight), (status = 403, body = ErrorBody)))]
pub async fn preflight(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(query): Query<PreflightQuery>,
) -> ApiResult<Json<Preflight>> {
    Ok(Json(
        state
            .ferry
            .preflight(&actor, project_id(&id)?, query.accept_collisions)
            .await?,
    ))
}

/// The real run created, with the checks it passed.
#[derive(Serialize, ToSchema)]
pub struct RealRunCreated {
    run: Run,
    preflight: Preflight,
}

/// Creates the real run: every record of the project against production, scheduled
/// in a downtime window (it starts at the window's start and pauses at its end) or
/// started now. Refused (422, field `preflight`) unless every pre-flight check passes.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/real", tag = "runs",
    params(("id" = String, Path, description = "Project id")),
    request_body = RealRunRequest,
    responses((status = 201, body = RealRunCreated), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_real(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RealRunRequest>,
) -> ApiResult<(StatusCode, Json<RealRunCreated>)> {
    let (run, preflight) = state
        .ferry
        .start_real_run(&actor, project_id(&id)?, body)
        .await?;
    Ok((StatusCode::CREATED, Json(RealRunCreated { run, preflight })))
}

/// One run: counts, progress and rate, window, failures by class, groups, and a test
/// run's read-back (owners and administrators).
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run}", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = RunView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<RunView>> {
    Ok(Json(
        state
            .ferry
            .run(&actor, project_id(&id)?, run_id(&run)?)
            .await?,
    ))
}

/// Gives a scheduled or paused run a new downtime window.
#[utoipa::path(put, path = "/api/v1/projects/{id}/runs/{run}/window", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    request_body = Window,
    responses((status = 200, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn window(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
    ApiJson(body): ApiJson<Window>,
) -> ApiResult<Json<Run>> {
    Ok(Json(
        state
            .ferry
            .reschedule(&actor, project_id(&id)?, run_id(&run)?, body)
            .await?,
    ))
}

async fn control(
    state: AppState,
    actor: domain::accounts::Actor,
    id: &str,
    run: &str,
    control: Control,
) -> ApiResult<Json<Run>> {
    Ok(Json(
        state
            .ferry
            .control_run(&actor, project_id(id)?, run_id(run)?, control)
            .await?,
    ))
}

/// Starts a scheduled run now, before its window.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/start", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 409, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<Run>> {
    control(state, actor, &id, &run, Control::StartNow).await
}

/// Pauses a running run: its workers finish the batch in hand.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/pause", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 409, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<Run>> {
    control(state, actor, &id, &run, Control::Pause).await
}

/// Resumes a paused run.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/resume", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 409, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<Run>> {
    control(state, actor, &id, &run, Control::Resume).await
}

/// Cancels a run; records not yet sent stay pending and are counted as such.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/cancel", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Run), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<Run>> {
    control(state, actor, &id, &run, Control::Cancel).await
}

#[derive(Deserialize, IntoParams)]
pub struct RecordsQuery {
    /// `pending`, `in_flight`, `created`, `updated`, `skipped`, `failed`, `deleted`.
    state: Option<String>,
    /// `invalid_data`, `already_exists`, `mapping`, `left_behind`, `network`, …
    error_class: Option<String>,
    /// The `next_after` of the previous page.
    after: Option<u64>,
    /// 1–1,000 (default 100).
    limit: Option<u32>,
}

/// A run's records in order, filtered by state and error class, with the error
/// detail and the SCIM id each got.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run}/records", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id"), RecordsQuery),
    responses((status = 200, body = RecordsPage), (status = 422, body = ErrorBody)))]
pub async fn records(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
    Query(q): Query<RecordsQuery>,
) -> ApiResult<Json<RecordsPage>> {
    let state_filter = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => Some(RecordState::parse(text).ok_or_else(|| {
            DomainError::invalid("state", format!("{text:?} is not a record state"))
        })?),
        None => None,
    };
    let filter = RecordFilter {
        state: state_filter,
        error_class: q.error_class.filter(|c| !c.is_empty()),
    };
    Ok(Json(
        state
            .ferry
            .run_records(
                &actor,
                project_id(&id)?,
                run_id(&run)?,
                &filter,
                q.after,
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}

/// The crosswalk: legacy id → SCIM id of every user the run placed in the target, as
/// CSV (`source_id,scim_id,state`), streamed page by page.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run}/crosswalk.csv", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
pub async fn crosswalk(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Response> {
    let run = state
        .ferry
        .open_crosswalk(&actor, project_id(&id)?, run_id(&run)?)
        .await?;
    let name = format!("attachment; filename=\"crosswalk-{}.csv\"", run.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(crosswalk_stream(state, run)),
    )
        .into_response())
}

/// The crosswalk's CSV, page by page (the header first).
pub fn crosswalk_stream(
    state: AppState,
    run: Run,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let id = run.id;
    // Pages are read without the state filter so that a page of failures does not end
    // the walk early.
    super::csv_pages(
        &["source_id", "scim_id", "state"],
        format!("the crosswalk of run {id}"),
        move |after: Option<u64>| {
            let (state, run) = (state.clone(), run.clone());
            async move {
                let (records, last) = state
                    .ferry
                    .crosswalk_page(&run, after, domain::service::MAX_RECORDS_PAGE)
                    .await?;
                let rows = records
                    .iter()
                    .map(|r| {
                        vec![
                            r.source_id.clone(),
                            r.scim_id.clone().unwrap_or_default(),
                            r.state.as_str().to_string(),
                        ]
                    })
                    .collect();
                Ok((rows, last))
            }
        },
    )
}

/// What retrying the run's failed records would do: how many, where to, with which
/// mapping version, and what changed since the run (nothing: they would most likely
/// fail again).
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run}/retry", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = domain::service::RetryPlan), (status = 422, body = ErrorBody)))]
pub async fn retry_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Json<domain::service::RetryPlan>> {
    Ok(Json(
        state
            .ferry
            .retry_plan(&actor, project_id(&id)?, run_id(&run)?)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RetryRequest {
    /// The number of failed records the retry sends again (as the retry plan gave it).
    confirm: u64,
}

/// Retries the failed records of a finished run as a new run, with the latest
/// mapping and user types.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/retry", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    request_body = RetryRequest,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
    ApiJson(body): ApiJson<RetryRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .retry_failed(&actor, project_id(&id)?, run_id(&run)?, body.confirm)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

#[derive(Deserialize, ToSchema)]
pub struct RollbackRequest {
    /// The number of users the run created (the rollback deletes them all).
    confirm: u64,
}

/// Rolls a finished run back: deletes from the target every user it created.
#[utoipa::path(post, path = "/api/v1/projects/{id}/runs/{run}/rollback", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    request_body = RollbackRequest,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
    ApiJson(body): ApiJson<RollbackRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .rollback(&actor, project_id(&id)?, run_id(&run)?, body.confirm)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// The run's progress as server-sent events (`progress`, JSON), from the workers'
/// memory while it runs here; the stream ends after the run does.
#[utoipa::path(get, path = "/api/v1/projects/{id}/runs/{run}/events", tag = "runs",
    params(("id" = String, Path, description = "Project id"), ("run" = String, Path, description = "Run id")),
    responses((status = 200, content_type = "text/event-stream", body = Progress,
        description = "Server-sent events: `progress` (JSON)"), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, run)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (project, run) = (project_id(&id)?, run_id(&run)?);
    let first = state.ferry.run_progress(&actor, project, run).await?;
    Ok(progress_stream(state, run, first))
}

/// The event stream of a run's progress, starting with `first`; it ends once the run
/// is over.
pub fn progress_stream(state: AppState, run: RunId, first: Progress) -> Response {
    let receiver = state.runs.subscribe(run);
    crate::web::events::stream(
        &state,
        (Some(first), receiver, false),
        |(first, mut receiver, ended)| async move {
            if ended {
                return None;
            }
            let progress = match first {
                Some(p) => p,
                None => loop {
                    receiver.changed().await.ok()?;
                    let p = receiver.borrow_and_update().clone();
                    // The follower's first message, before it read the store.
                    if p.state.is_some() {
                        break p;
                    }
                },
            };
            let ended = progress.state.is_some_and(|s| !s.is_active());
            let event = crate::web::events::json("progress", &progress)?;
            Some((event, (None, receiver, ended)))
        },
    )
}
