//! Decides before rendering whether a request may proceed: setup first on a fresh
//! instance, sign-in for every private page, the role each page needs, and the
//! same-origin rule for every state-changing browser request (CSRF).

use super::{
    AppState,
    auth::{Resolved, is_api, is_static},
};
use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, Method, Request, StatusCode, header},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use domain::roles::Permission;

/// Who may open a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Sign-in, setup and invite pages.
    Public,
    SignedIn,
    Needs(Permission),
}

/// The access rule of every page path. Server functions and API routes check roles in
/// the use-cases; this table keeps people from opening pages they cannot use.
pub fn page_access(path: &str) -> Access {
    let user_types: Vec<&str> = path.trim_matches('/').split('/').collect();
    match user_types.as_slice() {
        ["login"] | ["setup"] | ["invite", _] => Access::Public,
        ["audit"] => Access::Needs(Permission::ViewAudit),
        ["members"] => Access::Needs(Permission::ManageMembers),
        ["settings", "tokens"] => Access::Needs(Permission::ManageApiTokens),
        ["projects", "new"] => Access::Needs(Permission::ManageProjects),
        ["projects", _, "activity"] => Access::Needs(Permission::ViewAudit),
        [
            "projects",
            _,
            "target" | "goals" | "mapping" | "plan" | "passwords" | "report",
        ]
        | ["projects", _, "plan", "print"] => Access::Needs(Permission::ManageProjects),
        _ => Access::SignedIn,
    }
}

/// True when the request comes from a page of this Ferry: its `Origin` is one of the
/// configured origins (or, without one, `Sec-Fetch-Site` says same-origin). The `Host`
/// header is not trusted: whoever sends the request chooses it.
fn same_origin(headers: &HeaderMap, allowed: &[String]) -> bool {
    let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header_str(header::ORIGIN) {
        let origin = origin.trim_end_matches('/');
        return allowed.iter().any(|a| a == origin);
    }
    header_str(axum::http::HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|site| site == "same-origin")
}

/// The policy of a page Ferry writes itself (no script): its own stylesheet and
/// nothing else. Without it the default for non-page responses (nothing at all)
/// refused the stylesheet and the page showed unstyled.
pub const STATIC_PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn forbidden_page() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_SECURITY_POLICY, STATIC_PAGE_CSP)],
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not allowed · Ferry</title>\
             <link rel=\"stylesheet\" href=\"/pkg/ferry.css\"></head><body><main class=\"auth\"><section class=\"card auth-card\">\
             <h1>Not allowed</h1><p>Your role does not include this page.</p><p><a href=\"/\">Back to your projects</a></p>\
             </section></main></body></html>",
        ),
    )
        .into_response()
}

pub async fn guard(State(state): State<AppState>, req: Request<Body>, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_static(&path) || is_api(&path) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !same_origin(req.headers(), &state.allowed_origins)
    {
        return (
            StatusCode::FORBIDDEN,
            "cross-site request refused: state-changing requests must come from Ferry's own pages",
        )
            .into_response();
    }
    // Server functions and uploads answer for themselves (401, 403); only pages
    // are redirected to sign-in or setup.
    if path.starts_with("/sfn/") || !matches!(method, Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let needs_setup = match state.needs_setup().await {
        Ok(needs) => needs,
        Err(err) => {
            tracing::error!(error = %err, "cannot check setup state");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if needs_setup {
        return if path == "/setup" {
            next.run(req).await
        } else {
            Redirect::to("/setup").into_response()
        };
    }
    let actor = req
        .extensions()
        .get::<Resolved>()
        .and_then(|r| r.actor.clone());
    match (page_access(&path), actor) {
        (Access::Public, Some(_)) if path == "/login" || path == "/setup" => {
            Redirect::to("/").into_response()
        }
        (Access::Public, None) if path == "/setup" => Redirect::to("/login").into_response(),
        (Access::Public, _) => next.run(req).await,
        (_, None) => Redirect::to("/login").into_response(),
        (Access::Needs(permission), Some(actor)) if !actor.role.allows(permission) => {
            forbidden_page()
        }
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_their_rule() {
        assert_eq!(page_access("/login"), Access::Public);
        assert_eq!(page_access("/invite/abc"), Access::Public);
        assert_eq!(page_access("/"), Access::SignedIn);
        assert_eq!(page_access("/projects/x"), Access::SignedIn);
        assert_eq!(
            page_access("/projects/x/activity"),
            Access::Needs(Permission::ViewAudit)
        );
        assert_eq!(
            page_access("/projects/x/target"),
            Access::Needs(Permission::ManageProjects)
        );
        assert_eq!(
            page_access("/members"),
            Access::Needs(Permission::ManageMembers)
        );
    }

    #[test]
    fn origin_must_match_this_site() {
        let allowed = ["https://ferry.example".to_string()];
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        assert!(!same_origin(&headers, &allowed));
        headers.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(!same_origin(&headers, &allowed));
        // The Host header is the sender's to choose: an origin matching it is no proof.
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(!same_origin(&headers, &allowed));
        headers.insert(header::ORIGIN, "https://ferry.example".parse().unwrap());
        assert!(same_origin(&headers, &allowed));
    }
}
