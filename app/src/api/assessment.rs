//! The assessment report of a project: reading it (examples masked, the heatmap in a
//! chosen zone), starting it, the drill-down of a check, classes and reveals.

use crate::error::AppError;
use domain::{
    assess::{AssessmentView, Finding},
    pagination::Page,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::{DomainError, pagination::PageRequest};

#[server(prefix = "/sfn", endpoint = "assessment/get")]
pub async fn get_assessment(
    project: String,
    zone: Option<String>,
) -> Result<Option<AssessmentView>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .assessment(&actor, project, zone.as_deref())
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "assessment/start")]
pub async fn start_assessment(
    project: String,
    phone_region: Option<String>,
) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let options = domain::assess::AssessOptions { phone_region };
    ferry
        .start_assessment(&actor, project, options)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "assessment/findings")]
pub async fn assessment_findings(
    project: String,
    check: String,
    offset: Option<u64>,
) -> Result<Page<Finding>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let check = domain::assess::Check::parse(&check)
        .ok_or_else(|| fail(DomainError::invalid("check", "is not a check")))?;
    ferry
        .assessment_findings(&actor, project, check, PageRequest::new(offset, Some(50)))
        .await
        .map_err(fail)
}

/// `class` is `pii`, `confidential`, `other`, or empty for the automatic class.
#[server(prefix = "/sfn", endpoint = "assessment/set_class")]
pub async fn set_attribute_class(
    project: String,
    path: String,
    class: String,
) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let class = match class.as_str() {
        "" => None,
        text => Some(
            domain::assess::classify::DataClass::parse(text).ok_or_else(|| {
                fail(DomainError::invalid(
                    "class",
                    "choose PII, confidential or not personal",
                ))
            })?,
        ),
    };
    ferry
        .set_attribute_class(&actor, project, &path, class)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "assessment/reveal")]
pub async fn reveal_example(
    project: String,
    path: String,
    index: usize,
) -> Result<String, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .reveal_example(&actor, project, &path, index)
        .await
        .map_err(fail)
}
