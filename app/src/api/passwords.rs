//! The Passwords stage for the browser: the verification service's settings and
//! credentials (a new secret is shown once), the generated script, the rehearsal on a
//! test-run user, the log of verifications, the coverage, and the legacy identity
//! provider that checks passwords of users without a hash.
// The settings form's fields arrive as the save function's arguments, one each, so
// the form works before the wasm loads.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use domain::{
    legacy::LegacyView,
    pagination::Page,
    password_service::{
        Coverage, IssuedServiceSecret, RehearsalCandidate, ServiceView, Verification,
    },
    service::Rehearsal,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::ssr::fail;
#[cfg(feature = "ssr")]
use domain::DomainError;

#[cfg(feature = "ssr")]
fn number(field: &str, text: &str) -> Result<u32, AppError> {
    text.trim()
        .parse()
        .map_err(|_| fail(DomainError::invalid(field, "enter a whole number")))
}

#[server(prefix = "/sfn", endpoint = "passwords/service")]
pub async fn password_service(project: String) -> Result<ServiceView, AppError> {
    let (ctx, actor) = crate::ssr::signed_in()?;
    let ferry = ctx.ferry.clone();
    let project = project.parse().map_err(fail)?;
    ferry
        .password_service(&actor, project, &ctx.public_url)
        .await
        .map_err(fail)
}

/// Saves the service's settings; an unticked `enabled` switches it off.
#[server(prefix = "/sfn", endpoint = "passwords/save")]
pub async fn save_password_service(
    project: String,
    #[server(default)] enabled: Option<String>,
    #[server(default)] login_origin: String,
    context_ttl_secs: String,
    token_ttl_secs: String,
    max_user_failures: String,
    max_caller_failures: String,
    failure_window_secs: String,
) -> Result<ServiceView, AppError> {
    let (ctx, actor) = crate::ssr::signed_in()?;
    let ferry = ctx.ferry.clone();
    let project = project.parse().map_err(fail)?;
    let settings = domain::password_service::ServiceSettings {
        enabled: enabled.is_some(),
        context_ttl_secs: number("context_ttl_secs", &context_ttl_secs)?,
        token_ttl_secs: number("token_ttl_secs", &token_ttl_secs)?,
        login_origin: Some(login_origin).filter(|o| !o.trim().is_empty()),
        max_user_failures: number("max_user_failures", &max_user_failures)?,
        max_caller_failures: number("max_caller_failures", &max_caller_failures)?,
        failure_window_secs: number("failure_window_secs", &failure_window_secs)?,
    };
    ferry
        .save_password_service(&actor, project, settings, &ctx.public_url)
        .await
        .map_err(fail)
}

/// `kind`: `client_secret` or `static_key`. The answer is the only time it is shown.
#[server(prefix = "/sfn", endpoint = "passwords/issue")]
pub async fn issue_service_secret(
    project: String,
    kind: String,
) -> Result<IssuedServiceSecret, AppError> {
    use domain::password_service::SecretKind;
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let kind = match kind.as_str() {
        "client_secret" => SecretKind::ClientSecret,
        "static_key" => SecretKind::StaticKey,
        _ => {
            return Err(fail(DomainError::invalid(
                "kind",
                "expected client_secret or static_key",
            )));
        }
    };
    ferry
        .issue_service_secret(&actor, project, kind)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/revoke_key")]
pub async fn revoke_service_key(project: String) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .revoke_service_key(&actor, project)
        .await
        .map_err(fail)
}

/// `variant`: `identity_server` or `asgardeo`.
#[server(prefix = "/sfn", endpoint = "passwords/script")]
pub async fn password_script(project: String, variant: String) -> Result<String, AppError> {
    let (ctx, actor) = crate::ssr::signed_in()?;
    let ferry = ctx.ferry.clone();
    let project = project.parse().map_err(fail)?;
    let variant = domain::password_service::ScriptVariant::parse(&variant).ok_or_else(|| {
        fail(DomainError::invalid(
            "variant",
            "expected identity_server or asgardeo",
        ))
    })?;
    ferry
        .password_script(&actor, project, variant, &ctx.public_url)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/verifications")]
pub async fn password_verifications(
    project: String,
    offset: u64,
) -> Result<Page<Verification>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let page = domain::pagination::PageRequest::new(Some(offset), Some(25));
    ferry
        .password_verifications(&actor, project, page)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/coverage")]
pub async fn password_coverage(project: String) -> Result<Coverage, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.password_coverage(&actor, project).await.map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/candidates")]
pub async fn rehearsal_candidates(project: String) -> Result<Vec<RehearsalCandidate>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .rehearsal_candidates(&actor, project)
        .await
        .map_err(fail)
}

/// Plays the login script's part for a test-run user with the password typed (used
/// for this rehearsal only, and set on that user in the test target).
#[server(prefix = "/sfn", endpoint = "passwords/rehearse")]
pub async fn rehearse_login(
    project: String,
    scim_id: String,
    username: String,
    password: String,
) -> Result<Rehearsal, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let input = domain::service::RehearsalInput {
        scim_id,
        username,
        password: domain::password_service::Secret::new(password),
    };
    ferry
        .rehearse_password_login(&actor, project, input)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/waves")]
pub async fn password_waves(
    project: String,
) -> Result<domain::password_service::WavesView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.waves(&actor, project).await.map_err(fail)
}

/// Saves the plan of waves from its form; an empty `long_tail_days` invites only the
/// users of forced-reset types.
#[server(prefix = "/sfn", endpoint = "passwords/save_plan")]
pub async fn save_wave_plan(
    project: String,
    #[server(default)] enabled: Option<String>,
    wave_size: String,
    per_minute: String,
    daily_cap: String,
    from: String,
    until: String,
    zone: String,
    #[server(default)] long_tail_days: String,
) -> Result<domain::password_service::WavesView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let long_tail_days = match long_tail_days.trim() {
        "" => None,
        days => Some(number("long_tail_days", days)?),
    };
    let plan = domain::password_service::WavePlan {
        enabled: enabled.is_some(),
        wave_size: number("wave_size", &wave_size)?,
        per_minute: number("per_minute", &per_minute)?,
        daily_cap: number("daily_cap", &daily_cap)?,
        from,
        until,
        zone,
        long_tail_days,
    };
    ferry
        .save_wave_plan(&actor, project, plan)
        .await
        .map_err(fail)
}

/// Starts a wave now; an empty `size` takes the plan's wave size.
#[server(prefix = "/sfn", endpoint = "passwords/start_wave")]
pub async fn start_wave(
    project: String,
    #[server(default)] size: String,
) -> Result<domain::runs::Run, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let size = match size.trim() {
        "" => None,
        n => Some(number("size", n)?),
    };
    ferry.start_wave(&actor, project, size).await.map_err(fail)
}

/// The legacy identity provider that checks passwords of users without a hash, if set.
#[server(prefix = "/sfn", endpoint = "passwords/legacy")]
pub async fn legacy_connection(project: String) -> Result<Option<LegacyView>, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry.legacy_connection(&actor, project).await.map_err(fail)
}

/// Saves the connection from the form: `kind` picks which of the other fields count.
/// A blank `secret` keeps the stored one; `remove_secret` removes it.
#[server(prefix = "/sfn", endpoint = "passwords/save_legacy")]
pub async fn save_legacy_connection(
    project: String,
    kind: String,
    #[server(default)] url: String,
    #[server(default)] dn_template: String,
    #[server(default)] starttls: Option<String>,
    #[server(default)] token_url: String,
    #[server(default)] client_id: String,
    #[server(default)] scope: String,
    #[server(default)] org_url: String,
    #[server(default)] region: String,
    #[server(default)] endpoint: String,
    #[server(default)] secret: String,
    #[server(default)] remove_secret: Option<String>,
) -> Result<LegacyView, AppError> {
    use domain::legacy::{LegacyInput, LegacySettings};
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    let optional = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    let settings = match kind.as_str() {
        "ldap" => LegacySettings::Ldap {
            url,
            dn_template: optional(dn_template),
            starttls: starttls.is_some(),
        },
        "oauth2_password" => LegacySettings::OAuth2Password {
            token_url,
            client_id,
            scope,
        },
        "okta" => LegacySettings::Okta { org_url },
        "cognito" => LegacySettings::Cognito {
            region,
            client_id,
            endpoint: optional(endpoint),
        },
        _ => {
            return Err(fail(DomainError::invalid(
                "kind",
                "choose LDAP, OAuth2 password grant, Okta or Cognito",
            )));
        }
    };
    let secret = if remove_secret.is_some() {
        Some(String::new())
    } else {
        Some(secret).filter(|s| !s.is_empty())
    };
    ferry
        .save_legacy_connection(&actor, project, LegacyInput { settings, secret })
        .await
        .map_err(fail)
}

/// Asks the provider about a made-up user: a working connection refuses them.
#[server(prefix = "/sfn", endpoint = "passwords/test_legacy")]
pub async fn test_legacy_connection(project: String) -> Result<LegacyView, AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .test_legacy_connection(&actor, project)
        .await
        .map_err(fail)
}

#[server(prefix = "/sfn", endpoint = "passwords/delete_legacy")]
pub async fn delete_legacy_connection(project: String) -> Result<(), AppError> {
    let (ferry, actor) = crate::ssr::actor()?;
    let project = project.parse().map_err(fail)?;
    ferry
        .delete_legacy_connection(&actor, project)
        .await
        .map_err(fail)
}
