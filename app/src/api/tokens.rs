//! API tokens: created and revoked by owners and administrators.

use crate::error::AppError;
use domain::{
    api_tokens::{ApiToken, IssuedApiToken},
    pagination::Page,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{actor, fail};

#[server(prefix = "/sfn", endpoint = "tokens/list")]
pub async fn list_api_tokens(offset: Option<u64>) -> Result<Page<ApiToken>, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .list_api_tokens(&actor, domain::pagination::PageRequest::new(offset, None))
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "tokens/create")]
pub async fn create_api_token(name: String, role: String) -> Result<IssuedApiToken, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .create_api_token(&actor, &name, &role)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "tokens/revoke")]
pub async fn revoke_api_token(id: String) -> Result<ApiToken, AppError> {
    let (ferry, actor) = actor()?;
    let id = id.parse().map_err(fail)?;
    ferry.revoke_api_token(&actor, id).await.map_err(fail)
}
