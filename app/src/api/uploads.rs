//! Uploads of a project: listing them and the errors of one.

use crate::error::AppError;
use domain::{
    pagination::Page,
    uploads::{StoredError, Upload},
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{actor, fail};
#[cfg(feature = "ssr")]
use domain::pagination::PageRequest;

#[server(prefix = "/sfn", endpoint = "uploads/list")]
pub async fn list_uploads(project: String, offset: Option<u64>) -> Result<Page<Upload>, AppError> {
    let (ferry, actor) = actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .list_uploads(&actor, project, PageRequest::new(offset, Some(20)))
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "uploads/errors")]
pub async fn upload_errors(
    upload: String,
    offset: Option<u64>,
) -> Result<Page<StoredError>, AppError> {
    let (ferry, actor) = actor()?;
    let upload = upload.parse().map_err(fail)?;
    ferry
        .upload_errors(&actor, upload, PageRequest::new(offset, Some(50)))
        .await
        .map_err(fail)
}
