//! The attribute mapping through the API: read it (or the suggestion) with its
//! problems, save versions, list and compare them, export and import them as JSON.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::{
    DomainError,
    mapping::{
        Rule,
        versions::{MappingVersionSummary, RuleChange},
    },
    pagination::{Page, PageRequest},
    service::MappingView,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
pub struct VersionParams {
    /// A saved version; the latest when left out.
    version: Option<u32>,
}

/// The latest mapping (or `version`) with its problems; before any is saved, the
/// suggestion for the project's source (`version` is then null).
#[utoipa::path(get, path = "/api/v1/projects/{id}/mapping", tag = "mapping",
    params(("id" = String, Path, description = "Project id"), VersionParams),
    responses((status = 200, body = MappingView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<VersionParams>,
) -> ApiResult<Json<MappingView>> {
    Ok(Json(
        state
            .ferry
            .mapping(&actor, project_id(&id)?, q.version)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct SaveRequest {
    rules: Vec<Rule>,
    #[serde(default)]
    note: String,
}

/// Saves the rules as the next version (201). Rules with problems are saved and
/// returned with them; runs refuse a mapping that has any.
#[utoipa::path(put, path = "/api/v1/projects/{id}/mapping", tag = "mapping",
    params(("id" = String, Path, description = "Project id")),
    request_body = SaveRequest,
    responses((status = 201, body = MappingView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SaveRequest>,
) -> ApiResult<(StatusCode, Json<MappingView>)> {
    let mapping = domain::mapping::Mapping { rules: body.rules };
    let view = state
        .ferry
        .save_mapping(&actor, project_id(&id)?, mapping, &body.note)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize, IntoParams)]
pub struct PageParams {
    offset: Option<u64>,
    limit: Option<u32>,
}

/// Saved versions, newest first, with who saved them and when.
#[utoipa::path(get, path = "/api/v1/projects/{id}/mapping/versions", tag = "mapping",
    params(("id" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, body = Page<MappingVersionSummary>)))]
pub async fn versions(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<MappingVersionSummary>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .mapping_versions(&actor, project_id(&id)?, page)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct DiffParams {
    from: u32,
    to: u32,
}

/// What changed between two versions, rule by rule (rules are known by their target).
#[utoipa::path(get, path = "/api/v1/projects/{id}/mapping/diff", tag = "mapping",
    params(("id" = String, Path, description = "Project id"), DiffParams),
    responses((status = 200, body = Vec<RuleChange>), (status = 404, body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<DiffParams>,
) -> ApiResult<Json<Vec<RuleChange>>> {
    let changes = state
        .ferry
        .mapping_diff(&actor, project_id(&id)?, q.from, q.to)
        .await?;
    Ok(Json(changes))
}

/// The version (latest by default) as a JSON document to keep in version control.
#[utoipa::path(get, path = "/api/v1/projects/{id}/mapping/export", tag = "mapping",
    params(("id" = String, Path, description = "Project id"), VersionParams),
    responses((status = 200, description = "`{\"ferry_mapping\": 1, \"note\", \"rules\"}`", content_type = "application/json"), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<VersionParams>,
) -> ApiResult<Response> {
    let project = project_id(&id)?;
    let (version, document) = state
        .ferry
        .export_mapping(&actor, project, q.version)
        .await?;
    let disposition = format!("attachment; filename=\"mapping-{project}-v{version}.json\"");
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        document,
    )
        .into_response())
}

/// Saves an exported document as the next version (201).
#[utoipa::path(post, path = "/api/v1/projects/{id}/mapping/import", tag = "mapping",
    params(("id" = String, Path, description = "Project id")),
    request_body(content = String, description = "An export document", content_type = "application/json"),
    responses((status = 201, body = MappingView), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<MappingView>)> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| DomainError::invalid("file", "is not UTF-8 text"))?;
    let view = state
        .ferry
        .import_mapping(&actor, project_id(&id)?, text)
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}
