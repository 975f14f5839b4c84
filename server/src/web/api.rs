//! REST API v1 for automation: JSON under `/api/v1`, bearer API tokens, the same
//! use-cases (and so the same role checks) as the UI, and an OpenAPI document generated
//! from these handlers at `/api/v1/openapi.json`.

use super::{AppState, auth::Resolved};
use axum::{
    Json, Router,
    extract::{
        FromRequest, FromRequestParts, Path, Query, Request, State, rejection::JsonRejection,
    },
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use domain::{
    DomainError,
    accounts::{Account, Actor},
    audit::{AuditPage, AuditQuery},
    ids::{ProjectId, UploadId},
    pagination::{Page, PageRequest},
    projects::{Project, ProjectDraft, ProjectFilter, SourceKind},
    uploads::{StoredError, Upload},
};
use serde::{Deserialize, Serialize};
use utoipa::{
    IntoParams, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

pub(super) mod assessment;
pub(super) mod goals;
pub(super) mod mappings;
pub(super) mod passwords;
pub(super) mod plan;
pub(super) mod retention;
pub(super) mod review;
pub(super) mod runs;
pub(super) mod targets;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{id}", get(get_project).patch(update_project))
        .route("/projects/{id}/journey", get(get_journey))
        .route("/projects/{id}/archive", post(archive_project))
        .route("/projects/{id}/restore", post(restore_project))
        .route("/audit", get(audit))
        .route("/projects/{id}/uploads", get(list_uploads))
        .route("/uploads/{id}", get(get_upload).delete(remove_upload))
        .route("/uploads/{id}/errors", get(upload_errors))
        .route("/uploads/{id}/read", post(read_again))
        .route("/uploads/{id}/errors.csv", get(upload_errors_csv))
        .route(
            "/projects/{id}/uploads/events",
            get(super::events::upload_events),
        )
        .route(
            "/projects/{id}/assessment",
            get(assessment::get).post(assessment::start),
        )
        .route(
            "/projects/{id}/assessment/findings",
            get(assessment::findings),
        )
        .route(
            "/projects/{id}/assessment/classes",
            axum::routing::put(assessment::set_class),
        )
        .route("/projects/{id}/assessment/reveal", post(assessment::reveal))
        .route("/projects/{id}/assessment/events", get(assessment::events))
        .route("/projects/{id}/targets", get(targets::list))
        .route(
            "/projects/{id}/targets/{role}",
            get(targets::get).put(targets::put).delete(targets::delete),
        )
        .route("/projects/{id}/targets/{role}/test", post(targets::test))
        .route(
            "/projects/{id}/mapping",
            get(mappings::get).put(mappings::put),
        )
        .route("/projects/{id}/mapping/versions", get(mappings::versions))
        .route("/projects/{id}/plan", get(plan::get).put(plan::put))
        .route("/projects/{id}/plan/versions", get(plan::versions))
        .route("/projects/{id}/plan/versions/{version}", get(plan::version))
        .route(
            "/projects/{id}/plan/versions/{version}/approve",
            post(plan::approve),
        )
        .route("/projects/{id}/plan/compare", get(plan::compare))
        .route("/projects/{id}/report", get(plan::report))
        .route(
            "/projects/{id}/retention",
            get(retention::get).put(retention::put),
        )
        .route("/projects/{id}/purge", post(retention::purge))
        .route(
            "/projects/{id}/uploads/{upload}/purge",
            post(retention::purge_upload),
        )
        .route("/projects/{id}/mapping/diff", get(mappings::diff))
        .route("/projects/{id}/mapping/export", get(mappings::export))
        .route("/projects/{id}/mapping/import", post(mappings::import))
        .route("/projects/{id}/mapping/preview", post(goals::preview))
        .route(
            "/projects/{id}/mapping/impact",
            get(goals::impact).post(goals::start_impact),
        )
        .route(
            "/projects/{id}/user-types",
            get(goals::get_user_types).put(goals::put_user_types),
        )
        .route(
            "/projects/{id}/user-types/count",
            post(goals::count_user_types),
        )
        .route("/projects/{id}/goals", get(goals::goals))
        .route("/projects/{id}/runs", get(runs::list))
        .route("/projects/{id}/runs/test", post(runs::start_test))
        .route("/projects/{id}/runs/reconcile", post(runs::reconcile))
        .route("/projects/{id}/runs/delta", post(runs::delta))
        .route("/projects/{id}/runs/preflight", get(runs::preflight))
        .route("/projects/{id}/runs/real", post(runs::start_real))
        .route("/projects/{id}/runs/{run}", get(runs::get))
        .route(
            "/projects/{id}/runs/{run}/window",
            axum::routing::put(runs::window),
        )
        .route("/projects/{id}/runs/{run}/start", post(runs::start))
        .route("/projects/{id}/runs/{run}/pause", post(runs::pause))
        .route("/projects/{id}/runs/{run}/resume", post(runs::resume))
        .route("/projects/{id}/runs/{run}/cancel", post(runs::cancel))
        .route("/projects/{id}/runs/{run}/records", get(runs::records))
        .route(
            "/projects/{id}/runs/{run}/crosswalk.csv",
            get(runs::crosswalk),
        )
        .route(
            "/projects/{id}/runs/{run}/retry",
            get(runs::retry_plan).post(runs::retry),
        )
        .route("/projects/{id}/runs/{run}/rollback", post(runs::rollback))
        .route("/projects/{id}/runs/{run}/events", get(runs::events))
        .route("/projects/{id}/review", get(review::queue))
        .route("/projects/{id}/review/summary", get(review::summary))
        .route("/projects/{id}/review/groups", get(review::groups))
        .route(
            "/projects/{id}/review/records/{source_id}",
            get(review::record),
        )
        .route(
            "/projects/{id}/review/records/{source_id}/correction",
            axum::routing::put(review::correct),
        )
        .route(
            "/projects/{id}/review/records/{source_id}/correction/preview",
            post(review::preview_correction),
        )
        .route("/projects/{id}/review/actions", post(review::act))
        .route("/projects/{id}/review/retry", post(review::retry))
        .route("/projects/{id}/review/tasks", get(review::tasks))
        .route(
            "/projects/{id}/review/tasks/{task}/cancel",
            post(review::cancel_task),
        )
        .route("/projects/{id}/review/export.csv", get(review::export))
        .route(
            "/projects/{id}/review/corrections",
            post(review::import_corrections),
        )
        .route(
            "/members/{id}/personal-data",
            axum::routing::put(review::grant),
        )
        .route(
            "/projects/{id}/passwords/service",
            get(passwords::get_service).put(passwords::put_service),
        )
        .route(
            "/projects/{id}/passwords/service/secret",
            post(passwords::rotate_secret),
        )
        .route(
            "/projects/{id}/passwords/service/key",
            post(passwords::create_key).delete(passwords::revoke_key),
        )
        .route("/projects/{id}/passwords/script", get(passwords::script))
        .route(
            "/projects/{id}/passwords/verifications",
            get(passwords::verifications),
        )
        .route(
            "/projects/{id}/passwords/coverage",
            get(passwords::coverage),
        )
        .route(
            "/projects/{id}/passwords/rehearsal/candidates",
            get(passwords::candidates),
        )
        .route(
            "/projects/{id}/passwords/rehearsal",
            post(passwords::rehearse),
        )
        .route(
            "/projects/{id}/passwords/waves",
            get(passwords::waves).post(passwords::start_wave),
        )
        .route(
            "/projects/{id}/passwords/waves/plan",
            axum::routing::put(passwords::save_plan),
        )
        .route(
            "/projects/{id}/passwords/legacy",
            get(passwords::get_legacy)
                .put(passwords::put_legacy)
                .delete(passwords::delete_legacy),
        )
        .route(
            "/projects/{id}/passwords/legacy/test",
            post(passwords::test_legacy),
        )
        .fallback(|| async { ApiError(DomainError::NotFound("API endpoint".into())) })
}

/// Every API error: `{"error": {"code", "message", "field"}}` with the matching status.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid`, `not_found`, `conflict`, `unauthenticated`, `forbidden`, `throttled`, `internal`.
    code: String,
    message: String,
    /// The request field the error is about, when there is one.
    field: Option<String>,
}

pub struct ApiError(DomainError);

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let DomainError::Internal(detail) = &self.0 {
            tracing::error!(error = %detail, "API request failed");
        }
        let err = self.0.public();
        let status =
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: err.code().to_string(),
                message: err.to_string(),
                field: err.field().map(str::to_string),
            },
        };
        let mut response = (status, Json(body)).into_response();
        match &err {
            DomainError::Unauthenticated(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ferry\""),
                );
            }
            DomainError::Throttled { retry_after_secs } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

pub(super) type ApiResult<T> = Result<T, ApiError>;

/// The caller, authenticated by its API token.
pub struct ApiActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for ApiActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Resolved>()
            .and_then(|r| r.actor.clone())
            .map(ApiActor)
            .ok_or_else(|| {
                ApiError(DomainError::Unauthenticated(
                    "send a valid API token as `Authorization: Bearer ferry_…`".into(),
                ))
            })
    }
}

/// A JSON body whose problems are reported in the API's error format.
pub struct ApiJson<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(|rejection: JsonRejection| {
                ApiError(DomainError::invalid("body", rejection.body_text()))
            })
    }
}

pub(super) fn project_id(id: &str) -> ApiResult<ProjectId> {
    Ok(id.parse()?)
}

/// A CSV download read page by page: the header, then each page `fetch` returns
/// after the key of the one before, until it returns no next key. A failure mid-way
/// ends the download in an error (logged with `what`), so a file cut short never looks
/// complete.
pub(super) fn csv_pages<K, F, Fut>(
    header: &'static [&'static str],
    what: String,
    fetch: F,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static
where
    K: Send + 'static,
    F: Fn(Option<K>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = domain::Result<(Vec<Vec<String>>, Option<K>)>>
        + Send
        + 'static,
{
    use futures_util::StreamExt;
    let fetch = std::sync::Arc::new(fetch);
    // `Some(None)` before the first page, then the key of the last page; `None` ends.
    futures_util::stream::unfold(Some(None::<K>), move |cursor| {
        let (fetch, what) = (fetch.clone(), what.clone());
        async move {
            let after = cursor?;
            let mut out = csv::Writer::from_writer(Vec::new());
            if after.is_none() {
                let _ = out.write_record(header);
            }
            match fetch(after).await {
                Ok((rows, next)) => {
                    for row in &rows {
                        let _ = out.write_record(row);
                    }
                    Some((Ok(out.into_inner().unwrap_or_default()), next.map(Some)))
                }
                Err(err) => {
                    tracing::error!(error = %err, "{what} stopped early");
                    Some((
                        Err(std::io::Error::other(format!("{what} stopped early"))),
                        None,
                    ))
                }
            }
        }
    })
    .fuse()
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The account the token acts for.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Account), (status = 401, body = ErrorBody)))]
async fn me(State(state): State<AppState>, ApiActor(actor): ApiActor) -> ApiResult<Json<Account>> {
    Ok(Json(state.ferry.whoami(&actor).await?))
}

#[derive(Deserialize, IntoParams)]
pub struct ListProjectsQuery {
    /// Skip this many projects.
    offset: Option<u64>,
    /// Page size, 1–200 (default 50).
    limit: Option<u32>,
    /// Include archived projects.
    #[serde(default)]
    include_archived: bool,
}

/// Projects, newest first. Support tokens see only assigned projects.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", params(ListProjectsQuery),
    responses((status = 200, body = Page<Project>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_projects(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<ListProjectsQuery>,
) -> ApiResult<Json<Page<Project>>> {
    let filter = ProjectFilter {
        include_archived: q.include_archived,
    };
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(state.ferry.list_projects(&actor, filter, page).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewProject {
    name: String,
    source_kind: SourceKind,
    #[serde(default)]
    description: String,
}

/// Creates a project.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = Project), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    ApiJson(body): ApiJson<NewProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let draft = ProjectDraft::new(&body.name, body.source_kind.as_str(), &body.description)?;
    let project = state.ferry.create_project(&actor, draft).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)))]
async fn get_project(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(state.ferry.project(&actor, project_id(&id)?).await?))
}

/// How far the project's migration has got: each step's state and the next step.
#[utoipa::path(get, path = "/api/v1/projects/{id}/journey", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = domain::journey::Journey), (status = 404, body = ErrorBody)))]
async fn get_journey(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<domain::journey::Journey>> {
    Ok(Json(state.ferry.journey(&actor, project_id(&id)?).await?))
}

/// Fields to change; those left out keep their value.
#[derive(Deserialize, ToSchema)]
pub struct ProjectChanges {
    name: Option<String>,
    source_kind: Option<SourceKind>,
    description: Option<String>,
}

/// Renames a project or changes its source or description.
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects", request_body = ProjectChanges,
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_project(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(changes): ApiJson<ProjectChanges>,
) -> ApiResult<Json<Project>> {
    let changes = domain::projects::ProjectChanges {
        name: changes.name,
        source_kind: changes.source_kind.map(|k| k.as_str().to_string()),
        description: changes.description,
    };
    Ok(Json(
        state
            .ferry
            .update_project(&actor, project_id(&id)?, changes)
            .await?,
    ))
}

/// Archives a project: hidden from the default list, read-only.
#[utoipa::path(post, path = "/api/v1/projects/{id}/archive", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn archive_project(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        state
            .ferry
            .set_project_archived(&actor, project_id(&id)?, true)
            .await?,
    ))
}

/// Restores an archived project.
#[utoipa::path(post, path = "/api/v1/projects/{id}/restore", tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn restore_project(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Project>> {
    Ok(Json(
        state
            .ferry
            .set_project_archived(&actor, project_id(&id)?, false)
            .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct AuditParams {
    /// Return entries older than this sequence number (from `next_before`).
    before: Option<i64>,
    /// Only entries of this project.
    project: Option<String>,
    /// Page size, 1–200 (default 50).
    limit: Option<u32>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 403, body = ErrorBody)))]
async fn audit(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Query(q): Query<AuditParams>,
) -> ApiResult<Json<AuditPage>> {
    let project = q.project.as_deref().map(project_id).transpose()?;
    let query = AuditQuery::new(q.before, project, q.limit);
    Ok(Json(state.ferry.audit_page(&actor, query).await?))
}

#[derive(Deserialize, IntoParams)]
pub(super) struct PageParams {
    /// Skip this many items.
    offset: Option<u64>,
    /// Page size, 1–200 (default 50).
    limit: Option<u32>,
}

pub(super) fn upload_id(id: &str) -> ApiResult<UploadId> {
    Ok(id.parse()?)
}

/// A project's uploads, newest first, with their reading progress and counts.
#[utoipa::path(get, path = "/api/v1/projects/{id}/uploads", tag = "uploads",
    params(("id" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, body = Page<Upload>), (status = 404, body = ErrorBody)))]
async fn list_uploads(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<Upload>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .list_uploads(&actor, project_id(&id)?, page)
            .await?,
    ))
}

/// One upload: status, bytes read, rows read and failed, new/changed/missing records.
#[utoipa::path(get, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 200, body = Upload), (status = 404, body = ErrorBody)))]
async fn get_upload(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Upload>> {
    Ok(Json(state.ferry.upload(&actor, upload_id(&id)?).await?))
}

/// The rows or entries of an upload that could not be read, with where and why.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/errors", tag = "uploads",
    params(("id" = String, Path, description = "Upload id"), PageParams),
    responses((status = 200, body = Page<StoredError>), (status = 404, body = ErrorBody)))]
async fn upload_errors(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<StoredError>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .upload_errors(&actor, upload_id(&id)?, page)
            .await?,
    ))
}

/// All errors of an upload as CSV (`location,field,reason`), streamed page by page.
#[utoipa::path(get, path = "/api/v1/uploads/{id}/errors.csv", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = ErrorBody)))]
pub async fn upload_errors_csv(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = upload_id(&id)?;
    let upload = state.ferry.upload(&actor, id).await?;
    use futures_util::StreamExt;
    let pages = futures_util::stream::unfold(Some(0u64), move |offset| {
        let (state, actor) = (state.clone(), actor.clone());
        async move {
            let offset = offset?;
            let page = state
                .ferry
                .upload_errors(&actor, id, PageRequest::new(Some(offset), Some(200)))
                .await;
            // A database error mid-way fails the stream: the download ends in an error
            // the browser shows, never as a complete-looking file cut short.
            let (chunk, next) = match page {
                Ok(page) => {
                    let mut out = csv::Writer::from_writer(Vec::new());
                    if offset == 0 {
                        let _ = out.write_record(["location", "field", "reason"]);
                    }
                    for e in &page.items {
                        let _ = out.write_record([
                            e.location.as_str(),
                            e.field.as_deref().unwrap_or(""),
                            e.reason.as_str(),
                        ]);
                    }
                    let next = page.has_next().then(|| page.next_offset());
                    (out.into_inner().unwrap_or_default(), next)
                }
                Err(err) => {
                    tracing::error!(upload = %id, error = %err, "error export failed");
                    return Some((Err(std::io::Error::other("the export stopped early")), None));
                }
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    })
    // A compressing layer may poll once more after the end; an unfused unfold panics.
    .fuse();
    let disposition = format!("attachment; filename=\"{}-errors.csv\"", upload.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}

/// A Firebase project's password hash parameters, as the Firebase console shows them.
#[derive(Deserialize, ToSchema)]
pub struct FirebaseHashParams {
    /// base64
    signer_key: String,
    /// base64
    salt_separator: String,
    rounds: u32,
    mem_cost: u32,
}

/// How to read an upload again. Everything is optional: without `format` the content
/// is detected again.
#[derive(Deserialize, ToSchema, Default)]
pub struct ReadRequest {
    /// `csv`, `json`, `ndjson` or `ldif`.
    format: Option<String>,
    /// `generic`, `okta`, `cognito`, `entra_id`, `auth0`, `keycloak`, `firebase`, `ldap`.
    source: Option<String>,
    /// For CSV: one character, or `tab`.
    delimiter: Option<String>,
    /// `utf-8`, `utf-16le`, `utf-16be` or `latin1`.
    encoding: Option<String>,
    /// Needed to read Firebase password hashes.
    firebase: Option<FirebaseHashParams>,
}

/// Removes an upload — a file that could not be read, or the wrong export — with the
/// users only it delivered. Refused (409) while it is being read, while a run of the
/// project is active, or when some of its users also came from another upload.
#[utoipa::path(delete, path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_upload(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let removed = state.ferry.remove_upload(&actor, upload_id(&id)?).await?;
    state.ingest.forget(removed.project_id, removed.id);
    Ok(StatusCode::NO_CONTENT)
}

/// Reads an upload again, with a chosen format or the parameters a format needs.
#[utoipa::path(post, path = "/api/v1/uploads/{id}/read", tag = "uploads", request_body = ReadRequest,
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 202, body = Upload), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn read_again(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReadRequest>,
) -> ApiResult<(StatusCode, Json<Upload>)> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let id = upload_id(&id)?;
    let upload = state.ferry.may_read_again(&actor, id).await?;
    let format = match &request.format {
        None => None,
        Some(format) => Some(
            domain::import::detect::choose(
                format,
                request.source.as_deref(),
                request.delimiter.as_deref(),
                request.encoding.as_deref(),
            )
            .map_err(|(field, reason)| DomainError::invalid(field, reason))?,
        ),
    };
    let firebase = match request.firebase {
        None => None,
        Some(p) => {
            let bytes = |field: &'static str, text: &str| {
                STANDARD
                    .decode(text.trim())
                    .map_err(|_| DomainError::invalid(field, "is not base64"))
            };
            Some(domain::passwords::FirebaseParams {
                signer_key: bytes("firebase.signer_key", &p.signer_key)?,
                salt_separator: bytes("firebase.salt_separator", &p.salt_separator)?,
                rounds: p.rounds,
                mem_cost: p.mem_cost,
            })
        }
    };
    if let Some(params) = &firebase {
        // Kept (sealed) for the project: later uploads, and reading again after a
        // restart, need them too.
        let sealed = state
            .ingest
            .seal_firebase(upload.project_id, params)
            .await?;
        state
            .ferry
            .save_project_secret(&actor, upload.project_id, crate::ingest::FIREBASE, &sealed)
            .await?;
    }
    let options = crate::ingest::ReadOptions { format, firebase };
    state.ingest.start(id, options).await?;
    Ok((StatusCode::ACCEPTED, Json(upload)))
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ferry_…")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Ferry API", version = "1", description = "Automation API of Ferry. Authenticate with an API token created on the API tokens page: `Authorization: Bearer ferry_…`."),
    paths(me, list_projects, create_project, get_project, get_journey, update_project, archive_project, restore_project, audit,
        list_uploads, super::uploads::receive, get_upload, remove_upload, upload_errors, upload_errors_csv, read_again,
        super::events::upload_events, assessment::start, assessment::get, assessment::findings,
        assessment::set_class, assessment::reveal, assessment::events,
        targets::list, targets::get, targets::put, targets::delete, targets::test,
        mappings::get, mappings::put, mappings::versions, mappings::diff, mappings::export, mappings::import,
        goals::get_user_types, goals::put_user_types, goals::count_user_types, goals::goals, goals::preview,
        goals::start_impact, goals::impact,
        plan::get, plan::put, plan::versions, plan::version, plan::compare, plan::approve,
        plan::report, retention::get, retention::put, retention::purge, retention::purge_upload,
        runs::list, runs::start_test, runs::reconcile, runs::delta, runs::preflight, runs::start_real, runs::get, runs::window,
        runs::start, runs::pause, runs::resume, runs::cancel, runs::records, runs::crosswalk,
        runs::retry_plan, runs::retry, runs::rollback, runs::events,
        review::queue, review::summary, review::groups, review::record, review::preview_correction,
        review::correct, review::act, review::retry, review::export, review::import_corrections,
        review::grant, review::tasks, review::cancel_task,
        passwords::get_service, passwords::put_service, passwords::rotate_secret,
        passwords::create_key, passwords::revoke_key, passwords::script,
        passwords::verifications, passwords::coverage, passwords::candidates,
        passwords::rehearse, passwords::waves, passwords::save_plan, passwords::start_wave,
        passwords::get_legacy, passwords::put_legacy, passwords::delete_legacy, passwords::test_legacy,
        super::password_service::start, super::password_service::poll,
        super::password_service::status, super::password_service::token),
    modifiers(&BearerAuth),
    security(("api_token" = [])),
    tags((name = "account"), (name = "projects"), (name = "uploads"), (name = "assessment"), (name = "targets"), (name = "mapping"), (name = "goals"), (name = "plan"), (name = "retention"), (name = "runs"), (name = "review"), (name = "passwords"), (name = "password service", description = "The endpoints WSO2's login script calls (DESIGN §7), below `/password-migration/{project}` rather than `/api/v1`; they authenticate by the project's client credentials or static key, never an API token."), (name = "audit"))
)]
pub struct ApiDoc;
