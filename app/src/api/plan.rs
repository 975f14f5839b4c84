//! The migration plan for the browser: the plan with what Ferry's data adds to it,
//! saving a version (the document travels as JSON text, read by the domain's own type
//! so a malformed one is a clear 422), the versions, one version, a comparison, and an
//! owner's approval; the final report; retention and the purge.

use crate::error::AppError;
use domain::{
    pagination::Page,
    plan::{PlanChange, PlanVersion, PlanVersionSummary},
    service::PlanView,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;

#[server(prefix = "/sfn", endpoint = "plan/get")]
pub async fn get_plan(project: String) -> Result<PlanView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.plan(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/save")]
pub async fn save_plan(
    project: String,
    document: String,
    note: String,
) -> Result<PlanView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let document = serde_json::from_str(&document)
        .map_err(|e| fail(domain::DomainError::invalid("document", e.to_string())))?;
    ferry
        .save_plan(
            &actor,
            project,
            domain::service::PlanInput { document, note },
        )
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/versions")]
pub async fn get_plan_versions(project: String) -> Result<Page<PlanVersionSummary>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .plan_versions(
            &actor,
            project,
            domain::pagination::PageRequest::new(Some(0), Some(50)),
        )
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/version")]
pub async fn get_plan_version(project: String, version: u32) -> Result<PlanVersion, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .plan_version(&actor, project, version)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/compare")]
pub async fn compare_plan(
    project: String,
    from: u32,
    to: u32,
) -> Result<Vec<PlanChange>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .compare_plan(&actor, project, from, to)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/report")]
pub async fn get_report(project: String) -> Result<domain::service::FinalReport, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.final_report(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "plan/approve")]
pub async fn approve_plan(project: String, version: u32) -> Result<PlanView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .approve_plan(&actor, project, version)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "retention/get")]
pub async fn get_retention(project: String) -> Result<domain::retention::RetentionView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.retention(&actor, project).await.map_err(fail)
}

/// `days` empty keeps the data until purged by hand; the two choices are checkboxes.
#[server(prefix = "/sfn", endpoint = "retention/save")]
pub async fn save_retention(
    project: String,
    days: String,
    #[server(default)] keep_crosswalk: Option<String>,
    #[server(default)] keep_report: Option<String>,
) -> Result<domain::retention::RetentionView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let days = match days.trim() {
        "" => None,
        text => Some(text.parse::<u32>().map_err(|_| {
            fail(domain::DomainError::invalid(
                "days",
                "a whole number of days, or empty to keep the data until purged by hand",
            ))
        })?),
    };
    let retention = domain::retention::Retention {
        days,
        keep_crosswalk: keep_crosswalk.is_some(),
        keep_report: keep_report.is_some(),
    };
    ferry
        .save_retention(&actor, project, retention)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "retention/purge")]
pub async fn purge_project(
    project: String,
    confirm: String,
) -> Result<domain::retention::PurgeOutcome, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .purge_project(&actor, project, &confirm)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "retention/purge_upload")]
pub async fn purge_upload(
    project: String,
    upload: String,
) -> Result<domain::retention::UploadPurge, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let upload = upload.parse().map_err(fail)?;
    ferry
        .purge_upload(&actor, project, upload)
        .await
        .map_err(fail)
}
