//! Goals and mapping for the browser: the user types with their live counts and the
//! run estimate, the mapping's versions (read, save, compare, export, import), the
//! target attributes a rule may write, previews and the impact. Rules, user types and
//! samples travel as JSON text, read by the use-case's own types on the server, so a
//! malformed one is a clear 422 rather than a rejected call.

use crate::error::AppError;
use domain::{
    mapping::{
        target::Offered,
        versions::{MappingVersionSummary, RuleChange},
    },
    pagination::Page,
    service::{GoalsView, ImpactView, MappingView, Preview, UserTypeEstimate, UserTypesView},
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::{DomainError, mapping::Mapping, ports::Sample, user_types::UserTypes};

/// Reads a JSON argument, naming the field when it is not what it should be.
#[cfg(feature = "ssr")]
fn json<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, AppError> {
    serde_json::from_str(text).map_err(|e| fail(DomainError::invalid(field, e.to_string())))
}

#[cfg(feature = "ssr")]
fn rules(text: &str) -> Result<Mapping, AppError> {
    let rules: Vec<domain::mapping::Rule> = json("rules", text)?;
    if rules.len() > domain::service::MAX_RULES {
        return Err(fail(DomainError::invalid(
            "rules",
            format!(
                "a mapping holds at most {} rules",
                domain::service::MAX_RULES
            ),
        )));
    }
    Ok(Mapping { rules })
}

#[server(prefix = "/sfn", endpoint = "goals/get")]
pub async fn get_goals(project: String) -> Result<GoalsView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.goals(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "goals/user-types/save")]
pub async fn save_user_types(
    project: String,
    user_types: String,
) -> Result<UserTypesView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let user_types: UserTypes = json("user_types", &user_types)?;
    ferry
        .save_user_types(&actor, project, user_types)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "goals/user-types/count")]
pub async fn count_user_types(
    project: String,
    user_types: String,
) -> Result<UserTypeEstimate, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let user_types: UserTypes = json("user_types", &user_types)?;
    ferry
        .count_user_types(&actor, project, &user_types)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/get")]
pub async fn get_mapping(project: String, version: Option<u32>) -> Result<MappingView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.mapping(&actor, project, version).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/targets")]
pub async fn mapping_targets(project: String) -> Result<Vec<Offered>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.mapping_targets(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/save")]
pub async fn save_mapping(
    project: String,
    rules: String,
    note: String,
) -> Result<MappingView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let mapping = self::rules(&rules)?;
    ferry
        .save_mapping(&actor, project, mapping, &note)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/versions")]
pub async fn mapping_versions(
    project: String,
    offset: Option<u64>,
) -> Result<Page<MappingVersionSummary>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let page = domain::pagination::PageRequest::new(offset, Some(10));
    ferry
        .mapping_versions(&actor, project, page)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/diff")]
pub async fn mapping_diff(
    project: String,
    from: u32,
    to: u32,
) -> Result<Vec<RuleChange>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .mapping_diff(&actor, project, from, to)
        .await
        .map_err(fail)
}

/// The version's export document (for the browser to offer as a download).
#[server(prefix = "/sfn", endpoint = "mapping/export")]
pub async fn export_mapping(project: String, version: Option<u32>) -> Result<String, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .export_mapping(&actor, project, version)
        .await
        .map(|(_, document)| document)
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/import")]
pub async fn import_mapping(project: String, document: String) -> Result<MappingView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .import_mapping(&actor, project, &document)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/preview")]
pub async fn preview_mapping(
    project: String,
    rules: String,
    sample: String,
) -> Result<Preview, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let mapping = self::rules(&rules)?;
    let sample: Sample = json("sample", &sample)?;
    ferry
        .preview(&actor, project, &mapping, &sample)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/impact/start")]
pub async fn start_impact(project: String, rules: String) -> Result<ImpactView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let mapping = self::rules(&rules)?;
    ferry
        .start_impact(&actor, project, mapping)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "mapping/impact")]
pub async fn get_impact(project: String) -> Result<Option<ImpactView>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.impact(&actor, project).await.map_err(fail)
}
