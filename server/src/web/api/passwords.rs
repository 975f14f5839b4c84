//! The Passwords stage through the API: the verification service's settings, its
//! client secret and static key (shown once), the generated login script, the log of
//! verifications, the coverage, the rehearsal against the test target, the invitation
//! waves (their plan, and a wave started by hand), and the legacy identity provider
//! that checks passwords of users without a hash.

use super::{ApiActor, ApiJson, ApiResult, ErrorBody, PageParams, project_id};
use crate::web::AppState;
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use domain::{
    DomainError,
    legacy::{LegacyInput, LegacyView},
    pagination::{Page, PageRequest},
    password_service::{
        Coverage, IssuedServiceSecret, RehearsalCandidate, ScriptVariant, SecretKind,
        ServiceSettings, ServiceView, Verification, WavePlan, WavesView,
    },
    runs::Run,
    service::{Rehearsal, RehearsalInput},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The verification service: settings, URLs, credentials (hints only) and what is
/// still missing before it can answer.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/service", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = ServiceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_service(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<ServiceView>> {
    Ok(Json(
        state
            .ferry
            .password_service(&actor, project_id(&id)?, &state.public_url)
            .await?,
    ))
}

/// Creates the service or changes its settings.
#[utoipa::path(put, path = "/api/v1/projects/{id}/passwords/service", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    request_body = ServiceSettings,
    responses((status = 200, body = ServiceView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_service(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(settings): ApiJson<ServiceSettings>,
) -> ApiResult<Json<ServiceView>> {
    Ok(Json(
        state
            .ferry
            .save_password_service(&actor, project_id(&id)?, settings, &state.public_url)
            .await?,
    ))
}

/// A new client secret, shown this once; access tokens issued under the old one stop
/// working.
#[utoipa::path(post, path = "/api/v1/projects/{id}/passwords/service/secret", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 201, body = IssuedServiceSecret), (status = 403, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<IssuedServiceSecret>)> {
    let issued = state
        .ferry
        .issue_service_secret(&actor, project_id(&id)?, SecretKind::ClientSecret)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A new static bearer key (replacing any other), shown this once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/passwords/service/key", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 201, body = IssuedServiceSecret), (status = 403, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<IssuedServiceSecret>)> {
    let issued = state
        .ferry
        .issue_service_secret(&actor, project_id(&id)?, SecretKind::StaticKey)
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Removes the static key.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/passwords/service/key", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .ferry
        .revoke_service_key(&actor, project_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
pub struct ScriptQuery {
    /// `identity_server` (default) or `asgardeo`.
    variant: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Script {
    pub variant: ScriptVariant,
    pub script: String,
}

/// The conditional-authentication script with this project's URLs and client id.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/script", tag = "passwords",
    params(("id" = String, Path, description = "Project id"), ScriptQuery),
    responses((status = 200, body = Script), (status = 404, body = ErrorBody)))]
pub async fn script(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<ScriptQuery>,
) -> ApiResult<Json<Script>> {
    let variant = match q.variant.as_deref() {
        None => ScriptVariant::IdentityServer,
        Some(v) => ScriptVariant::parse(v).ok_or_else(|| {
            DomainError::invalid("variant", "expected identity_server or asgardeo")
        })?,
    };
    let script = state
        .ferry
        .password_script(&actor, project_id(&id)?, variant, &state.public_url)
        .await?;
    Ok(Json(Script { variant, script }))
}

/// Every verification, newest first: who, when, how it ended, by which method.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/verifications", tag = "passwords",
    params(("id" = String, Path, description = "Project id"), PageParams),
    responses((status = 200, body = Page<Verification>), (status = 403, body = ErrorBody)))]
pub async fn verifications(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Json<Page<Verification>>> {
    let page = PageRequest::new(q.offset, q.limit);
    Ok(Json(
        state
            .ferry
            .password_verifications(&actor, project_id(&id)?, page)
            .await?,
    ))
}

/// Passwords moved per user type and by day, and verifications by outcome.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/coverage", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Coverage), (status = 404, body = ErrorBody)))]
pub async fn coverage(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Coverage>> {
    Ok(Json(
        state
            .ferry
            .password_coverage(&actor, project_id(&id)?)
            .await?,
    ))
}

/// Users of the latest test run the rehearsal can use.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/rehearsal/candidates", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<RehearsalCandidate>), (status = 403, body = ErrorBody)))]
pub async fn candidates(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RehearsalCandidate>>> {
    Ok(Json(
        state
            .ferry
            .rehearsal_candidates(&actor, project_id(&id)?)
            .await?,
    ))
}

/// Plays the login script's part against the test target: start, poll, status, then
/// the password and `is_migrated` set by SCIM PATCH and read back.
#[utoipa::path(post, path = "/api/v1/projects/{id}/passwords/rehearsal", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    request_body = RehearsalInput,
    responses((status = 200, body = Rehearsal), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rehearse(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RehearsalInput>,
) -> ApiResult<Json<Rehearsal>> {
    Ok(Json(
        state
            .ferry
            .rehearse_password_login(&actor, project_id(&id)?, input)
            .await?,
    ))
}

/// The plan of invitation waves, how many users wait, the days ahead and the latest
/// waves.
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/waves", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = WavesView), (status = 403, body = ErrorBody)))]
pub async fn waves(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<WavesView>> {
    Ok(Json(state.ferry.waves(&actor, project_id(&id)?).await?))
}

/// Saves the plan: wave size, users a minute, a daily cap, the hours in a time zone,
/// and the long-tail rule.
#[utoipa::path(put, path = "/api/v1/projects/{id}/passwords/waves/plan", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    request_body = WavePlan,
    responses((status = 200, body = WavesView), (status = 422, body = ErrorBody)))]
pub async fn save_plan(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(plan): ApiJson<WavePlan>,
) -> ApiResult<Json<WavesView>> {
    Ok(Json(
        state
            .ferry
            .save_wave_plan(&actor, project_id(&id)?, plan)
            .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct StartWave {
    /// Users at most; the plan's wave size when left out.
    size: Option<u32>,
}

/// Starts a wave now, whatever the plan's hours (at its rate).
#[utoipa::path(post, path = "/api/v1/projects/{id}/passwords/waves", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    request_body = StartWave,
    responses((status = 201, body = Run), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_wave(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StartWave>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = state
        .ferry
        .start_wave(&actor, project_id(&id)?, body.size)
        .await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// The legacy identity provider that checks passwords of users whose export carried
/// no hash (never its secret).
#[utoipa::path(get, path = "/api/v1/projects/{id}/passwords/legacy", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = LegacyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_legacy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<LegacyView>> {
    let view = state
        .ferry
        .legacy_connection(&actor, project_id(&id)?)
        .await?
        .ok_or_else(|| DomainError::NotFound("legacy connection (none is set up)".into()))?;
    Ok(Json(view))
}

/// Creates or replaces the connection: an LDAP bind, an OAuth2 password grant, Okta's
/// authn or Cognito's `USER_PASSWORD_AUTH`. A secret left out is kept for the same
/// method at the same address; an empty one removes it.
#[utoipa::path(put, path = "/api/v1/projects/{id}/passwords/legacy", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    request_body = LegacyInput,
    responses((status = 200, body = LegacyView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_legacy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<LegacyInput>,
) -> ApiResult<Json<LegacyView>> {
    Ok(Json(
        state
            .ferry
            .save_legacy_connection(&actor, project_id(&id)?, input)
            .await?,
    ))
}

/// Removes the connection (none to remove is no error): users without a hash can then
/// not be verified.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/passwords/legacy", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 204), (status = 403, body = ErrorBody)))]
pub async fn delete_legacy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .ferry
        .delete_legacy_connection(&actor, project_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the provider about a made-up user and password and keeps the result: a
/// working connection refuses them.
#[utoipa::path(post, path = "/api/v1/projects/{id}/passwords/legacy/test", tag = "passwords",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = LegacyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_legacy(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(id): Path<String>,
) -> ApiResult<Json<LegacyView>> {
    Ok(Json(
        state
            .ferry
            .test_legacy_connection(&actor, project_id(&id)?)
            .await?,
    ))
}
