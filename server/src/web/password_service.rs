//! The verification service's endpoints, as WSO2's login script and its waiting page
//! call them (DESIGN §7): `POST …/start-authentication`, `GET` and `POST
//! …/authentication-status`, and the OAuth2 token endpoint `POST …/token`. They sit
//! outside the sign-in and same-origin layers (their callers are a server and a
//! browser on the target's login page) and authenticate by the service's own
//! credentials; bodies are small, answers are never cached, and only the polling
//! endpoint sends CORS headers, for the project's login origin.

use super::{AppState, auth::client_address};
use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use domain::{
    ids::ProjectId,
    password_service::{Reason, StartRequest, StatusRequest},
    service::{ServiceCall, ServiceRefusal, TokenRefusal},
};
use serde::Deserialize;
use std::{net::SocketAddr, time::Duration};
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer};

/// A start carries a user name and a password of at most 1 KiB: 16 KiB is plenty.
const BODY_LIMIT: usize = 16 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/password-migration/{project}/start-authentication",
            post(start),
        )
        .route(
            "/password-migration/{project}/authentication-status",
            get(poll).post(status).options(preflight),
        )
        .route("/password-migration/{project}/token", post(token))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(state)
}

/// `{"message": …}` with the status, never cached.
fn message(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    no_store((status, Json(serde_json::json!({ "message": message }))).into_response())
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refused(refusal: ServiceRefusal) -> Response {
    if let Some(cause) = &refusal.cause {
        tracing::error!(error = ?cause, "the password service cannot answer");
    }
    let mut response = message(refusal.status, refusal.message);
    if refusal.status == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ferry-password-migration\""),
        );
    }
    response
}

fn project(raw: &str) -> Option<ProjectId> {
    uuid::Uuid::parse_str(raw).ok().map(ProjectId)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn caller(state: &AppState, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    peer.map(|p| client_address(p.ip(), headers, &state.trusted_proxies).to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The call a request makes (its project, credential and caller) and its JSON body,
/// or the contract's answer refusing it.
fn read_call<'h, T: serde::de::DeserializeOwned>(
    state: &AppState,
    raw: &str,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &'h HeaderMap,
    bytes: &Bytes,
) -> Result<(ServiceCall<'h>, T), Box<Response>> {
    let Some(project) = project(raw) else {
        return Err(Box::new(refused(ServiceRefusal::NOT_FOUND)));
    };
    let request = body(bytes).map_err(|what| Box::new(message(400, what)))?;
    let call = ServiceCall {
        project,
        bearer: bearer(headers),
        caller: caller(state, peer.map(|c| c.0.0), headers),
    };
    Ok((call, request))
}

/// A JSON body, or the contract's 400 naming what is wrong (never a value).
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, &'static str> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => "the body lacks a field or has one of the wrong type",
        _ => "the body is not JSON",
    })
}

/// The contract's bodies and answers, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StartBody {
    /// The user's id in the target (`user.uniqueId` in the script).
    id: String,
    /// The login name the user typed.
    username: String,
    /// At most 1,024 bytes; never stored or logged.
    password: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StartAnswer {
    /// `Received`.
    message: String,
    #[schema(rename = "contextId")]
    context_id: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct PollAnswer {
    /// `PENDING` or `COMPLETE`.
    status: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusBody {
    #[schema(rename = "contextId")]
    context_id: String,
    /// The login name the context was started for.
    username: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusAnswerBody {
    /// `SUCCESS` or `FAIL`.
    status: String,
    message: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MessageBody {
    message: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenAnswer {
    access_token: String,
    /// `Bearer`.
    token_type: String,
    expires_in: u32,
}

/// Starts the check of a password typed at a failed login; answers at once and
/// checks in the background.
#[utoipa::path(post, path = "/password-migration/{project}/start-authentication",
    tag = "password service",
    params(("project" = String, Path, description = "Project id")),
    request_body = StartBody,
    responses((status = 200, body = StartAnswer), (status = 400, body = MessageBody),
        (status = 401, body = MessageBody), (status = 403, body = MessageBody),
        (status = 404, body = MessageBody)))]
pub async fn start(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let (call, request): (_, StartRequest) = match read_call(&state, &raw, peer, &headers, &bytes) {
        Ok(read) => read,
        Err(refusal) => return *refusal,
    };
    // The body's bytes hold the password too: they go once the request is parsed.
    drop(bytes);
    let project = call.project;
    let pending = match state.ferry.start_authentication(call, request).await {
        Ok(p) => p,
        Err(refusal) => return refused(refusal),
    };
    let context_id = pending.context_id.clone();
    let receipt = pending.receipt();
    let ferry = state.ferry.clone();
    let recovering = state.ferry.clone();
    state.background.spawn(
        "password verification",
        project,
        async move {
            let (_, errors) = ferry.verify_pending(pending).await;
            match errors.into_iter().next() {
                Some(err) => Err(err.into()),
                None => Ok(()),
            }
        },
        move |_| async move {
            if let Err(err) = recovering.refuse_pending(receipt, Reason::Error).await {
                tracing::error!(error = ?err, "a failed verification could not be closed");
            }
        },
    );
    no_store(
        Json(serde_json::json!({ "message": "Received", "contextId": context_id })).into_response(),
    )
}

#[derive(Deserialize)]
pub struct PollQuery {
    #[serde(rename = "contextId")]
    context_id: Option<String>,
}

/// The CORS headers of the polling endpoint: the project's login origin, when the
/// request comes from it.
async fn cors(state: &AppState, project: ProjectId, headers: &HeaderMap, response: &mut Response) {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return;
    };
    let allowed = state.ferry.service_login_origin(project).await;
    if allowed.as_deref() == Some(origin.trim_end_matches('/'))
        && let Ok(value) = HeaderValue::from_str(origin)
    {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Origin"));
}

/// Polled by the browser on the target's waiting page, without credentials: only
/// `PENDING` or `COMPLETE`.
#[utoipa::path(get, path = "/password-migration/{project}/authentication-status",
    tag = "password service",
    params(("project" = String, Path, description = "Project id"),
        ("contextId" = String, Query, description = "The context id the start answered")),
    responses((status = 200, body = PollAnswer)), security(()))]
pub async fn poll(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<PollQuery>,
    headers: HeaderMap,
) -> Response {
    // Only PENDING or COMPLETE, whatever is asked: an unknown project or context is
    // complete (the status call then says it is invalid).
    let complete = match project(&raw) {
        Some(project) => {
            let id = q.context_id.unwrap_or_default();
            match state.ferry.authentication_complete(project, &id).await {
                Ok(complete) => complete,
                Err(err) => {
                    tracing::error!(error = ?err, "cannot read a login context");
                    false
                }
            }
        }
        None => true,
    };
    let mut response = no_store(
        Json(serde_json::json!({ "status": if complete { "COMPLETE" } else { "PENDING" } }))
            .into_response(),
    );
    if let Some(project) = project(&raw) {
        cors(&state, project, &headers, &mut response).await;
    }
    response
}

async fn preflight(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(project) = project(&raw) {
        cors(&state, project, &headers, &mut response).await;
    }
    response
}

/// The answer, read once and bound to the user name the context was started for.
#[utoipa::path(post, path = "/password-migration/{project}/authentication-status",
    tag = "password service",
    params(("project" = String, Path, description = "Project id")),
    request_body = StatusBody,
    responses((status = 200, body = StatusAnswerBody),
        (status = 400, body = MessageBody, description = "Invalid context id"),
        (status = 401, body = MessageBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let (call, request): (_, StatusRequest) = match read_call(&state, &raw, peer, &headers, &bytes)
    {
        Ok(read) => read,
        Err(refusal) => return *refusal,
    };
    match state.ferry.authentication_status(call, request).await {
        Ok(answer) => no_store(Json(answer).into_response()),
        Err(refusal) => refused(refusal),
    }
}

/// RFC 6749 §5.2's error answer.
fn oauth_error(refusal: TokenRefusal) -> Response {
    let (status, code, description) = match refusal {
        TokenRefusal::InvalidRequest(why) => (StatusCode::BAD_REQUEST, "invalid_request", why),
        TokenRefusal::UnsupportedGrant => (
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only client_credentials is supported",
        ),
        TokenRefusal::InvalidClient => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        ),
        TokenRefusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        ),
    };
    let mut response = no_store(
        (
            status,
            Json(serde_json::json!({ "error": code, "error_description": description })),
        )
            .into_response(),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ferry-password-migration\""),
        );
    }
    response
}

/// `client_id:client_secret` from HTTP Basic (each form-encoded first, RFC 6749 §2.3.1).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// OAuth2 client credentials (HTTP Basic or form fields) for a short-lived access
/// token, as `httpPost`'s `clientcredential` configuration asks for one.
#[utoipa::path(post, path = "/password-migration/{project}/token",
    tag = "password service",
    params(("project" = String, Path, description = "Project id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=client_credentials[&client_id=…&client_secret=…]"),
    responses((status = 200, body = TokenAnswer), (status = 400), (status = 401)), security(()))]
pub async fn token(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let Some(project) = project(&raw) else {
        return oauth_error(TokenRefusal::InvalidClient);
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let from_header = basic(&headers);
    let (client_id, client_secret) = match &from_header {
        Some((id, secret)) => (Some(id.as_str()), Some(secret.as_str())),
        None => (field("client_id"), field("client_secret")),
    };
    match state
        .ferry
        .service_token(project, field("grant_type"), client_id, client_secret)
        .await
    {
        Ok(token) => no_store(Json(token).into_response()),
        Err(refusal) => oauth_error(refusal),
    }
}
