//! Setup, sign-in, sign-out, the current account, password changes and invites.

use crate::error::AppError;
use domain::accounts::Account;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ssr::{actor, context, enter, fail, set_session_cookie};

/// Checks that a password was typed the same way twice.
#[cfg(feature = "ssr")]
fn confirm(password: &str, confirmation: &str) -> Result<(), AppError> {
    if password == confirmation {
        Ok(())
    } else {
        Err(fail(domain::DomainError::invalid(
            "confirm",
            "the two passwords are different",
        )))
    }
}

#[server(prefix = "/sfn", endpoint = "auth/setup")]
pub async fn complete_setup(
    setup_token: String,
    display_name: String,
    email: String,
    password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    let ctx = context()?;
    confirm(&password, &confirm_password)?;
    let signed_in = ctx
        .ferry
        .complete_setup(&ctx.origin, &setup_token, &email, &display_name, &password)
        .await
        .map_err(fail)?;
    enter(&signed_in)
}

#[server(prefix = "/sfn", endpoint = "auth/sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let ctx = context()?;
    let signed_in = ctx
        .ferry
        .sign_in(&ctx.origin, &email, &password)
        .await
        .map_err(fail)?;
    enter(&signed_in)
}

#[server(prefix = "/sfn", endpoint = "auth/sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    let ctx = context()?;
    if let (Some(actor), Some(token)) = (&ctx.actor, &ctx.session_token) {
        ctx.ferry.sign_out(actor, token).await.map_err(fail)?;
    }
    set_session_cookie(None, 0);
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/sfn", endpoint = "auth/whoami")]
pub async fn whoami() -> Result<Account, AppError> {
    let (ferry, actor) = actor()?;
    ferry.whoami(&actor).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "auth/change_password")]
pub async fn change_password(
    current_password: String,
    password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    let (ferry, actor) = actor()?;
    confirm(&password, &confirm_password)?;
    let token = context()?.session_token.unwrap_or_default();
    ferry
        .change_password(&actor, &token, &current_password, &password)
        .await
        .map_err(fail)
}

/// Who an invite link is for, to greet them on the page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    pub display_name: String,
    pub email: String,
    /// True when the member already had a password: the link resets it.
    pub is_reset: bool,
}

#[server(prefix = "/sfn", endpoint = "auth/invite_info")]
pub async fn load_invite(token: String) -> Result<InviteInfo, AppError> {
    let ctx = context()?;
    let account = ctx.ferry.invite_account(&token).await.map_err(fail)?;
    Ok(InviteInfo {
        is_reset: account.status == domain::accounts::AccountStatus::Active,
        display_name: account.display_name,
        email: account.email,
    })
}

#[server(prefix = "/sfn", endpoint = "auth/accept_invite")]
pub async fn accept_invite(
    token: String,
    password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    let ctx = context()?;
    confirm(&password, &confirm_password)?;
    let signed_in = ctx
        .ferry
        .accept_invite(&ctx.origin, &token, &password)
        .await
        .map_err(fail)?;
    enter(&signed_in)
}
