//! The assessment through the API: start it, read the report (examples masked, the
//! heatmap in a chosen time zone), page through what each quality check found, set
//! an attribute's class, and reveal one example value (audited).

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use domain::{
    DomainError,
    assess::{AssessOptions, AssessmentView, Check, Finding, classify::DataClass},
    pagination::{Page, PageRequest},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
pub struct ZoneParams {
    /// IANA time zone of the login heatmap, e.g. `Europe/Berlin` (default UTC).
    zone: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct StartRequest {
    /// Region for phone numbers without a country code (`US`, `DE`, …).
    phone_region: Option<String>,
}

/// Starts (or restarts) computing the assessment report in the background.
#[utoipa::path(post, path = "/api/v1/projects/{id}/assessment", tag = "assessment",
    params(("id" = String, Path, description = "Project id")),
    request_body(content = StartRequest, description = "Optional options", content_type = "application/json"),
    responses((status = 202, body = AssessmentView), (status = 409, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<AssessmentView>)> {
    let project = project_id(&id)?;
    // The body is optional: an empty one starts with the defaults.
    let request: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| DomainError::invalid("body", e.to_string()))?
    };
    let options = AssessOptions {
        phone_region: request.phone_region,
    };
    state
        .ferry
        .start_assessment(&actor, project, options)
        .await?;
    let view = state
        .ferry
        .assessment(&actor, project, None)
        .await?
        .ok_or_else(|| DomainError::Internal("the assessment vanished".into()))?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The report: totals, attributes, classes, groups, quality counts, activity.
#[utoipa::path(get, path = "/api/v1/projects/{id}/assessment", tag = "assessment",
    params(("id" = String, Path, description = "Project id"), ZoneParams),
    responses((status = 200, body = AssessmentView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<ZoneParams>,
) -> ApiResult<Json<AssessmentView>> {
    let view = state
        .ferry
        .assessment(&actor, project_id(&id)?, q.zone.as_deref())
        .await?
        .ok_or_else(|| {
            DomainError::NotFound("assessment (start one with POST to this address)".into())
        })?;
    Ok(Json(view))
}

#[derive(Deserialize, IntoParams)]
pub struct FindingParams {
    /// `invalid_email`, `duplicate_email`, `username_collision`, `phone_not_e164`,
    /// `future_date`, `unparseable_date`, `missing_user_name`, `missing_email`,
    /// `missing_name`, `unreadable_field`.
    check: String,
    offset: Option<u64>,
    /// Page size, 1–200 (default 50).
    limit: Option<u32>,
}

/// The records one quality check found, page by page.
#[utoipa::path(get, path = "/api/v1/projects/{id}/assessment/findings", tag = "assessment",
    params(("id" = String, Path, description = "Project id"), FindingParams),
    responses((status = 200, body = Page<Finding>), (status = 400, body = ErrorBody)))]
pub async fn findings(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<FindingParams>,
) -> ApiResult<Json<Page<Finding>>> {
    let check = Check::parse(&q.check)
        .ok_or_else(|| DomainError::invalid("check", format!("{:?} is not a check", q.check)))?;
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .assessment_findings(&actor, project_id(&id)?, check, page)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct ClassRequest {
    /// The attribute path as the report names it.
    path: String,
    /// `pii`, `confidential` or `other`; `null` returns to the automatic class.
    class: Option<String>,
}

/// Sets an attribute's class; the change is audited.
#[utoipa::path(put, path = "/api/v1/projects/{id}/assessment/classes", tag = "assessment",
    params(("id" = String, Path, description = "Project id")),
    request_body = ClassRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_class(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ClassRequest>,
) -> ApiResult<StatusCode> {
    let class = match request.class.as_deref() {
        None => None,
        Some(text) => Some(DataClass::parse(text).ok_or_else(|| {
            DomainError::invalid("class", "use pii, confidential or other (or null)")
        })?),
    };
    state
        .ferry
        .set_attribute_class(&actor, project_id(&id)?, &request.path, class)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct RevealRequest {
    path: String,
    /// Which example, from 0.
    index: usize,
}

#[derive(Serialize, ToSchema)]
pub struct Revealed {
    value: String,
}

/// Reveals one example value (owners and admins); audited with the attribute's name.
#[utoipa::path(post, path = "/api/v1/projects/{id}/assessment/reveal", tag = "assessment",
    params(("id" = String, Path, description = "Project id")),
    request_body = RevealRequest,
    responses((status = 200, body = Revealed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reveal(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RevealRequest>,
) -> ApiResult<Json<Revealed>> {
    let value = state
        .ferry
        .reveal_example(&actor, project_id(&id)?, &request.path, request.index)
        .await?;
    Ok(Json(Revealed { value }))
}

/// Progress of a running assessment as server-sent events, from memory: `progress`
/// events carry the records done, twice a second; one `settled` event ends the stream
/// when the assessment is over (the page then loads the report).
#[utoipa::path(get, path = "/api/v1/projects/{id}/assessment/events", tag = "assessment",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, content_type = "text/event-stream", body = u64,
        description = "Server-sent events: `progress` (records done) and `settled`"),
        (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    use crate::web::events;
    use axum::response::sse::Event;
    let project = project_id(&id)?;
    // Whoever may see the project may follow its assessment.
    state.ferry.project(&actor, project).await?;
    let source = (state.clone(), events::ticker(), false);
    Ok(events::stream(
        &state,
        source,
        move |(state, mut tick, settled)| async move {
            if settled {
                return None;
            }
            tick.tick().await;
            let (event, settled) = match state.assessments.progress(project) {
                Some(records) => (
                    Event::default().event("progress").data(records.to_string()),
                    false,
                ),
                // Browsers drop events whose data is empty.
                None => (Event::default().event("settled").data("done"), true),
            };
            Some((event, (state, tick, settled)))
        },
    ))
}
