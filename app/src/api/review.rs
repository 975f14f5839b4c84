//! Support staff's review for the browser: the queue with its filters and groups, a
//! record's page, corrections (tried live, then kept), actions on one or many users,
//! retries, imported corrections, and the owner's grant to see personal data. Filters,
//! selections, actions and corrections travel as JSON text, read by the use-case's
//! own types on the server, so a malformed one is a clear 422.

use crate::error::AppError;
use domain::{
    review::{ActionResult, CorrectionsReport, GroupCount, ReviewSummary, ReviewTask},
    runs::Run,
    service::{CorrectionPreview, QueueView, RecordReview},
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::DomainError;

#[cfg(feature = "ssr")]
fn json<T: serde::de::DeserializeOwned + Default>(field: &str, text: &str) -> Result<T, AppError> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text).map_err(|e| fail(DomainError::invalid(field, e.to_string())))
}

#[cfg(feature = "ssr")]
fn required<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, AppError> {
    serde_json::from_str(text).map_err(|e| fail(DomainError::invalid(field, e.to_string())))
}

/// `filter`: a `QueueFilter` as JSON (empty: users waiting for review).
#[server(prefix = "/sfn", endpoint = "review/queue")]
pub async fn review_queue(
    project: String,
    filter: String,
    after: Option<String>,
) -> Result<QueueView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let filter = json("filter", &filter)?;
    ferry
        .review_queue(&actor, project, &filter, after.as_deref(), 50)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "review/summary")]
pub async fn queue_summary(project: String) -> Result<ReviewSummary, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.review_summary(&actor, project).await.map_err(fail)
}

/// `by`: `class`, `fault`, `pattern`, `scim_type`, `user_type`, `run`, `state` or
/// `assignee`.
#[server(prefix = "/sfn", endpoint = "review/groups")]
pub async fn review_groups(
    project: String,
    filter: String,
    by: String,
) -> Result<Vec<GroupCount>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let filter = json("filter", &filter)?;
    let by = domain::review::GroupBy::parse(&by).ok_or_else(|| {
        fail(DomainError::invalid(
            "by",
            "expected class, fault, pattern, scim_type, user_type, run, state or assignee",
        ))
    })?;
    ferry
        .review_groups(&actor, project, &filter, by)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "review/record")]
pub async fn review_record(project: String, source_id: String) -> Result<RecordReview, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .review_record(&actor, project, &source_id)
        .await
        .map_err(fail)
}

/// `correction`: a `Correction` as JSON.
#[server(prefix = "/sfn", endpoint = "review/preview_correction")]
pub async fn preview_correction(
    project: String,
    source_id: String,
    correction: String,
) -> Result<CorrectionPreview, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let correction = json("correction", &correction)?;
    ferry
        .preview_correction(&actor, project, &source_id, &correction)
        .await
        .map_err(fail)
}

/// `correction`: a `Correction` as JSON.
#[server(prefix = "/sfn", endpoint = "review/correct")]
pub async fn correct_record(
    project: String,
    source_id: String,
    correction: String,
) -> Result<RecordReview, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let correction = json("correction", &correction)?;
    ferry
        .correct_record(&actor, project, &source_id, &correction)
        .await
        .map_err(fail)
}

/// `selection`: a `Selection` as JSON; `action`: a `ReviewAction` as JSON.
#[server(prefix = "/sfn", endpoint = "review/act")]
pub async fn review_act(
    project: String,
    selection: String,
    action: String,
) -> Result<ActionResult, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let selection = required("selection", &selection)?;
    let action = required("action", &action)?;
    ferry
        .review_act(&actor, project, &selection, &action)
        .await
        .map_err(fail)
}

/// `selection`: a `Selection` as JSON.
#[server(prefix = "/sfn", endpoint = "review/retry")]
pub async fn review_retry(project: String, selection: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let selection = required("selection", &selection)?;
    ferry
        .review_retry(&actor, project, &selection)
        .await
        .map_err(fail)
}

/// `csv`: the file's text.
#[server(prefix = "/sfn", endpoint = "review/import_corrections")]
pub async fn import_corrections(
    project: String,
    csv: String,
) -> Result<CorrectionsReport, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .import_corrections(&actor, project, csv.as_bytes())
        .await
        .map_err(fail)
}

/// The project's newest background actions.
#[server(prefix = "/sfn", endpoint = "review/tasks")]
pub async fn review_tasks(project: String) -> Result<Vec<ReviewTask>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.review_tasks(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "review/cancel_task")]
pub async fn cancel_review_task(project: String, task: String) -> Result<ReviewTask, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let task = uuid::Uuid::parse_str(&task)
        .map_err(|_| fail(DomainError::NotFound("review action".into())))?;
    ferry
        .cancel_review_task(&actor, project, task)
        .await
        .map_err(fail)
}

/// Members allowed to see personal data unmasked (owners only).
#[server(prefix = "/sfn", endpoint = "review/grants")]
pub async fn personal_data_grants() -> Result<Vec<String>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    ferry
        .personal_data_grants(&actor)
        .await
        .map(|ids| ids.into_iter().map(|id| id.0.to_string()).collect())
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "review/grant")]
pub async fn set_personal_data_grant(member: String, granted: bool) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let member = uuid::Uuid::parse_str(&member)
        .map(domain::ids::AccountId)
        .map_err(|_| fail(DomainError::NotFound("member".into())))?;
    ferry
        .set_personal_data_grant(&actor, member, granted)
        .await
        .map_err(fail)
}
