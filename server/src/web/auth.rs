//! Resolves who is making a request: a session cookie for the browser, a bearer API
//! token for `/api/v1`. The result travels in the request's extensions.

use super::AppState;
use app::ssr::SESSION_COOKIE;
use axum::{
    body::Body,
    extract::{ConnectInfo, State},
    http::{Request, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::accounts::Actor;
use std::net::SocketAddr;

#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub actor: Option<Actor>,
    pub session_token: Option<String>,
    pub address: Option<String>,
}

/// Paths served without looking anyone up.
pub fn is_static(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg" || path == "/healthz"
}

pub fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

fn bearer(req: &Request<Body>) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn session_cookie(req: &Request<Body>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

pub async fn resolve(
    State(state): State<AppState>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if is_static(&path) {
        return next.run(req).await;
    }
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    // The API takes bearer tokens only and the browser side cookies only, so a cookie
    // can never authorize an API call and cross-site requests cannot ride on one.
    let outcome = if is_api(&path) {
        match bearer(&req) {
            Some(secret) => state
                .ferry
                .api_actor(&secret, address.clone())
                .await
                .map(|actor| (actor, None)),
            None => Ok((None, None)),
        }
    } else {
        match session_cookie(&req) {
            Some(token) => state
                .ferry
                .session_actor(&token, address.clone())
                .await
                .map(|actor| {
                    let token = actor.as_ref().map(|_| token);
                    (actor, token)
                }),
            None => Ok((None, None)),
        }
    };
    match outcome {
        Ok((actor, session_token)) => {
            req.extensions_mut().insert(Resolved {
                actor,
                session_token,
                address,
            });
            next.run(req).await
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot resolve the request's identity");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Ferry cannot reach its database; try again shortly.",
            )
                .into_response()
        }
    }
}
