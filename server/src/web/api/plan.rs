//! The migration plan through the API: the plan with what Ferry's data adds to it,
//! saving versions, listing, reading (as JSON) and comparing them, and an owner's
//! approval; and the final report.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, PageParams, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use domain::{
    pagination::{Page, PageRequest},
    plan::{PlanChange, PlanVersion, PlanVersionSummary},
    service::{FinalReport, PlanInput, PlanView},
};
use serde::Deserialize;
use utoipa::IntoParams;

/// The plan: the latest version's document (the guide's requirements before any is
/// saved), the latest approved version, the risks Ferry's data shows, the milestones
/// Ferry completes itself, the suggested downtime window and the acceptable-impact
/// numbers checked against the latest impact.
#[utoipa::path(get, path = "/api/v1/projects/{id}/plan", tag = "plan",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = PlanView), (status = 403, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanView>> {
    Ok(Json(state.ferry.plan(&actor, project_id(&id)?).await?))
}

/// Saves the document as the plan's next version.
#[utoipa::path(put, path = "/api/v1/projects/{id}/plan", tag = "plan",
    params(("id" = String, Path, description = "Project id")),
    request_body = PlanInput,
    responses((status = 200, body = PlanView), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlanInput>,
) -> ApiResult<Json<PlanView>> {
    Ok(Json(
        state
            .ferry
            .save_plan(&actor, project_id(&id)?, body)
            .await?,
    ))
}

/// Saved versions, newest first, with who saved and who approved each.
#[utoipa::path(get, path = "/api/v1/projects/{id}/plan/versions", tag = "plan",
    params(("id" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, body = Page<PlanVersionSummary>)))]
pub async fn versions(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<PlanVersionSummary>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .plan_versions(&actor, project_id(&id)?, page)
            .await?,
    ))
}

/// One version with its document, as a JSON file to keep.
#[utoipa::path(get, path = "/api/v1/projects/{id}/plan/versions/{version}", tag = "plan",
    params(("id" = String, Path, description = "Project id"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = PlanVersion), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, version)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let project = project_id(&id)?;
    let plan = state.ferry.plan_version(&actor, project, version).await?;
    let disposition = format!("inline; filename=\"plan-{project}-v{version}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(plan)).into_response())
}

#[derive(Deserialize, IntoParams)]
pub struct CompareParams {
    from: u32,
    to: u32,
}

/// What changed from one version to another, field by field (`risks[1].mitigation`).
#[utoipa::path(get, path = "/api/v1/projects/{id}/plan/compare", tag = "plan",
    params(("id" = String, Path, description = "Project id"), CompareParams),
    responses((status = 200, body = Vec<PlanChange>), (status = 404, body = ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<CompareParams>,
) -> ApiResult<Json<Vec<PlanChange>>> {
    Ok(Json(
        state
            .ferry
            .compare_plan(&actor, project_id(&id)?, q.from, q.to)
            .await?,
    ))
}

/// The final report: every user's standing, the production runs oldest first, why
/// records of the latest real run were skipped or failed, password coverage per user
/// type, the latest reconciliation (with the target's users no run recorded), the
/// milestones Ferry completed and the plan's approvals. Each run's crosswalk is at
/// `…/runs/{run}/crosswalk.csv`.
#[utoipa::path(get, path = "/api/v1/projects/{id}/report", tag = "plan",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = FinalReport), (status = 403, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<FinalReport>> {
    Ok(Json(
        state.ferry.final_report(&actor, project_id(&id)?).await?,
    ))
}

/// An owner approves the latest version; the real run's pre-flight then checks its
/// acceptable-impact numbers against the latest impact.
#[utoipa::path(post, path = "/api/v1/projects/{id}/plan/versions/{version}/approve", tag = "plan",
    params(("id" = String, Path, description = "Project id"), ("version" = u32, Path, description = "The latest version's number")),
    responses((status = 200, body = PlanView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, version)): Path<(String, u32)>,
) -> ApiResult<Json<PlanView>> {
    Ok(Json(
        state
            .ferry
            .approve_plan(&actor, project_id(&id)?, version)
            .await?,
    ))
}
