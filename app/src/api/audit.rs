//! The audit log, whole or for one project.

use crate::error::AppError;
use domain::audit::AuditPage;
use leptos::prelude::*;

#[server(prefix = "/sfn", endpoint = "audit/page")]
pub async fn load_audit(
    before: Option<i64>,
    project: Option<String>,
) -> Result<AuditPage, AppError> {
    use crate::ssr::{actor, fail};
    let (ferry, actor) = actor()?;
    let project = match project.filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse().map_err(fail)?),
        None => None,
    };
    let query = domain::audit::AuditQuery::new(before, project, None);
    ferry.audit_page(&actor, query).await.map_err(fail)
}
