//! Runs for the browser: the history, one run's view, test runs, the pre-flight
//! checks and the real run, windows, controls, records by class, retries and
//! rollbacks. Requests and windows travel as JSON text, read by the use-case's own
//! types on the server, so a malformed one is a clear 422.

use crate::error::AppError;
use domain::{
    pagination::Page,
    runs::Preflight,
    runs::Run,
    service::{RecordsPage, RunView},
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::DomainError;

#[cfg(feature = "ssr")]
fn json<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, AppError> {
    serde_json::from_str(text).map_err(|e| fail(DomainError::invalid(field, e.to_string())))
}

#[cfg(feature = "ssr")]
fn ids(project: &str, run: &str) -> Result<(domain::ids::ProjectId, domain::ids::RunId), AppError> {
    Ok((project.parse().map_err(fail)?, run.parse().map_err(fail)?))
}

#[server(prefix = "/sfn", endpoint = "runs/list")]
pub async fn list_runs(project: String, offset: Option<u64>) -> Result<Page<Run>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let page = domain::pagination::PageRequest::new(offset, Some(20));
    ferry.runs(&actor, project, page).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/get")]
pub async fn get_run(project: String, run: String) -> Result<RunView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    ferry.run(&actor, project, run).await.map_err(fail)
}

/// `request`: a `TestRunRequest` as JSON.
#[server(prefix = "/sfn", endpoint = "runs/test")]
pub async fn start_test_run(project: String, request: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let request = json("request", &request)?;
    ferry
        .start_test_run(&actor, project, request)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/reconcile")]
pub async fn start_reconciliation(project: String, request: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let request = json("request", &request)?;
    ferry
        .start_reconciliation(&actor, project, request)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/delta")]
pub async fn start_delta(project: String, request: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let request = json("request", &request)?;
    ferry
        .start_delta(&actor, project, request)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/preflight")]
pub async fn run_preflight(
    project: String,
    accept_collisions: Option<u64>,
) -> Result<Preflight, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .preflight(&actor, project, accept_collisions)
        .await
        .map_err(fail)
}

/// `request`: a `RealRunRequest` as JSON.
#[server(prefix = "/sfn", endpoint = "runs/real")]
pub async fn start_real_run(project: String, request: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let request = json("request", &request)?;
    ferry
        .start_real_run(&actor, project, request)
        .await
        .map(|(run, _)| run)
        .map_err(fail)
}

/// `window`: a `Window` as JSON.
#[server(prefix = "/sfn", endpoint = "runs/window")]
pub async fn reschedule_run(project: String, run: String, window: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    let window = json("window", &window)?;
    ferry
        .reschedule(&actor, project, run, window)
        .await
        .map_err(fail)
}

/// `action`: `start_now`, `pause`, `resume` or `cancel`.
#[server(prefix = "/sfn", endpoint = "runs/control")]
pub async fn control_run(project: String, run: String, action: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    let control = json("action", &format!("{action:?}"))?;
    ferry
        .control_run(&actor, project, run, control)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/records")]
pub async fn run_records(
    project: String,
    run: String,
    state: Option<String>,
    error_class: Option<String>,
    after: Option<u64>,
) -> Result<RecordsPage, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    let state = match state.filter(|s| !s.is_empty()) {
        Some(text) => Some(domain::runs::RecordState::parse(&text).ok_or_else(|| {
            fail(DomainError::invalid(
                "state",
                format!("{text:?} is not a record state"),
            ))
        })?),
        None => None,
    };
    let filter = domain::ports::RecordFilter {
        state,
        error_class: error_class.filter(|c| !c.is_empty()),
    };
    ferry
        .run_records(&actor, project, run, &filter, after, 50)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/retry-plan")]
pub async fn retry_plan(
    project: String,
    run: String,
) -> Result<domain::service::RetryPlan, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    ferry.retry_plan(&actor, project, run).await.map_err(fail)
}

/// `confirm`: the number of failed records, as the retry plan gave it.
#[server(prefix = "/sfn", endpoint = "runs/retry")]
pub async fn retry_run(project: String, run: String, confirm: u64) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    ferry
        .retry_failed(&actor, project, run, confirm)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "runs/rollback")]
pub async fn rollback_run(project: String, run: String, confirm: String) -> Result<Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, run) = ids(&project, &run)?;
    let confirm = confirm.trim().replace(',', "").parse().map_err(|_| {
        fail(DomainError::invalid(
            "confirm",
            "type the number of users the rollback deletes",
        ))
    })?;
    ferry
        .rollback(&actor, project, run, confirm)
        .await
        .map_err(fail)
}
