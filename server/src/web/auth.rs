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

pub(super) fn bearer(req: &Request<Body>) -> Option<String> {
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

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy itself (entries
/// further left are whatever the client chose to send).
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<std::net::IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
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
        .map(|c| client_address(c.0.ip(), req.headers(), &state.trusted_proxies).to_string());
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

#[cfg(test)]
mod tests {
    use super::client_address;
    use axum::http::HeaderMap;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", forwarded.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxy: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
        let peer = "10.0.0.5".parse().unwrap();
        let stranger = "203.0.113.9".parse().unwrap();
        // Behind the proxy, each client counts on its own (not everyone as the proxy).
        assert_eq!(
            client_address(peer, &headers("198.51.100.7"), &[proxy]).to_string(),
            "198.51.100.7"
        );
        // A client cannot choose its address by sending the header itself…
        assert_eq!(
            client_address(stranger, &headers("198.51.100.7"), &[proxy]),
            stranger
        );
        // …nor by putting one in front of what the proxy appended.
        assert_eq!(
            client_address(peer, &headers("1.2.3.4, 198.51.100.7, 10.0.0.9"), &[proxy]).to_string(),
            "198.51.100.7"
        );
        // Without trusted proxies the header is ignored.
        assert_eq!(client_address(peer, &headers("198.51.100.7"), &[]), peer);
        assert_eq!(client_address(peer, &HeaderMap::new(), &[proxy]), peer);
    }
}
