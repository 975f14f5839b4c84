//! Projects: listing, creation, editing, archiving and support assignments.

use crate::error::AppError;
use domain::{accounts::Account, pagination::Page, projects::Project};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::{actor, fail};
#[cfg(feature = "ssr")]
use domain::{ids::ProjectId, pagination::PageRequest, projects::ProjectDraft};

#[cfg(feature = "ssr")]
fn project_id(id: &str) -> Result<ProjectId, AppError> {
    id.parse().map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "projects/list")]
pub async fn list_projects(
    offset: Option<u64>,
    include_archived: bool,
) -> Result<Page<Project>, AppError> {
    let (ferry, actor) = actor()?;
    let filter = domain::projects::ProjectFilter { include_archived };
    ferry
        .list_projects(&actor, filter, PageRequest::new(offset, None))
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "projects/get")]
pub async fn get_project(id: String) -> Result<Project, AppError> {
    let (ferry, actor) = actor()?;
    ferry.project(&actor, project_id(&id)?).await.map_err(fail)
}

/// How far the project's migration has got.
#[server(prefix = "/sfn", endpoint = "projects/journey")]
pub async fn get_journey(id: String) -> Result<domain::journey::Journey, AppError> {
    let (ferry, actor) = actor()?;
    ferry.journey(&actor, project_id(&id)?).await.map_err(fail)
}

/// The journeys of the projects listed (ids joined by commas), for the list's
/// progress column.
#[server(prefix = "/sfn", endpoint = "projects/journeys")]
pub async fn project_journeys(
    ids: String,
) -> Result<Vec<(String, domain::journey::Journey)>, AppError> {
    let (ferry, actor) = actor()?;
    let ids = ids
        .split(',')
        .filter(|id| !id.is_empty())
        .map(project_id)
        .collect::<Result<Vec<_>, _>>()?;
    let journeys = ferry.journeys(&actor, &ids).await.map_err(fail)?;
    Ok(journeys
        .into_iter()
        .map(|(id, journey)| (id.to_string(), journey))
        .collect())
}

#[server(prefix = "/sfn", endpoint = "projects/create")]
pub async fn create_project(
    name: String,
    source_kind: String,
    description: String,
) -> Result<Project, AppError> {
    let (ferry, actor) = actor()?;
    let draft = ProjectDraft::new(&name, &source_kind, &description).map_err(fail)?;
    let project = ferry.create_project(&actor, draft).await.map_err(fail)?;
    leptos_axum::redirect(&format!("/projects/{}", project.id));
    Ok(project)
}

#[server(prefix = "/sfn", endpoint = "projects/update")]
pub async fn update_project(
    id: String,
    name: String,
    source_kind: String,
    description: String,
) -> Result<Project, AppError> {
    let (ferry, actor) = actor()?;
    let changes = domain::projects::ProjectChanges {
        name: Some(name),
        source_kind: Some(source_kind),
        description: Some(description),
    };
    ferry
        .update_project(&actor, project_id(&id)?, changes)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "projects/archive")]
pub async fn set_project_archived(id: String, archived: bool) -> Result<Project, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .set_project_archived(&actor, project_id(&id)?, archived)
        .await
        .map_err(fail)
}

/// The support staff of a project and, for those who manage projects, who could be added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportStaff {
    pub assigned: Vec<Account>,
    pub candidates: Vec<Account>,
}

#[server(prefix = "/sfn", endpoint = "projects/support")]
pub async fn project_support(id: String) -> Result<SupportStaff, AppError> {
    let (ferry, actor) = actor()?;
    let id = project_id(&id)?;
    let assigned = ferry.project_support(&actor, id).await.map_err(fail)?;
    let candidates = if actor.role.allows(domain::roles::Permission::ManageProjects) {
        let all = ferry.support_members(&actor).await.map_err(fail)?;
        all.into_iter()
            .filter(|a| !assigned.iter().any(|b| b.id == a.id))
            .collect()
    } else {
        Vec::new()
    };
    Ok(SupportStaff {
        assigned,
        candidates,
    })
}

#[server(prefix = "/sfn", endpoint = "projects/assign_support")]
pub async fn assign_support(id: String, account: String) -> Result<(), AppError> {
    let (ferry, actor) = actor()?;
    let account = account.parse().map_err(fail)?;
    ferry
        .assign_support(&actor, project_id(&id)?, account)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "projects/unassign_support")]
pub async fn unassign_support(id: String, account: String) -> Result<(), AppError> {
    let (ferry, actor) = actor()?;
    let account = account.parse().map_err(fail)?;
    ferry
        .unassign_support(&actor, project_id(&id)?, account)
        .await
        .map_err(fail)
}
