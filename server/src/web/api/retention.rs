//! Retention and purge through the API: how long a project's imported data is kept
//! and what a purge keeps, purging the project's data or one upload. Owners change
//! them; owners and administrators read them.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id, upload_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, State},
};
use domain::retention::{PurgeOutcome, Retention, RetentionView, UploadPurge};
use serde::Deserialize;
use utoipa::ToSchema;

/// The retention period, when the scheduled purge happens, what the project holds.
#[utoipa::path(get, path = "/api/v1/projects/{id}/retention", tag = "retention",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = RetentionView), (status = 403, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<RetentionView>> {
    Ok(Json(state.ferry.retention(&actor, project_id(&id)?).await?))
}

/// Sets the retention period (days after the latest real run finished; none keeps
/// the data until purged by hand) and what a purge keeps. Owners only.
#[utoipa::path(put, path = "/api/v1/projects/{id}/retention", tag = "retention",
    params(("id" = String, Path, description = "Project id")),
    request_body = Retention,
    responses((status = 200, body = RetentionView), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Purged or archived"), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Retention>,
) -> ApiResult<Json<RetentionView>> {
    Ok(Json(
        state
            .ferry
            .save_retention(&actor, project_id(&id)?, body)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct PurgeRequest {
    /// The project's name, typed to confirm.
    pub confirm: String,
}

/// Purges the project's imported data now: its key destroyed, records, uploads'
/// files, findings, reports, secrets, the review queue and the password service's
/// logins deleted; the audit log kept, the crosswalk and the final report kept as
/// chosen. The project is read only from then on. Owners only; refused while a run
/// of the project is under way.
#[utoipa::path(post, path = "/api/v1/projects/{id}/purge", tag = "retention",
    params(("id" = String, Path, description = "Project id")),
    request_body = PurgeRequest,
    responses((status = 200, body = PurgeOutcome), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Purged already, or a run under way"),
        (status = 422, body = ErrorBody, description = "The confirmation is not the project's name")))]
pub async fn purge(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PurgeRequest>,
) -> ApiResult<Json<PurgeOutcome>> {
    Ok(Json(
        state
            .ferry
            .purge_project(&actor, project_id(&id)?, &body.confirm)
            .await?,
    ))
}

/// Purges one upload: its file destroyed, and the records whose newest version it
/// brought (no later upload brought them again). Its row stays, marked purged.
/// Owners only.
#[utoipa::path(post, path = "/api/v1/projects/{id}/uploads/{upload}/purge", tag = "retention",
    params(("id" = String, Path, description = "Project id"), ("upload" = String, Path, description = "Upload id")),
    responses((status = 200, body = UploadPurge), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn purge_upload(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, upload)): Path<(String, String)>,
) -> ApiResult<Json<UploadPurge>> {
    let project = project_id(&id)?;
    let upload = upload_id(&upload)?;
    let purged = state.ferry.purge_upload(&actor, project, upload).await?;
    state.ingest.forget(project, upload);
    Ok(Json(purged))
}
