//! Members: the owner adds people, changes their roles and disables accounts.

use super::InviteLink;
use crate::error::AppError;
use domain::{accounts::Account, pagination::Page};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::{actor, context, fail};
#[cfg(feature = "ssr")]
use domain::{ids::AccountId, pagination::PageRequest};

#[cfg(feature = "ssr")]
fn account_id(id: &str) -> Result<AccountId, AppError> {
    id.parse().map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "members/list")]
pub async fn list_members(offset: Option<u64>) -> Result<Page<Account>, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .list_members(&actor, PageRequest::new(offset, None))
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "members/invite")]
pub async fn invite_member(
    email: String,
    display_name: String,
    role: String,
) -> Result<InviteLink, AppError> {
    let (ferry, actor) = actor()?;
    let invitation = ferry
        .invite_member(&actor, &email, &display_name, &role)
        .await
        .map_err(fail)?;
    Ok(InviteLink::from_invitation(
        &context()?.public_url,
        invitation,
    ))
}

#[server(prefix = "/sfn", endpoint = "members/reissue_invite")]
pub async fn reissue_invite(id: String) -> Result<InviteLink, AppError> {
    let (ferry, actor) = actor()?;
    let invitation = ferry
        .reissue_invite(&actor, account_id(&id)?)
        .await
        .map_err(fail)?;
    Ok(InviteLink::from_invitation(
        &context()?.public_url,
        invitation,
    ))
}

#[server(prefix = "/sfn", endpoint = "members/change_role")]
pub async fn change_role(id: String, role: String) -> Result<Account, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .change_role(&actor, account_id(&id)?, &role)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "members/set_enabled")]
pub async fn set_member_enabled(id: String, enabled: bool) -> Result<Account, AppError> {
    let (ferry, actor) = actor()?;
    ferry
        .set_member_enabled(&actor, account_id(&id)?, enabled)
        .await
        .map_err(fail)
}
