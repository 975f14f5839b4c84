//! Target connections through the API: list, read, save (secrets write-only), remove
//! and test a project's production and test targets.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use domain::scim::target::{TargetInput, TargetRole, TargetView};

fn role(raw: &str) -> ApiResult<TargetRole> {
    Ok(TargetRole::parse(raw)?)
}

/// The project's targets; secrets appear only as `secret_set`.
#[utoipa::path(get, path = "/api/v1/projects/{id}/targets", tag = "targets",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<TargetView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TargetView>>> {
    let project = project_id(&id)?;
    Ok(Json(state.ferry.targets(&actor, project).await?))
}

/// One target, with its last connection test and what discovery found.
#[utoipa::path(get, path = "/api/v1/projects/{id}/targets/{role}", tag = "targets",
    params(("id" = String, Path, description = "Project id"), ("role" = String, Path, description = "`production` or `test`")),
    responses((status = 200, body = TargetView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, target)): Path<(String, String)>,
) -> ApiResult<Json<TargetView>> {
    let (project, role) = (project_id(&id)?, role(&target)?);
    Ok(Json(state.ferry.target(&actor, project, role).await?))
}

/// Creates or replaces a target. `secret` and `headers` may be left out to keep the
/// stored ones; the answer never contains them.
#[utoipa::path(put, path = "/api/v1/projects/{id}/targets/{role}", tag = "targets",
    params(("id" = String, Path, description = "Project id"), ("role" = String, Path, description = "`production` or `test`")),
    request_body = TargetInput,
    responses((status = 200, body = TargetView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, target)): Path<(String, String)>,
    ApiJson(input): ApiJson<TargetInput>,
) -> ApiResult<Json<TargetView>> {
    let (project, role) = (project_id(&id)?, role(&target)?);
    let view = state
        .ferry
        .save_target(&actor, project, role, input)
        .await?;
    Ok(Json(view))
}

/// Removes a target and its secrets.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/targets/{role}", tag = "targets",
    params(("id" = String, Path, description = "Project id"), ("role" = String, Path, description = "`production` or `test`")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (project, role) = (project_id(&id)?, role(&target)?);
    state.ferry.delete_target(&actor, project, role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tests the connection step by step (reachability and TLS, authentication,
/// service provider configuration, resource types, schemas) and keeps the report.
/// A failed step is part of the report, not an error of this call.
#[utoipa::path(post, path = "/api/v1/projects/{id}/targets/{role}/test", tag = "targets",
    params(("id" = String, Path, description = "Project id"), ("role" = String, Path, description = "`production` or `test`")),
    responses((status = 200, body = TargetView), (status = 404, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, target)): Path<(String, String)>,
) -> ApiResult<Json<TargetView>> {
    let (project, role) = (project_id(&id)?, role(&target)?);
    let view = state.ferry.test_target(&actor, project, role).await?;
    Ok(Json(view))
}
