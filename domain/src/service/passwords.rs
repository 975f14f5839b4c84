//! The use-cases of the Passwords stage: the verification service's settings and
//! credentials (owners and administrators), the three endpoints WSO2's login script
//! calls (authenticated by the service's own credentials, never a member's), the
//! verification behind them, the generated script, the rehearsal against the test
//! target, the log of verifications and the coverage.

use super::{Ferry, runs::Launch};
use crate::{
    DomainError, Result,
    accounts::Actor,
    audit::{AuditAction, NewAuditEntry, ObjectKind},
    ids::ProjectId,
    legacy::LegacyLogin,
    pagination::{Page, PageRequest},
    password_service::{
        CREATION_SLACK_SECS, ContextKey, CredentialInfo, Discarded, IssuedServiceSecret,
        KEY_PREFIX, NewVerification, PasswordUser, Reason, RehearsalCandidate, SECRET_PREFIX,
        ScriptVariant, Secret, SecretKind, ServiceSettings, ServiceUrls, ServiceView, StartRequest,
        StatusRequest, StoredService, TOKEN_PREFIX, TokenClaims, Verification, WavePlan, WavesView,
        login_key, login_matches, login_script, migrated_attribute, parse_update_time,
        password_update_attribute, reset_attribute,
    },
    ports::RunRecords,
    roles::Permission,
    runs::{Run, RunKind, RunSettings, Tuning},
    scim::target::TargetRole,
    user_types::PasswordStrategy,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How the service refuses a call: the HTTP status and the contract's message (and,
/// for the server's log only, the failure behind a 503).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRefusal {
    pub status: u16,
    pub message: &'static str,
    pub cause: Option<DomainError>,
}

impl ServiceRefusal {
    pub const NOT_FOUND: Self = Self {
        status: 404,
        message: "No password migration service here",
        cause: None,
    };
    pub const DISABLED: Self = Self {
        status: 403,
        message: "Silent password migration is switched off for this project",
        cause: None,
    };
    pub const UNAUTHORIZED: Self = Self {
        status: 401,
        message: "Unauthorized",
        cause: None,
    };
    pub const INVALID_CONTEXT: Self = Self {
        status: 400,
        message: "Invalid context id",
        cause: None,
    };
    fn unavailable(cause: DomainError) -> Self {
        Self {
            status: 503,
            message: "The service cannot answer now; try again",
            cause: Some(cause),
        }
    }
    fn malformed(message: &'static str) -> Self {
        Self {
            status: 400,
            message,
            cause: None,
        }
    }
}

/// A call to the service: the project in its URL, the bearer credential it carried,
/// and the caller's address.
#[derive(Clone, Debug)]
pub struct ServiceCall<'a> {
    pub project: ProjectId,
    pub bearer: Option<&'a str>,
    pub caller: String,
}

/// A started login whose password is still to be checked; handed to a background
/// task by the endpoint (or awaited by the rehearsal).
#[derive(Debug)]
pub struct Pending {
    pub project: ProjectId,
    pub context_id: String,
    key: ContextKey,
    caller: String,
    request: StartRequest,
    settings: ServiceSettings,
}

/// What a background task needs to close a pending login it could not verify (the
/// verification failed or panicked): the script then reads a failure, not a timeout.
#[derive(Clone, Debug)]
pub struct Receipt {
    project: ProjectId,
    key: ContextKey,
    caller: String,
}

impl Pending {
    pub fn receipt(&self) -> Receipt {
        Receipt {
            project: self.project,
            key: self.key.clone(),
            caller: self.caller.clone(),
        }
    }
}

/// The status answer: `SUCCESS` or `FAIL` and the words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAnswer {
    pub status: String,
    pub message: String,
}

impl StatusAnswer {
    fn of(success: bool, message: &str) -> Self {
        Self {
            status: if success { "SUCCESS" } else { "FAIL" }.into(),
            message: message.into(),
        }
    }
}

/// An access token from the token endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u32,
}

/// How the token endpoint refuses (RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    InvalidRequest(&'static str),
    UnsupportedGrant,
    InvalidClient,
    Unavailable,
}

/// One step of a rehearsal, as the page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RehearsalStep {
    /// `start`, `poll`, `status`, `set_password`, `read_back`.
    pub step: String,
    pub passed: bool,
    /// What was asked and what came back, in words (never the password).
    pub detail: String,
}

/// What the rehearsal did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rehearsal {
    pub steps: Vec<RehearsalStep>,
    /// The whole loop worked: the password was verified, set and `is_migrated` read
    /// back as true.
    pub passed: bool,
}

/// The rehearsal's input: a user the latest test run created, and the login and
/// password someone who knows the account types.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RehearsalInput {
    /// The user's id in the test target.
    pub scim_id: String,
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
}

/// How long an instance answers logins from its copy of a project's service settings:
/// a change (a new secret, the service switched off) made on another instance reaches
/// this one within it. Saved here, it applies at once.
pub(super) const SERVICE_FRESH: Duration = Duration::seconds(2);
/// How long the target's schema is taken to say the same about password-update times.
const SCHEMA_FRESH: Duration = Duration::minutes(1);

type Stamped<T> = (DateTime<Utc>, T);

/// What every login reads and seldom changes — the service's settings and the target's
/// password-update attribute — kept per project for a short while: read from the store
/// each time, they were a third of a cheap login's cost.
#[derive(Clone, Default)]
pub(super) struct Cache {
    services: Shared<ProjectId, Option<StoredService>>,
    update_attributes: Shared<(ProjectId, String), Option<String>>,
    pub(super) legacy: Shared<ProjectId, Option<crate::legacy::StoredLegacy>>,
    /// The contexts this instance opened and not yet saw read, by digest: the poll of
    /// one of them is answered without a look-up (another instance looks it up).
    contexts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Opened>>>,
}

/// A context this instance opened: until when it counts, and whether its
/// verification ended.
#[derive(Clone, Copy)]
struct Opened {
    expires_at: DateTime<Utc>,
    done: bool,
}

/// Contexts an instance keeps track of at most; past it, polls look the rest up.
const OPENED_MAX: usize = 100_000;

impl Cache {
    fn opened(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Opened>> {
        self.contexts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self, digest: &str, expires_at: DateTime<Utc>) {
        let mut opened = self.opened();
        if opened.len() < OPENED_MAX {
            opened.insert(
                digest.to_string(),
                Opened {
                    expires_at,
                    done: false,
                },
            );
        }
    }

    fn finish(&self, digest: &str) {
        if let Some(opened) = self.opened().get_mut(digest) {
            opened.done = true;
        }
    }

    fn forget(&self, digest: &str) {
        self.opened().remove(digest);
    }

    /// Drops what expired; the store's copies go by the housekeeping's purge.
    pub(super) fn forget_expired(&self, now: DateTime<Utc>) {
        self.opened().retain(|_, o| o.expires_at > now);
    }
}

/// A map of values with the time each was read, shared by the clones of the service.
type Shared<K, V> = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<K, Stamped<V>>>>;

pub(super) fn cached<K: std::hash::Hash + Eq, V: Clone>(
    map: &std::sync::Mutex<std::collections::HashMap<K, Stamped<V>>>,
    key: &K,
    now: DateTime<Utc>,
    fresh: Duration,
) -> Option<V> {
    let map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.get(key)
        .filter(|(at, _)| now - *at < fresh)
        .map(|(_, v)| v.clone())
}

pub(super) fn keep<K: std::hash::Hash + Eq, V>(
    map: &std::sync::Mutex<std::collections::HashMap<K, Stamped<V>>>,
    key: K,
    now: DateTime<Utc>,
    value: V,
) {
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    map.insert(key, (now, value));
}

/// Compares two strings in time that depends only on their lengths.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hint(secret: &str) -> String {
    format!("{}…", &secret[..secret.len().min(8)])
}

impl Ferry {
    pub(super) async fn may_manage_passwords(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<()> {
        actor.require(Permission::ManageProjects)?;
        self.project(actor, project).await?;
        Ok(())
    }

    /// The service as the Passwords page shows it.
    pub async fn password_service(
        &self,
        actor: &Actor,
        project: ProjectId,
        public_url: &str,
    ) -> Result<ServiceView> {
        self.may_manage_passwords(actor, project).await?;
        let stored = self.store.password_service(project).await?;
        let mut discovered = None;
        for role in [TargetRole::Test, TargetRole::Production] {
            let found = self
                .store
                .target(project, role)
                .await?
                .and_then(|t| t.last_test)
                .and_then(|r| r.discovery);
            if let Some(attribute) = migrated_attribute(found.as_ref()) {
                discovered = Some(attribute.0);
                break;
            }
        }
        let silent_users = self.store.silent_users(project).await?;
        let info = |hint: &Option<String>, at: Option<DateTime<Utc>>| {
            hint.clone()
                .zip(at)
                .map(|(hint, set_at)| CredentialInfo { hint, set_at })
        };
        let mut missing = Vec::new();
        let (settings, client_id, secret, key) = match &stored {
            Some(s) => (
                s.settings.clone(),
                Some(s.client_id.clone()),
                info(&s.secret_hint, s.secret_set_at),
                info(&s.key_hint, s.key_set_at),
            ),
            None => (ServiceSettings::default(), None, None, None),
        };
        if !settings.enabled {
            missing.push("switch the service on".to_string());
        }
        if secret.is_none() && key.is_none() {
            missing.push("make a client secret (or a static key) for the script".into());
        }
        if settings.login_origin.is_none() {
            missing.push(
                "give the origin of the target's login pages, whose browsers poll the status"
                    .into(),
            );
        }
        if discovered.is_none() {
            missing.push(
                "add is_migrated as a local claim mapped to SCIM, then test the target again"
                    .into(),
            );
        }
        Ok(ServiceView {
            settings,
            client_id,
            client_secret: secret,
            static_key: key,
            urls: ServiceUrls::new(public_url, project),
            migrated_attribute: discovered,
            silent_users,
            missing,
        })
    }

    async fn ensure_service(
        &self,
        actor: &Actor,
        project: ProjectId,
        settings: Option<ServiceSettings>,
    ) -> Result<StoredService> {
        let current = self.store.password_service(project).await?;
        if let (Some(current), None) = (&current, &settings) {
            return Ok(current.clone());
        }
        let settings = match settings {
            Some(s) => s.validate()?,
            None => ServiceSettings::default(),
        };
        let client_id = match &current {
            Some(c) => c.client_id.clone(),
            None => format!("fci_{}", &self.secrets.new_token()[..24]),
        };
        let now = self.now();
        let detail = format!(
            "password service {}: contexts live {} s, tokens {} s, lockout after {} failures a \
             user / {} a caller in {} s, login origin {}",
            if settings.enabled { "on" } else { "off" },
            settings.context_ttl_secs,
            settings.token_ttl_secs,
            settings.max_user_failures,
            settings.max_caller_failures,
            settings.failure_window_secs,
            settings.login_origin.as_deref().unwrap_or("none"),
        );
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::PasswordServiceSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(detail);
        self.store
            .save_password_service(project, &settings, &client_id, now, &audit)
            .await?;
        self.forget_service(project);
        self.store
            .password_service(project)
            .await?
            .ok_or_else(|| DomainError::Internal("the saved password service is gone".into()))
    }

    /// Creates the service or changes its settings.
    pub async fn save_password_service(
        &self,
        actor: &Actor,
        project: ProjectId,
        settings: ServiceSettings,
        public_url: &str,
    ) -> Result<ServiceView> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        self.ensure_service(actor, project, Some(settings)).await?;
        self.password_service(actor, project, public_url).await
    }

    /// Makes a new client secret (revoking every access token issued under the old
    /// one) or a new static key; shown this once.
    pub async fn issue_service_secret(
        &self,
        actor: &Actor,
        project: ProjectId,
        kind: SecretKind,
    ) -> Result<IssuedServiceSecret> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let service = self.ensure_service(actor, project, None).await?;
        let prefix = match kind {
            SecretKind::ClientSecret => SECRET_PREFIX,
            SecretKind::StaticKey => KEY_PREFIX,
        };
        let secret = format!("{prefix}{}", self.secrets.new_token());
        let hash = self.secrets.hash_token(&secret);
        let now = self.now();
        let (action, words) = match kind {
            SecretKind::ClientSecret => (
                AuditAction::PasswordServiceSecretRotated,
                "a new client secret; tokens issued before no longer work",
            ),
            SecretKind::StaticKey => (AuditAction::PasswordServiceKeySet, "a new static key"),
        };
        let audit = NewAuditEntry::by(actor, now, action, ObjectKind::Project, project)
            .in_project(project)
            .detail(format!("{words} ({})", hint(&secret)));
        match kind {
            SecretKind::ClientSecret => {
                self.store
                    .set_service_secret(project, &hash, &hint(&secret), now, &audit)
                    .await?
            }
            SecretKind::StaticKey => {
                self.store
                    .set_service_key(project, Some((&hash, &hint(&secret))), now, &audit)
                    .await?
            }
        }
        self.forget_service(project);
        Ok(IssuedServiceSecret {
            client_id: service.client_id,
            secret,
            kind,
        })
    }

    pub async fn revoke_service_key(&self, actor: &Actor, project: ProjectId) -> Result<()> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::PasswordServiceKeyRevoked,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail("removed the static key");
        self.store
            .set_service_key(project, None, now, &audit)
            .await?;
        self.forget_service(project);
        Ok(())
    }

    /// The login script for the project, with its URLs and client id filled in.
    pub async fn password_script(
        &self,
        actor: &Actor,
        project: ProjectId,
        variant: ScriptVariant,
        public_url: &str,
    ) -> Result<String> {
        self.may_manage_passwords(actor, project).await?;
        let client_id = self
            .store
            .password_service(project)
            .await?
            .map(|s| s.client_id)
            .ok_or_else(|| {
                DomainError::NotFound("password service (save its settings first)".into())
            })?;
        Ok(login_script(
            variant,
            &ServiceUrls::new(public_url, project),
            &client_id,
        ))
    }

    pub async fn password_verifications(
        &self,
        actor: &Actor,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<Verification>> {
        self.may_manage_passwords(actor, project).await?;
        self.store.verifications(project, page).await
    }

    pub async fn password_coverage(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<crate::password_service::Coverage> {
        actor.require(Permission::ViewProjects)?;
        self.project(actor, project).await?;
        self.store.password_coverage(project, 60).await
    }

    // ---- the service's endpoints ------------------------------------------------------

    /// The service of the project, if it exists and is on.
    async fn live_service(
        &self,
        project: ProjectId,
    ) -> std::result::Result<StoredService, ServiceRefusal> {
        let now = self.now();
        let cache = &self.password_cache.services;
        let service = match cached(cache, &project, now, SERVICE_FRESH) {
            Some(service) => service,
            None => {
                let service = self
                    .store
                    .password_service(project)
                    .await
                    .map_err(ServiceRefusal::unavailable)?;
                keep(cache, project, now, service.clone());
                service
            }
        };
        match service {
            Some(s) if s.settings.enabled => Ok(s),
            Some(_) => Err(ServiceRefusal::DISABLED),
            None => Err(ServiceRefusal::NOT_FOUND),
        }
    }

    /// Drops this instance's copy of the service after a change made here.
    fn forget_service(&self, project: ProjectId) {
        let mut map = self
            .password_cache
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&project);
    }

    /// The target's password-update attribute for `role`, if its schema has one.
    async fn update_attribute(
        &self,
        project: ProjectId,
        role: TargetRole,
    ) -> Result<Option<String>> {
        let now = self.now();
        let key = (project, role.as_str().to_string());
        let cache = &self.password_cache.update_attributes;
        if let Some(found) = cached(cache, &key, now, SCHEMA_FRESH) {
            return Ok(found);
        }
        let found = self.store.target(project, role).await?.and_then(|target| {
            let discovery = target.last_test.as_ref().and_then(|r| r.discovery.as_ref());
            password_update_attribute(discovery)
        });
        keep(cache, key, now, found.clone());
        Ok(found)
    }

    /// Whether the bearer credential is an access token of this project's current
    /// client secret, or its static key.
    fn authorized(
        &self,
        service: &StoredService,
        project: ProjectId,
        bearer: Option<&str>,
    ) -> bool {
        let Some(bearer) = bearer else {
            return false;
        };
        if bearer.starts_with(TOKEN_PREFIX) {
            return self
                .workers
                .passwords
                .check_token(bearer)
                .is_some_and(|claims| {
                    claims.p == project.0
                        && service.secret_hash.is_some()
                        && claims.g == service.secret_generation
                        && claims.e > self.now().timestamp()
                });
        }
        if bearer.starts_with(KEY_PREFIX) {
            return service
                .key_hash
                .as_deref()
                .is_some_and(|stored| same_secret(stored, &self.secrets.hash_token(bearer)));
        }
        false
    }

    /// The token endpoint: client credentials in, a short-lived access token out.
    pub async fn service_token(
        &self,
        project: ProjectId,
        grant_type: Option<&str>,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> std::result::Result<AccessToken, TokenRefusal> {
        let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
            return Err(TokenRefusal::InvalidRequest(
                "client_id and client_secret are required (HTTP Basic or the form)",
            ));
        };
        match grant_type {
            Some("client_credentials") => {}
            Some(_) => return Err(TokenRefusal::UnsupportedGrant),
            None => return Err(TokenRefusal::InvalidRequest("grant_type is required")),
        }
        let service = match self.live_service(project).await {
            Ok(s) => s,
            Err(ServiceRefusal { cause: Some(_), .. }) => return Err(TokenRefusal::Unavailable),
            Err(_) => return Err(TokenRefusal::InvalidClient),
        };
        let secret_ok = service
            .secret_hash
            .as_deref()
            .is_some_and(|stored| same_secret(stored, &self.secrets.hash_token(client_secret)));
        if !secret_ok || !same_secret(&service.client_id, client_id) {
            return Err(TokenRefusal::InvalidClient);
        }
        let ttl = service.settings.token_ttl_secs;
        let claims = TokenClaims {
            p: project.0,
            g: service.secret_generation,
            e: self.now().timestamp() + i64::from(ttl),
        };
        Ok(AccessToken {
            access_token: self.workers.passwords.sign_token(&claims),
            token_type: "Bearer".into(),
            expires_in: ttl,
        })
    }

    /// `POST …/start-authentication`: opens the login's context and hands back the
    /// verification still to run.
    pub async fn start_authentication(
        &self,
        call: ServiceCall<'_>,
        request: StartRequest,
    ) -> std::result::Result<Pending, ServiceRefusal> {
        let service = self.live_service(call.project).await?;
        if !self.authorized(&service, call.project, call.bearer) {
            return Err(ServiceRefusal::UNAUTHORIZED);
        }
        request.check().map_err(ServiceRefusal::malformed)?;
        self.open_login(call.project, call.caller, request, service.settings)
            .await
            .map_err(ServiceRefusal::unavailable)
    }

    /// Opens a login's context — its id unguessable, signed with its expiry, kept only
    /// hashed, bound to the digest of the user name — and hands back the verification
    /// still to run. Nothing is written: the context's row is written once, with its
    /// answer, when the verification ends.
    async fn open_login(
        &self,
        project: ProjectId,
        caller: String,
        request: StartRequest,
        settings: ServiceSettings,
    ) -> Result<Pending> {
        let expires_at = self.now() + Duration::seconds(i64::from(settings.context_ttl_secs));
        let context_id = self.workers.passwords.context_id(
            project,
            &self.secrets.new_token(),
            expires_at.timestamp_millis(),
        );
        let key = ContextKey {
            digest: self.secrets.hash_token(&context_id),
            user_digest: self
                .workers
                .records
                .search_digest(project, &login_key(&request.username)),
            expires_at,
        };
        self.password_cache.open(&key.digest, expires_at);
        Ok(Pending {
            project,
            context_id,
            key,
            caller,
            request,
            settings,
        })
    }

    /// Completes a pending login whose verification could not run to its end: the
    /// script reads a failure it may retry.
    pub async fn refuse_pending(&self, receipt: Receipt, reason: Reason) -> Result<()> {
        let verification = NewVerification {
            at: self.now(),
            user_digest: receipt.key.user_digest.clone(),
            caller: receipt.caller,
            user: None,
            reason,
            method: None,
        };
        let finished = self
            .store
            .finish_verification(receipt.project, &receipt.key, &verification)
            .await;
        self.password_cache.finish(&receipt.key.digest);
        finished
    }

    /// Checks a started login's password and completes its context. Every way it can
    /// end is recorded and answered; the failures behind [`Reason::Error`] (or a
    /// verification that could not be recorded) come back for the server's log.
    pub async fn verify_pending(&self, pending: Pending) -> (Reason, Vec<DomainError>) {
        let mut errors = Vec::new();
        let (reason, user, method) = match self.verification(&pending, &mut errors).await {
            Ok(found) => found,
            Err(err) => {
                errors.push(err);
                (Reason::Error, None, None)
            }
        };
        let verification = NewVerification {
            at: self.now(),
            user_digest: pending.key.user_digest.clone(),
            caller: pending.caller.clone(),
            user,
            reason,
            method,
        };
        if let Err(err) = self
            .store
            .finish_verification(pending.project, &pending.key, &verification)
            .await
        {
            errors.push(err);
        }
        self.password_cache.finish(&pending.key.digest);
        (reason, errors)
    }

    /// Why a legacy provider gave no answer goes to `notes`, for the server's log.
    async fn verification(
        &self,
        pending: &Pending,
        notes: &mut Vec<DomainError>,
    ) -> Result<(Reason, Option<PasswordUser>, Option<String>)> {
        let project = pending.project;
        let settings = &pending.settings;
        let since = self.now() - Duration::seconds(i64::from(settings.failure_window_secs));
        let found = self
            .store
            .password_login(
                project,
                pending.request.id.trim(),
                &pending.key.user_digest,
                &pending.caller,
                since,
            )
            .await?;
        if found.by_user >= settings.max_user_failures {
            return Ok((Reason::LockedUser, None, None));
        }
        if found.by_caller >= settings.max_caller_failures {
            return Ok((Reason::LockedCaller, None, None));
        }
        let Some(user) = found.user else {
            return Ok((Reason::UnknownUser, None, None));
        };
        if user.moved.is_some() {
            return Ok((Reason::AlreadyMigrated, Some(user), None));
        }
        if user
            .strategy
            .is_some_and(|s| s != PasswordStrategy::SilentMigration)
        {
            return Ok((Reason::NotSilent, Some(user), None));
        }
        let Some(sealed) = found.sealed else {
            return Ok((Reason::UnknownUser, Some(user), None));
        };
        let record = self
            .workers
            .records
            .open_record(project, &user.source_id, &sealed)
            .await?;
        if !login_matches(&record, &pending.request.username) {
            return Ok((Reason::UsernameMismatch, Some(user), None));
        }
        let legacy = match record.credential {
            Some(_) => None,
            None => match self.legacy_for(project).await? {
                Some(legacy) => Some(legacy),
                None => return Ok((Reason::NoCredential, Some(user), None)),
            },
        };
        if self.changed_in_target(project, &user).await? {
            return Ok((Reason::PasswordChanged, Some(user), None));
        }
        let password = pending.request.password.clone();
        let login = LegacyLogin::of(&record, &pending.request.username);
        let (reason, method) = match (record.credential, legacy) {
            (Some(credential), _) => {
                let method = credential.algorithm().to_string();
                let checked = self
                    .workers
                    .passwords
                    .check_credential(credential, password)
                    .await?;
                let reason = match checked {
                    Some(true) => Reason::Success,
                    Some(false) => Reason::WrongPassword,
                    None => Reason::Busy,
                };
                (reason, method)
            }
            (None, Some(legacy)) => {
                let reason = self
                    .check_live(project, &legacy, &login, password, notes)
                    .await?;
                (reason, legacy.settings.method().to_string())
            }
            (None, None) => return Ok((Reason::NoCredential, Some(user), None)),
        };
        Ok((reason, Some(user), Some(method)))
    }

    /// Whether the target says the user's password changed after Ferry created the
    /// user (a reset there): the legacy password must then never come back over it.
    /// Asked only of targets whose schema has a password-update time.
    async fn changed_in_target(&self, project: ProjectId, user: &PasswordUser) -> Result<bool> {
        let Some(role) = TargetRole::parse(&user.target_role).ok() else {
            return Ok(false);
        };
        let Some(path) = self.update_attribute(project, role).await? else {
            return Ok(false);
        };
        let Some(created) = user.created_at else {
            return Ok(false);
        };
        let Some(target) = self.store.target(project, role).await? else {
            return Ok(false);
        };
        let connector = self.workers.targets.as_ref();
        let secrets = connector
            .open_secrets(project, role, &target.sealed_secrets)
            .await?;
        // A target that cannot say is not taken to have said no: the check fails.
        let resource = connector
            .get_user(&target.settings, &secrets, &user.scim_id)
            .await
            .map_err(|why| {
                DomainError::Internal(format!("reading the user's password time: {why}"))
            })?;
        let changed = read_path(&resource, &path).and_then(parse_update_time);
        Ok(changed.is_some_and(|at| at > created + Duration::seconds(CREATION_SLACK_SECS)))
    }

    /// `GET …/authentication-status?contextId=`: `true` once the verification ended.
    /// A context that does not exist (or expired) answers complete too: the status
    /// call then says it is invalid, and the user does not wait out the timeout.
    pub async fn authentication_complete(
        &self,
        project: ProjectId,
        context_id: &str,
    ) -> Result<bool> {
        if context_id.is_empty() || context_id.len() > 128 {
            return Ok(true);
        }
        let now = self.now();
        let digest = self.secrets.hash_token(context_id);
        if let Some(opened) = self.password_cache.opened().get(&digest).copied() {
            return Ok(opened.done || opened.expires_at <= now);
        }
        if let Some(complete) = self
            .store
            .password_context_complete(project, &digest, now)
            .await?
        {
            return Ok(complete);
        }
        // Not written: still being verified (on another instance, perhaps) while the
        // signed expiry lies ahead; unknown otherwise.
        Ok(self.pending_until(project, context_id, now).is_none())
    }

    /// The expiry of a context id this project's service signed, while it lies ahead.
    fn pending_until(
        &self,
        project: ProjectId,
        context_id: &str,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.workers
            .passwords
            .context_expiry(project, context_id)
            .and_then(DateTime::from_timestamp_millis)
            .filter(|at| *at > now)
    }

    /// `POST …/authentication-status`: the answer, once; bound to the user name.
    pub async fn authentication_status(
        &self,
        call: ServiceCall<'_>,
        request: StatusRequest,
    ) -> std::result::Result<StatusAnswer, ServiceRefusal> {
        let service = self.live_service(call.project).await?;
        if !self.authorized(&service, call.project, call.bearer) {
            return Err(ServiceRefusal::UNAUTHORIZED);
        }
        if request.context_id.is_empty() || request.context_id.len() > 128 {
            return Err(ServiceRefusal::INVALID_CONTEXT);
        }
        let digest = self.secrets.hash_token(&request.context_id);
        let now = self.now();
        let user_digest = self
            .workers
            .records
            .search_digest(call.project, &login_key(&request.username));
        self.password_cache.forget(&digest);
        // The usual case in one statement: the answer, and a success's move.
        match self
            .store
            .take_password_context(call.project, &digest, &user_digest, now)
            .await
        {
            Ok(Some(answered)) => {
                return Ok(StatusAnswer::of(
                    answered.reason.is_success(),
                    answered.reason.message(),
                ));
            }
            Ok(None) => {}
            Err(err) => return Err(ServiceRefusal::unavailable(err)),
        }
        // Otherwise the context is consumed all the same: asked about by another user
        // name, asked before its verification ended, or not there to answer.
        let hold = self.pending_until(call.project, &request.context_id, now);
        match self
            .store
            .discard_password_context(call.project, &digest, now, hold)
            .await
        {
            Ok(Discarded::Taken {
                user_digest: bound,
                reason,
                ..
            }) => Ok(if !same_secret(&bound, &user_digest) {
                StatusAnswer::of(false, "Invalid request")
            } else if let Some(reason) = reason {
                // Its verification ended between the two reads: answered, not moved.
                StatusAnswer::of(false, reason.message())
            } else {
                StatusAnswer::of(false, "The check had not finished")
            }),
            Ok(Discarded::Held) => Ok(StatusAnswer::of(false, "The check had not finished")),
            Ok(Discarded::Gone) => Err(ServiceRefusal::INVALID_CONTEXT),
            Err(err) => Err(ServiceRefusal::unavailable(err)),
        }
    }

    /// The CORS origin the polling endpoint names, if the project set one.
    pub async fn service_login_origin(&self, project: ProjectId) -> Option<String> {
        self.live_service(project)
            .await
            .ok()
            .and_then(|s| s.settings.login_origin)
    }

    // ---- the rehearsal ----------------------------------------------------------------

    /// Plays the login script's part against the test target: start, poll and status
    /// through the same code the endpoints run, then the password and `is_migrated`
    /// set by SCIM PATCH and read back.
    pub async fn rehearse_password_login(
        &self,
        actor: &Actor,
        project: ProjectId,
        input: RehearsalInput,
    ) -> Result<Rehearsal> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let target = self
            .store
            .target(project, TargetRole::Test)
            .await?
            .ok_or_else(|| DomainError::NotFound("test target (set one up first)".into()))?;
        let discovery = target.last_test.as_ref().and_then(|r| r.discovery.as_ref());
        let (attribute, kind) = migrated_attribute(discovery).ok_or_else(|| {
            DomainError::invalid(
                "target",
                "the test target defines no is_migrated attribute: add it as a local claim \
                 mapped to SCIM, then test the target again",
            )
        })?;
        let service = self.ensure_service(actor, project, None).await?;
        let mut steps = Vec::new();
        let step = |name: &str, passed: bool, detail: String| RehearsalStep {
            step: name.into(),
            passed,
            detail,
        };
        let call = ServiceCall {
            project,
            bearer: None,
            caller: "rehearsal".into(),
        };
        let request = StartRequest {
            id: input.scim_id.trim().to_string(),
            username: input.username.clone(),
            password: input.password.clone(),
        };
        if let Err(why) = request.check() {
            return Err(DomainError::invalid("rehearsal", why));
        }
        // The endpoints' own path, without their credentials (a member is acting).
        let pending = self
            .open_login(
                project,
                call.caller.clone(),
                request,
                service.settings.clone(),
            )
            .await?;
        let context_id = pending.context_id.clone();
        steps.push(step(
            "start",
            true,
            "POST start-authentication {id, username, password} → 200 {\"message\": \
             \"Received\", \"contextId\": …}"
                .into(),
        ));
        let (reason, errors) = self.verify_pending(pending).await;
        if let Some(err) = errors.into_iter().next() {
            return Err(err);
        }
        let complete = self.authentication_complete(project, &context_id).await?;
        steps.push(step(
            "poll",
            complete,
            format!(
                "GET authentication-status?contextId=… → {{\"status\": \"{}\"}}",
                if complete { "COMPLETE" } else { "PENDING" }
            ),
        ));
        let digest = self.secrets.hash_token(&context_id);
        self.password_cache.forget(&digest);
        // Read without moving: the password moves once the target took it.
        let taken = self
            .store
            .discard_password_context(project, &digest, self.now(), None)
            .await?;
        let answer = StatusAnswer::of(reason.is_success(), reason.message());
        steps.push(step(
            "status",
            reason.is_success(),
            format!(
                "POST authentication-status {{contextId, username}} → {{\"status\": \"{}\", \
                 \"message\": \"{}\"}} ({})",
                answer.status,
                answer.message,
                reason.label()
            ),
        ));
        if !reason.is_success() {
            return Ok(Rehearsal {
                steps,
                passed: false,
            });
        }
        let connector = self.workers.targets.as_ref();
        let secrets = connector
            .open_secrets(project, TargetRole::Test, &target.sealed_secrets)
            .await?;
        let value = if kind.eq_ignore_ascii_case("boolean") {
            serde_json::Value::Bool(true)
        } else {
            serde_json::Value::String("true".into())
        };
        let operations = vec![
            serde_json::json!({"op": "replace", "path": "password", "value": input.password.expose()}),
            serde_json::json!({"op": "replace", "path": attribute, "value": value}),
        ];
        let scim_id = input.scim_id.trim();
        match connector
            .patch_user(&target.settings, &secrets, scim_id, operations)
            .await
        {
            Ok(()) => steps.push(step(
                "set_password",
                true,
                format!("PATCH /Users/{scim_id}: password and {attribute} = true"),
            )),
            Err(why) => {
                steps.push(step(
                    "set_password",
                    false,
                    format!("PATCH /Users/{scim_id} failed: {why}"),
                ));
                return Ok(Rehearsal {
                    steps,
                    passed: false,
                });
            }
        }
        if let Discarded::Taken {
            user: Some(user), ..
        } = taken
        {
            self.store
                .mark_password_moved(project, &user, "verified", self.now())
                .await?;
        }
        let read = connector
            .get_user(&target.settings, &secrets, scim_id)
            .await;
        let migrated = read
            .as_ref()
            .ok()
            .and_then(|user| read_path(user, &attribute))
            .is_some_and(|v| v == &serde_json::json!(true) || v == &serde_json::json!("true"));
        steps.push(step(
            "read_back",
            migrated,
            match read {
                Ok(_) if migrated => format!("GET /Users/{scim_id}: {attribute} is true"),
                Ok(_) => format!("GET /Users/{scim_id}: {attribute} did not read back as true"),
                Err(why) => format!("GET /Users/{scim_id} failed: {why}"),
            },
        ));
        let audit = NewAuditEntry::by(
            actor,
            self.now(),
            AuditAction::PasswordRehearsed,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "rehearsed a silent migration on the test target's user {scim_id}: {}",
            if migrated { "passed" } else { "failed" }
        ));
        self.store.append_audit(&audit).await?;
        Ok(Rehearsal {
            steps,
            passed: migrated,
        })
    }

    /// Test-run users the rehearsal can use: created by the latest test run, of a
    /// silent-migration type, password not moved yet.
    pub async fn rehearsal_candidates(
        &self,
        actor: &Actor,
        project: ProjectId,
    ) -> Result<Vec<RehearsalCandidate>> {
        self.may_manage_passwords(actor, project).await?;
        Ok(self
            .store
            .rehearsal_candidates(project, 20)
            .await?
            .into_iter()
            .map(|u| RehearsalCandidate {
                scim_id: u.scim_id,
                source_id: u.source_id,
                user_type: u.user_type,
            })
            .collect())
    }
}

impl Ferry {
    /// The plan of invitation waves, how many users wait, the days ahead, and the
    /// latest waves.
    pub async fn waves(&self, actor: &Actor, project: ProjectId) -> Result<WavesView> {
        self.may_manage_passwords(actor, project).await?;
        let plan = self.store.wave_plan(project).await?.unwrap_or_default();
        let now = self.now();
        let waiting = self
            .store
            .waiting_for_reset(project, long_tail_before(&plan, now))
            .await?;
        let sent_today = self
            .store
            .invited_since(project, plan.day_start(now)?)
            .await?;
        let discovery = self
            .store
            .target(project, TargetRole::Production)
            .await?
            .and_then(|t| t.last_test)
            .and_then(|r| r.discovery);
        let recent = self
            .store
            .runs(project, PageRequest::new(Some(0), Some(100)))
            .await?;
        let waves = recent
            .items
            .into_iter()
            .filter(|r| r.kind == RunKind::InviteWave)
            .take(20)
            .collect();
        Ok(WavesView {
            calendar: plan.calendar(now, waiting, sent_today, 14),
            plan,
            waiting,
            sent_today,
            reset_attribute: reset_attribute(discovery.as_ref()),
            waves,
        })
    }

    pub async fn save_wave_plan(
        &self,
        actor: &Actor,
        project: ProjectId,
        plan: WavePlan,
    ) -> Result<WavesView> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let plan = plan.validate()?;
        let now = self.now();
        let audit = NewAuditEntry::by(
            actor,
            now,
            AuditAction::WavePlanSaved,
            ObjectKind::Project,
            project,
        )
        .in_project(project)
        .detail(format!(
            "invitation waves {}: {} a wave, {} a minute, {} a day, {}–{} {}{}",
            if plan.enabled { "on" } else { "off" },
            plan.wave_size,
            plan.per_minute,
            plan.daily_cap,
            plan.from,
            plan.until,
            plan.zone,
            plan.long_tail_days
                .map(|d| format!(", silent-migration users not moved after {d} days too"))
                .unwrap_or_default()
        ));
        self.store
            .save_wave_plan(project, &plan, now, &audit)
            .await?;
        self.waves(actor, project).await
    }

    /// Starts a wave now, whatever the hours: `size` users at most (the plan's wave
    /// size when `None`), at the plan's rate.
    pub async fn start_wave(
        &self,
        actor: &Actor,
        project: ProjectId,
        size: Option<u32>,
    ) -> Result<Run> {
        self.writable_project(actor, project).await?;
        self.may_manage_passwords(actor, project).await?;
        let plan = self.store.wave_plan(project).await?.unwrap_or_default();
        let size = size.unwrap_or(plan.wave_size);
        if !(1..=100_000).contains(&size) {
            return Err(DomainError::invalid("size", "between 1 and 100,000 users"));
        }
        self.no_active_run(project).await?;
        let waiting = self
            .store
            .waiting_for_reset(project, long_tail_before(&plan, self.now()))
            .await?;
        if waiting == 0 {
            return Err(DomainError::invalid(
                "size",
                "no user waits for an invitation: every user of a forced-reset type has one (or \
                 moved their password), and the long-tail rule takes nobody yet",
            ));
        }
        self.launch_wave(Some(actor), project, &plan, size).await
    }

    /// Starts the waves the plans call for now (run by the server every little
    /// while): inside each plan's hours, under its daily cap, when nothing else of the
    /// project runs and users wait.
    pub async fn plan_waves(&self) -> Result<Vec<Run>> {
        let now = self.now();
        let mut started = Vec::new();
        for (project, plan) in self.store.enabled_wave_plans().await? {
            let sent = self
                .store
                .invited_since(project, plan.day_start(now)?)
                .await?;
            let size = plan.wave_now(now, sent)?;
            if size == 0 || self.no_active_run(project).await.is_err() {
                continue;
            }
            let waiting = self
                .store
                .waiting_for_reset(project, long_tail_before(&plan, now))
                .await?;
            if waiting == 0 {
                continue;
            }
            match self.launch_wave(None, project, &plan, size).await {
                Ok(run) => started.push(run),
                // Another instance started one first.
                Err(DomainError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(started)
    }

    async fn launch_wave(
        &self,
        actor: Option<&Actor>,
        project: ProjectId,
        plan: &WavePlan,
        size: u32,
    ) -> Result<Run> {
        let target = self
            .store
            .target(project, TargetRole::Production)
            .await?
            .ok_or_else(|| DomainError::NotFound("production target (set one up first)".into()))?;
        let version = self
            .store
            .mapping_version(project, None)
            .await?
            .ok_or_else(|| DomainError::invalid("mapping", "save a mapping first"))?;
        let user_types = self.saved_user_types(project).await?.user_types;
        let settings = RunSettings {
            tuning: Tuning {
                concurrency: 1,
                batch_size: Some(plan.per_minute.clamp(1, 50)),
                max_users_per_minute: Some(plan.per_minute),
                groups: false,
                ..Tuning::default()
            },
            user_types,
            policy: target.settings.on_existing,
            sample: None,
            window: None,
            placed: None,
        };
        let now = self.now();
        self.launch_by(
            actor,
            Launch {
                project,
                kind: RunKind::InviteWave,
                target_role: TargetRole::Production.as_str().to_string(),
                mapping_version: Some(version.version),
                parent: None,
                settings: &settings,
                records: RunRecords::WaitingForReset {
                    long_tail_before: long_tail_before(plan, now),
                    limit: size,
                },
                schedule: false,
                note: Some(format!("an invitation wave of at most {size} users")),
            },
        )
        .await
    }
}

/// The long tail's cut-off: silent-migration users created before it are invited.
fn long_tail_before(plan: &WavePlan, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    plan.long_tail_days
        .map(|d| now - Duration::days(i64::from(d)))
}

/// A value at a SCIM attribute path (`name` or `urn:…:name`).
fn read_path<'a>(resource: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    match path.rsplit_once(':') {
        Some((schema, name)) => resource.get(schema)?.get(name),
        None => resource.get(path),
    }
}
