//! The HTTP surface: the Leptos pages and server functions, the REST API, static files,
//! and the layers every request passes (tracing, limits, headers, sign-in, guards).

pub mod api;
pub mod auth;
pub mod events;
pub mod guard;
pub mod headers;
pub mod password_service;
pub mod uploads;

use app::ssr::RequestContext;
use axum::{
    Router,
    body::Body,
    extract::{FromRef, State},
    http::{Request, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use domain::service::Ferry;
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tower_http::{
    compression::CompressionLayer,
    limit::RequestBodyLimitLayer,
    services::{ServeDir, ServeFile},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

/// Requests larger than this are refused (413); uploads get their own limit later.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub ferry: Ferry,
    pub ingest: crate::ingest::Ingest,
    pub assessments: crate::assessment::Assessments,
    /// Samples records for previews and computes mapping impacts.
    pub records: crate::record_work::RecordWorker,
    /// Seals target secrets and runs connection tests.
    pub targets: crate::scim::connector::Targets,
    /// The run engine and scheduler.
    pub runs: crate::runs::Runs,
    pub max_upload_bytes: u64,
    pub leptos: LeptosOptions,
    pub public_url: String,
    /// Origins a browser's state-changing request may come from (the public URL
    /// first).
    pub allowed_origins: Arc<Vec<String>>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    pub secure_cookies: bool,
    /// Every background task; its stop signal also ends endless responses (event
    /// streams), so the graceful shutdown does not wait for them.
    pub background: crate::background::Supervisor,
    /// Once an owner exists it always will; caching this saves a query per request.
    setup_done: Arc<AtomicBool>,
}

/// The workers behind the service: they hold the key, the files and the threads.
pub struct Workers {
    pub ingest: crate::ingest::Ingest,
    pub assessments: crate::assessment::Assessments,
    pub records: crate::record_work::RecordWorker,
    pub targets: crate::scim::connector::Targets,
    pub runs: crate::runs::Runs,
    pub passwords: crate::passwords::PasswordWorker,
    pub keys: crate::keyring::Keyring,
}

impl Workers {
    /// The service's view of them, given to it once.
    pub fn ports(&self) -> domain::ports::Workers {
        domain::ports::Workers {
            assessments: std::sync::Arc::new(self.assessments.clone()),
            records: std::sync::Arc::new(self.records.clone()),
            targets: std::sync::Arc::new(self.targets.clone()),
            runs: std::sync::Arc::new(self.runs.clone()),
            passwords: std::sync::Arc::new(self.passwords.clone()),
            keys: std::sync::Arc::new(self.keys.clone()),
        }
    }
}

impl AppState {
    pub fn new(
        ferry: Ferry,
        workers: Workers,
        leptos: LeptosOptions,
        public_url: String,
        secure_cookies: bool,
        background: crate::background::Supervisor,
    ) -> Self {
        let Workers {
            ingest,
            assessments,
            records,
            targets,
            runs,
            passwords: _,
            keys: _,
        } = workers;
        Self {
            ferry,
            ingest,
            assessments,
            records,
            targets,
            runs,
            max_upload_bytes: 2 * 1024 * 1024 * 1024,
            leptos,
            allowed_origins: Arc::new(vec![public_url.clone()]),
            public_url,
            trusted_proxies: Arc::new(Vec::new()),
            secure_cookies,
            background,
            setup_done: Arc::new(AtomicBool::new(false)),
        }
    }

    pub async fn needs_setup(&self) -> domain::Result<bool> {
        if self.setup_done.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let needs = self.ferry.needs_setup().await?;
        if !needs {
            self.setup_done.store(true, Ordering::Relaxed);
        }
        Ok(needs)
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Builds the whole application router.
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(app::App);
    let site_root = std::path::PathBuf::from(state.leptos.site_root.as_ref());
    let pkg = ServeDir::new(site_root.join(state.leptos.site_pkg_dir.as_ref()));
    let favicon = ServeFile::new(site_root.join("favicon.svg"));
    // Uploads stream large bodies for a long time: they get their own size limit and
    // no request timeout, and skip the 1 MiB limit of everything else.
    let uploads = Router::new()
        .route(
            "/api/v1/projects/{id}/uploads",
            axum::routing::post(uploads::receive),
        )
        .route("/uploads/{id}", axum::routing::post(uploads::receive))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), auth::resolve))
        .layer(middleware::from_fn(headers::security_headers));
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api::router())
        .route("/sfn/{*name}", get(server_fn).post(server_fn))
        .route("/uploads/{id}/errors.csv", get(api::upload_errors_csv))
        .route("/projects/{id}/uploads/events", get(events::upload_events))
        .route("/uploads/{id}/read", axum::routing::post(api::read_again))
        .route(
            "/uploads/{id}/remove",
            axum::routing::post(api::remove_upload),
        )
        .route("/projects/{id}/runs/{run}/events", get(api::runs::events))
        .route(
            "/projects/{id}/runs/{run}/crosswalk.csv",
            get(api::runs::crosswalk),
        )
        .route("/projects/{id}/review/export.csv", get(api::review::export))
        .route(
            "/projects/{id}/assessment/events",
            get(api::assessment::events),
        )
        .route("/projects/{id}/assessment.json", get(api::assessment::get))
        .leptos_routes_with_handler(routes, get(page))
        .nest_service("/pkg", pkg)
        .route_service("/favicon.svg", favicon)
        .fallback(page)
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .layer(middleware::from_fn_with_state(state.clone(), auth::resolve))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .merge(uploads)
        .merge(
            password_service::router(state.clone())
                .layer(middleware::from_fn(headers::security_headers)),
        )
        .layer(
            // Spans name the route template, never the concrete path: paths can carry
            // invite tokens and ids that do not belong in logs.
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "unmatched".into());
                tracing::info_span!("request", method = %req.method(), route = %route)
            }),
        )
        .with_state(state)
}

fn request_context(state: &AppState, req: &Request<Body>) -> RequestContext {
    let resolved = req
        .extensions()
        .get::<auth::Resolved>()
        .cloned()
        .unwrap_or_default();
    RequestContext {
        ferry: state.ferry.clone(),
        actor: resolved.actor,
        session_token: resolved.session_token,
        origin: domain::accounts::RequestOrigin {
            address: resolved.address,
        },
        public_url: state.public_url.clone(),
        secure_cookies: state.secure_cookies,
    }
}

async fn page(State(state): State<AppState>, req: Request<Body>) -> Response {
    let context = request_context(&state, &req);
    let options = state.leptos.clone();
    let handler = leptos_axum::render_app_to_stream_with_context(
        move || provide_context(context.clone()),
        move || app::shell(options.clone()),
    );
    handler(req).await.into_response()
}

async fn server_fn(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    let context = request_context(&state, &req);
    handle_server_fns_with_context(move || provide_context(context.clone()), req).await
}

/// Liveness and readiness: answers 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.ferry.needs_setup().await {
        Ok(needs_setup) => axum::Json(serde_json::json!({
            "status": "ok",
            "setup_required": needs_setup,
        }))
        .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "unavailable" })),
            )
                .into_response()
        }
    }
}
