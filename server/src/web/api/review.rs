//! Support staff's review through the API: the project's queue (filtered, grouped,
//! paged by key), where its users stand, a record's page, corrections (tried, kept,
//! imported from CSV), actions on one or many users, retries, the CSV export, and the
//! owner's grant to see personal data.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id};
use crate::web::AppState;
use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::{
    DomainError,
    ids::{AccountId, RunId},
    review::{
        ActionResult, Correction, CorrectionsReport, EXPORT_COLUMNS, GroupBy, GroupCount,
        QueueFilter, ReviewAction, ReviewSummary, ReviewTask, Selection,
    },
    runs::Run,
    service::{CorrectionPreview, QueueView, RecordReview, ReviewExport},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The queue's filters, as query parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct QueueQuery {
    /// An e-mail address, user name or legacy id (exact, any case).
    search: Option<String>,
    error_class: Option<String>,
    /// A mapping rule (`rule 3`) or an attribute (`emails`).
    fault: Option<String>,
    scim_type: Option<String>,
    /// A run id.
    run: Option<String>,
    user_type: Option<String>,
    /// A member id, or `none`.
    assignee: Option<String>,
    /// `open`, `in_progress`, `waiting`, `resolved`, `skipped`, `migrated` or `all`
    /// (default: users waiting for review).
    state: Option<String>,
    /// Text in the target's detail.
    text: Option<String>,
    /// The last legacy id of the previous page.
    after: Option<String>,
    /// Page size, 1–500 (default 50).
    limit: Option<u32>,
    /// For groups: `class`, `fault`, `pattern`, `scim_type`, `user_type`, `run`,
    /// `state` or `assignee`.
    by: Option<String>,
}

impl QueueQuery {
    fn filter(&self) -> ApiResult<QueueFilter> {
        let run = match self.run.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(run) => Some(
                run.parse::<RunId>()
                    .map_err(|_| DomainError::invalid("run", "not a run id"))?,
            ),
            None => None,
        };
        Ok(QueueFilter {
            search: self.search.clone(),
            error_class: self.error_class.clone(),
            fault: self.fault.clone(),
            scim_type: self.scim_type.clone(),
            run,
            user_type: self.user_type.clone(),
            assignee: self.assignee.clone(),
            state: self.state.clone(),
            text: self.text.clone(),
        })
    }
}

/// The queue: a page of users waiting for review (or as filtered), how many match,
/// and where the project's users stand.
#[utoipa::path(get, path = "/api/v1/projects/{id}/review", tag = "review",
    params(("id" = String, Path, description = "Project id"), QueueQuery),
    responses((status = 200, body = QueueView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Json<QueueView>> {
    let filter = q.filter()?;
    Ok(Json(
        state
            .ferry
            .review_queue(
                &actor,
                project_id(&id)?,
                &filter,
                q.after.as_deref(),
                q.limit.unwrap_or(50),
            )
            .await?,
    ))
}

/// Where the project's users stand: migrated, waiting for review, skipped, resolved
/// or not yet attempted (they add up to the users of the project).
#[utoipa::path(get, path = "/api/v1/projects/{id}/review/summary", tag = "review",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = ReviewSummary), (status = 404, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<ReviewSummary>> {
    Ok(Json(
        state.ferry.review_summary(&actor, project_id(&id)?).await?,
    ))
}

/// The matching users counted by class, rule, detail pattern, scimType, user type,
/// run, review state or assignee (`by`), largest groups first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/review/groups", tag = "review",
    params(("id" = String, Path, description = "Project id"), QueueQuery),
    responses((status = 200, body = Vec<GroupCount>), (status = 422, body = ErrorBody)))]
pub async fn groups(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Json<Vec<GroupCount>>> {
    let by = q.by.as_deref().unwrap_or("class");
    let by = GroupBy::parse(by).ok_or_else(|| {
        DomainError::invalid(
            "by",
            "expected class, fault, pattern, scim_type, user_type, run, state or assignee",
        )
    })?;
    let filter = q.filter()?;
    Ok(Json(
        state
            .ferry
            .review_groups(&actor, project_id(&id)?, &filter, by)
            .await?,
    ))
}

/// A legacy user's page: the record as imported and corrected (masked unless the
/// caller may see personal data), what the latest mapping makes of it, each run's
/// attempt and the review history.
#[utoipa::path(get, path = "/api/v1/projects/{id}/review/records/{source_id}", tag = "review",
    params(("id" = String, Path, description = "Project id"), ("source_id" = String, Path, description = "Legacy id")),
    responses((status = 200, body = RecordReview), (status = 404, body = ErrorBody)))]
pub async fn record(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, source_id)): Path<(String, String)>,
) -> ApiResult<Json<RecordReview>> {
    Ok(Json(
        state
            .ferry
            .review_record(&actor, project_id(&id)?, &source_id)
            .await?,
    ))
}

/// Tries a correction without saving it: the corrected record and its mapped result.
#[utoipa::path(post, path = "/api/v1/projects/{id}/review/records/{source_id}/correction/preview", tag = "review",
    params(("id" = String, Path, description = "Project id"), ("source_id" = String, Path, description = "Legacy id")),
    request_body = Correction,
    responses((status = 200, body = CorrectionPreview), (status = 422, body = ErrorBody)))]
pub async fn preview_correction(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, source_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Correction>,
) -> ApiResult<Json<CorrectionPreview>> {
    Ok(Json(
        state
            .ferry
            .preview_correction(&actor, project_id(&id)?, &source_id, &body)
            .await?,
    ))
}

/// Keeps a correction beside the imported record (audited); runs use it from now on.
#[utoipa::path(put, path = "/api/v1/projects/{id}/review/records/{source_id}/correction", tag = "review",
    params(("id" = String, Path, description = "Project id"), ("source_id" = String, Path, description = "Legacy id")),
    request_body = Correction,
    responses((status = 200, body = RecordReview), (status = 422, body = ErrorBody)))]
pub async fn correct(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, source_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Correction>,
) -> ApiResult<Json<RecordReview>> {
    Ok(Json(
        state
            .ferry
            .correct_record(&actor, project_id(&id)?, &source_id, &body)
            .await?,
    ))
}

/// An action on users of the queue.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ActRequest {
    pub selection: Selection,
    #[serde(flatten)]
    pub action: ReviewAction,
}

/// Assigns, sets a review state, skips with a reason or comments, on the selected
/// users (ids, or everything a filter matches).
#[utoipa::path(post, path = "/api/v1/projects/{id}/review/actions", tag = "review",
    params(("id" = String, Path, description = "Project id")),
    request_body = ActRequest,
    responses((status = 200, body = ActionResult), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ActRequest>,
) -> ApiResult<Json<ActionResult>> {
    Ok(Json(
        state
            .ferry
            .review_act(&actor, project_id(&id)?, &body.selection, &body.action)
            .await?,
    ))
}

/// A project's newest background actions (actions on more than 100,000 users), newest
/// first, with how far each got.
#[utoipa::path(get, path = "/api/v1/projects/{id}/review/tasks", tag = "review",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<ReviewTask>), (status = 404, body = ErrorBody)))]
pub async fn tasks(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ReviewTask>>> {
    Ok(Json(
        state.ferry.review_tasks(&actor, project_id(&id)?).await?,
    ))
}

/// Stops a background action at its next step; what it did stays done.
#[utoipa::path(post, path = "/api/v1/projects/{id}/review/tasks/{task}/cancel", tag = "review",
    params(("id" = String, Path, description = "Project id"), ("task" = String, Path, description = "Task id")),
    responses((status = 200, body = ReviewTask), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_task(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path((id, task)): Path<(String, String)>,
) -> ApiResult<Json<ReviewTask>> {
    let task =
        uuid::Uuid::parse_str(&task).map_err(|_| DomainError::NotFound("review action".into()))?;
    Ok(Json(
        state
            .ferry
            .cancel_review_task(&actor, project_id(&id)?, task)
            .await?,
    ))
}

/// Which users to retry.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RetryRequest {
    pub selection: Selection,
}

/// Sends the selected failed users again: a retry run against production with the
/// latest mapping and corrections (users an earlier attempt may have created are
/// looked up first).
#[utoipa::path(post, path = "/api/v1/projects/{id}/review/retry", tag = "review",
    params(("id" = String, Path, description = "Project id")),
    request_body = RetryRequest,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RetryRequest>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .review_retry(&actor, project_id(&id)?, &body.selection)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// The queue (or a filter of it) as CSV, with error details, review state and the
/// values a correction may change (masked unless the caller may see personal data).
#[utoipa::path(get, path = "/api/v1/projects/{id}/review/export.csv", tag = "review",
    params(("id" = String, Path, description = "Project id"), QueueQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<QueueQuery>,
) -> ApiResult<Response> {
    let filter = q.filter()?;
    let export = state
        .ferry
        .open_review_export(&actor, project_id(&id)?, &filter)
        .await?;
    Ok(export_response(state, export))
}

/// The export as a download, streamed page by page.
pub fn export_response(state: AppState, export: ReviewExport) -> Response {
    let name = format!(
        "attachment; filename=\"review-{}.csv\"",
        export.project.0.simple()
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(export_stream(state, export)),
    )
        .into_response()
}

fn export_stream(
    state: AppState,
    export: ReviewExport,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let what = format!("the review export of project {}", export.project);
    super::csv_pages(&EXPORT_COLUMNS, what, move |after: Option<String>| {
        let (state, export) = (state.clone(), export.clone());
        async move {
            state
                .ferry
                .review_export_page(&export, after.as_deref())
                .await
        }
    })
}

/// Corrections from a CSV (`text/csv`): a `source_id` column and any of `username`,
/// `email`, `given_name`, `family_name`, `display_name`, `phone`, `attributes.<name>`
/// (the export's file works as it is). Empty and masked cells change nothing; rows
/// that cannot apply are reported by line and field, and the others still apply.
#[utoipa::path(post, path = "/api/v1/projects/{id}/review/corrections", tag = "review",
    params(("id" = String, Path, description = "Project id")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = CorrectionsReport), (status = 422, body = ErrorBody)))]
pub async fn import_corrections(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<CorrectionsReport>> {
    Ok(Json(
        state
            .ferry
            .import_corrections(&actor, project_id(&id)?, &body)
            .await?,
    ))
}

/// Whether a member may see personal data unmasked.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct GrantRequest {
    pub granted: bool,
}

/// Lets a member see personal data unmasked, or takes it back (owners; audited).
#[utoipa::path(put, path = "/api/v1/members/{id}/personal-data", tag = "review",
    params(("id" = String, Path, description = "Member id")),
    request_body = GrantRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn grant(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<GrantRequest>,
) -> ApiResult<StatusCode> {
    let member = uuid::Uuid::parse_str(&id)
        .map(AccountId)
        .map_err(|_| DomainError::NotFound("member".into()))?;
    state
        .ferry
        .set_personal_data_grant(&actor, member, body.granted)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
