//! Server-side plumbing of the server functions: the per-request context the server
//! provides, and the conversions every server function shares.

use crate::error::AppError;
use domain::{
    DomainError,
    accounts::{Actor, RequestOrigin},
    service::Ferry,
};
use http::{HeaderValue, StatusCode, header};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "ferry_session";

/// Everything a server function needs about the request, provided by the server.
#[derive(Clone)]
pub struct RequestContext {
    /// The service, with its workers.
    pub ferry: Ferry,
    pub actor: Option<Actor>,
    pub session_token: Option<String>,
    pub origin: RequestOrigin,
    /// The URL people use to reach Ferry, for links shown to them.
    pub public_url: String,
    pub secure_cookies: bool,
}

pub fn context() -> Result<RequestContext, AppError> {
    use_context::<RequestContext>()
        .ok_or_else(|| fail(DomainError::Internal("request context missing".into())))
}

/// The request's context with its signed-in actor, or 401.
pub fn signed_in() -> Result<(RequestContext, Actor), AppError> {
    let mut ctx = context()?;
    match ctx.actor.take() {
        Some(actor) => Ok((ctx, actor)),
        None => Err(fail(DomainError::Unauthenticated(
            "your session has ended; sign in again".into(),
        ))),
    }
}

/// The signed-in actor, or 401.
pub fn actor() -> Result<(Ferry, Actor), AppError> {
    signed_in().map(|(ctx, actor)| (ctx.ferry, actor))
}

/// Converts a domain error for the browser: sets the HTTP status of a server-function
/// call (not of a plain form post, which must stay a redirect back to its page, nor of
/// a streamed page, whose status is decided before rendering), logs internal errors,
/// and strips their details.
pub fn fail(err: DomainError) -> AppError {
    if let DomainError::Internal(detail) = &err {
        tracing::error!(error = %detail, "server function failed");
    }
    let parts = use_context::<http::request::Parts>();
    let is_server_fn_call = parts.as_ref().is_some_and(|p| {
        let html = p
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|s| s.contains("text/html"));
        p.uri.path().starts_with("/sfn/") && !html
    });
    if is_server_fn_call && let Some(response) = use_context::<ResponseOptions>() {
        response.set_status(
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
    AppError::Domain(err.public())
}

/// Sets (or with `None`, clears) the session cookie on the response.
pub fn set_session_cookie(token: Option<&str>, max_age_secs: i64) {
    let Ok(ctx) = context() else { return };
    let secure = if ctx.secure_cookies { "; Secure" } else { "" };
    let cookie = match token {
        Some(token) => format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    if let (Some(response), Ok(value)) = (
        use_context::<ResponseOptions>(),
        HeaderValue::from_str(&cookie),
    ) {
        response.append_header(header::SET_COOKIE, value);
    }
}

/// Starts the session in the browser after sign-in, setup or an accepted invite, and
/// sends the person to their projects.
pub fn enter(signed_in: &domain::service::SignedIn) -> Result<(), AppError> {
    let ctx = context()?;
    let max_age = ctx.ferry.policy().session_ttl.num_seconds();
    set_session_cookie(Some(&signed_in.session_token), max_age);
    leptos_axum::redirect("/");
    Ok(())
}
