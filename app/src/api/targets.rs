//! Target connections for the browser: read them (secrets only as "set"), save them
//! from the form's plain fields, test and remove them.
// The target form's fields arrive as the save function's arguments, one each, so the
// form works before the wasm loads; the macro generates a caller with all of them.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use domain::scim::target::TargetView;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::{
    DomainError,
    scim::target::{ExistingPolicy, Header, Preset, TargetAuth, TargetInput, TargetRole},
};

#[cfg(feature = "ssr")]
fn ids(project: &str, role: &str) -> Result<(domain::ids::ProjectId, TargetRole), AppError> {
    Ok((
        project.parse().map_err(fail)?,
        TargetRole::parse(role).map_err(fail)?,
    ))
}

#[server(prefix = "/sfn", endpoint = "targets/list")]
pub async fn get_targets(project: String) -> Result<Vec<TargetView>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.targets(&actor, project).await.map_err(fail)
}

/// "Name: value" per line; blank lines are skipped.
#[cfg(feature = "ssr")]
fn headers(text: &str) -> Result<Vec<Header>, DomainError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                DomainError::invalid(
                    "headers",
                    format!("line {}: write each header as Name: value", i + 1),
                )
            })?;
            Ok(Header {
                name: name.trim().to_string(),
                value: value.trim().to_string(),
            })
        })
        .collect()
}

#[cfg(feature = "ssr")]
fn number(field: &str, text: &str) -> Result<Option<u32>, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| DomainError::invalid(field, "enter a whole number"))
}

/// Saves a target from the form. An empty secret keeps the stored one; the extra
/// headers are replaced only when `replace_headers` is ticked.
#[server(prefix = "/sfn", endpoint = "targets/save")]
pub async fn save_target(
    project: String,
    role: String,
    preset: String,
    base_url: String,
    auth_type: String,
    #[server(default)] username: String,
    #[server(default)] token_url: String,
    #[server(default)] client_id: String,
    #[server(default)] scope: String,
    #[server(default)] secret: String,
    #[server(default)] headers_text: String,
    #[server(default)] replace_headers: Option<String>,
    #[server(default)] ca_certificate: String,
    #[server(default)] connect_timeout_secs: String,
    #[server(default)] request_timeout_secs: String,
    #[server(default)] on_existing: String,
    #[server(default)] max_operations: String,
) -> Result<TargetView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, role) = ids(&project, &role)?;
    let auth = match auth_type.as_str() {
        "basic" => TargetAuth::Basic { username },
        "bearer" => TargetAuth::Bearer,
        "oauth2" => TargetAuth::OAuth2 {
            token_url,
            client_id,
            scope,
        },
        _ => {
            return Err(fail(DomainError::invalid(
                "auth_type",
                "choose how Ferry signs in to the target",
            )));
        }
    };
    let on_existing = ExistingPolicy::ALL
        .into_iter()
        .find(|p| p.as_str() == on_existing)
        .unwrap_or_default();
    let input = TargetInput {
        preset: Preset::parse(&preset).map_err(fail)?,
        base_url,
        auth,
        secret: (!secret.is_empty()).then_some(secret),
        headers: match replace_headers {
            Some(_) => Some(headers(&headers_text).map_err(fail)?),
            None => None,
        },
        ca_certificate: Some(ca_certificate),
        connect_timeout_secs: number("connect_timeout_secs", &connect_timeout_secs)
            .map_err(fail)?,
        request_timeout_secs: number("request_timeout_secs", &request_timeout_secs)
            .map_err(fail)?,
        on_existing,
        max_operations: number("max_operations", &max_operations).map_err(fail)?,
    };
    ferry
        .save_target(&actor, project, role, input)
        .await
        .map_err(|e| {
            // The form has one field for all extra headers.
            match e.field() {
                Some(f) if f.starts_with("headers[") => {
                    fail(DomainError::invalid("headers", e.message()))
                }
                _ => fail(e),
            }
        })
}

#[server(prefix = "/sfn", endpoint = "targets/test")]
pub async fn test_target(project: String, role: String) -> Result<TargetView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, role) = ids(&project, &role)?;
    ferry.test_target(&actor, project, role).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "targets/delete")]
pub async fn delete_target(project: String, role: String) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let (project, role) = ids(&project, &role)?;
    ferry
        .delete_target(&actor, project, role)
        .await
        .map_err(fail)
}
