//! Goals and strategy through the API: the user types (read, save, count), the goals
//! page's data with the run estimate, the preview of mapped records and the impact of
//! a mapping over every record.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use domain::{
    DomainError,
    ids::ProjectId,
    mapping::{Mapping, Rule},
    ports::Sample,
    service::{GoalsView, ImpactView, Preview, UserTypeEstimate, UserTypesView},
    user_types::UserTypes,
};
use serde::Deserialize;
use utoipa::ToSchema;

/// The user types (by default, one that moves everyone with a forced reset) with
/// their problems.
#[utoipa::path(get, path = "/api/v1/projects/{id}/user-types", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = UserTypesView), (status = 403, body = ErrorBody)))]
pub async fn get_user_types(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<UserTypesView>> {
    Ok(Json(
        state.ferry.user_types(&actor, project_id(&id)?).await?,
    ))
}

/// Saves the user types, tried in order: a user belongs to the first whose conditions
/// hold. Saved with their problems, which come back with them.
#[utoipa::path(put, path = "/api/v1/projects/{id}/user-types", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    request_body = UserTypes,
    responses((status = 200, body = UserTypesView), (status = 422, body = ErrorBody)))]
pub async fn put_user_types(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserTypes>,
) -> ApiResult<Json<UserTypesView>> {
    Ok(Json(
        state
            .ferry
            .save_user_types(&actor, project_id(&id)?, body)
            .await?,
    ))
}

/// Counts users per user type (saved or not): on every record up to 10,000, on a
/// random sample of 10,000 beyond.
#[utoipa::path(post, path = "/api/v1/projects/{id}/user-types/count", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    request_body = UserTypes,
    responses((status = 200, body = UserTypeEstimate), (status = 422, body = ErrorBody)))]
pub async fn count_user_types(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserTypes>,
) -> ApiResult<Json<UserTypeEstimate>> {
    Ok(Json(
        state
            .ferry
            .count_user_types(&actor, project_id(&id)?, &body)
            .await?,
    ))
}

/// The saved user types with their counts and the estimate of the real run.
#[utoipa::path(get, path = "/api/v1/projects/{id}/goals", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = GoalsView), (status = 403, body = ErrorBody)))]
pub async fn goals(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<GoalsView>> {
    Ok(Json(state.ferry.goals(&actor, project_id(&id)?).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct PreviewRequest {
    /// The rules to preview; the latest saved mapping (or the suggestion) when left out.
    #[serde(default)]
    rules: Option<Vec<Rule>>,
    sample: Sample,
}

/// The rules given, or the latest saved mapping (or the suggestion).
async fn rules_or_latest(
    state: &AppState,
    actor: &domain::accounts::Actor,
    project: ProjectId,
    rules: Option<Vec<Rule>>,
) -> domain::Result<Mapping> {
    match rules {
        Some(rules) => {
            if rules.len() > domain::service::MAX_RULES {
                return Err(DomainError::invalid(
                    "rules",
                    format!(
                        "a mapping holds at most {} rules",
                        domain::service::MAX_RULES
                    ),
                ));
            }
            Ok(Mapping { rules })
        }
        None => Ok(state.ferry.mapping(actor, project, None).await?.mapping),
    }
}

/// Maps up to 20 records — a random sample, a search, or chosen ids (those a rule
/// rejects come with the impact) — and shows each rule's source value, result or error.
#[utoipa::path(post, path = "/api/v1/projects/{id}/mapping/preview", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    let project = project_id(&id)?;
    let mapping = rules_or_latest(&state, &actor, project, body.rules).await?;
    Ok(Json(
        state
            .ferry
            .preview(&actor, project, &mapping, &body.sample)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ImpactRequest {
    /// The rules to assess; the latest saved mapping when left out.
    #[serde(default)]
    rules: Option<Vec<Rule>>,
}

/// Starts computing the impact over every record in the background (202); poll the
/// GET for progress and the report.
#[utoipa::path(post, path = "/api/v1/projects/{id}/mapping/impact", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    request_body = ImpactRequest,
    responses((status = 202, body = ImpactView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_impact(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ImpactRequest>,
) -> ApiResult<(StatusCode, Json<ImpactView>)> {
    let project = project_id(&id)?;
    let mapping = rules_or_latest(&state, &actor, project, body.rules).await?;
    let view = state.ferry.start_impact(&actor, project, mapping).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The last impact computation: progress while it runs, then per user type counts,
/// rejects per rule with their reasons, and uniqueness collisions.
#[utoipa::path(get, path = "/api/v1/projects/{id}/mapping/impact", tag = "goals",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = ImpactView), (status = 404, body = ErrorBody)))]
pub async fn impact(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<ImpactView>> {
    state
        .ferry
        .impact(&actor, project_id(&id)?)
        .await?
        .map(Json)
        .ok_or_else(|| DomainError::NotFound("impact (none computed yet)".into()).into())
}
