//! The password verification service WSO2's login script calls at a user's first login
//! (DESIGN §7): its settings and credentials, the contract's requests and answers, why
//! a verification ends as it does, how a login name is matched to a record, what the
//! coverage counts, and the conditional-authentication script generated for a project.
//!
//! The service is a password oracle on the internet: a password is a [`Secret`] (wiped
//! when dropped, never printed), every failure answers the same words whether or not
//! the user exists, and a lockout answers before any hash is computed.

use crate::{
    DomainError, Result, ids::RunId, import::NormalizedUser, user_types::PasswordStrategy,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A password longer than this is refused before it is hashed (bcrypt reads 72 bytes;
/// a megabyte given to PBKDF2 would cost a core for nothing).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longer user names and ids are refused as malformed.
pub const MAX_LOGIN_BYTES: usize = 512;
pub const MAX_ID_BYTES: usize = 256;

/// The path the service's three endpoints share, below Ferry's public URL. The last
/// segment of each is the one WSO2's sample service uses, so an existing script needs
/// only a new base URL.
pub fn service_base(public_url: &str, project: crate::ids::ProjectId) -> String {
    format!(
        "{}/password-migration/{}",
        public_url.trim_end_matches('/'),
        project.0
    )
}

/// A password in transit: wiped from memory when dropped, never shown by `Debug`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What an owner or administrator sets for the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceSettings {
    /// Off: every call is refused (the credentials stay).
    pub enabled: bool,
    /// How long a login's context lives (WSO2's waiting page polls for 20 s at most).
    pub context_ttl_secs: u32,
    /// How long an access token from the token endpoint lasts.
    pub token_ttl_secs: u32,
    /// The origin of the target's login pages (`https://login.example.com`), whose
    /// browsers poll for the status; CORS headers name it and nothing else.
    pub login_origin: Option<String>,
    /// Failed verifications of one user name within the window before it is locked.
    pub max_user_failures: u32,
    /// Failed verifications from one caller (the target's address) within the window.
    pub max_caller_failures: u32,
    pub failure_window_secs: u32,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            context_ttl_secs: 60,
            token_ttl_secs: 3600,
            login_origin: None,
            max_user_failures: 5,
            max_caller_failures: 1000,
            failure_window_secs: 900,
        }
    }
}

/// A number a form field holds, between `min` and `max`, or the field's error.
fn range(field: &str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

impl ServiceSettings {
    /// Checks every field and says which is wrong.
    pub fn validate(mut self) -> Result<Self> {
        range("context_ttl_secs", self.context_ttl_secs, 10, 600)?;
        range("token_ttl_secs", self.token_ttl_secs, 60, 86_400)?;
        range("max_user_failures", self.max_user_failures, 1, 100)?;
        range(
            "max_caller_failures",
            self.max_caller_failures,
            1,
            1_000_000,
        )?;
        range("failure_window_secs", self.failure_window_secs, 60, 86_400)?;
        self.login_origin = match self.login_origin.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(origin) => Some(normalize_origin(origin)?),
        };
        Ok(self)
    }
}

/// `https://login.example.com[:port]`: a scheme and a host, nothing after.
fn normalize_origin(origin: &str) -> Result<String> {
    let bad = |why: &str| DomainError::invalid("login_origin", why.to_string());
    let url = url::Url::parse(origin)
        .map_err(|_| bad("is not a URL such as https://login.example.com"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad("must start with https:// (or http://) and name a host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "is an origin: a scheme and a host (and port), without a path",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// The service as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredService {
    pub settings: ServiceSettings,
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub secret_hint: Option<String>,
    pub secret_generation: u64,
    pub secret_set_at: Option<DateTime<Utc>>,
    pub key_hash: Option<String>,
    pub key_hint: Option<String>,
    pub key_set_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A credential as the page shows it: its first characters and when it was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialInfo {
    pub hint: String,
    pub set_at: DateTime<Utc>,
}

/// The service's three URLs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceUrls {
    pub start: String,
    pub status: String,
    pub token: String,
}

impl ServiceUrls {
    pub fn new(public_url: &str, project: crate::ids::ProjectId) -> Self {
        let base = service_base(public_url, project);
        Self {
            start: format!("{base}/start-authentication"),
            status: format!("{base}/authentication-status"),
            token: format!("{base}/token"),
        }
    }
}

/// The service as owners and administrators see it; never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceView {
    pub settings: ServiceSettings,
    /// `None` until the service is first saved.
    pub client_id: Option<String>,
    pub client_secret: Option<CredentialInfo>,
    pub static_key: Option<CredentialInfo>,
    pub urls: ServiceUrls,
    /// The attribute the script sets once a password moved (`is_migrated`), as the
    /// test or production target's schemas define it; `None`: add it first.
    pub migrated_attribute: Option<String>,
    /// Users of silent-migration types the production runs created, and how many of
    /// them have a password hash Ferry can check.
    pub silent_users: u64,
    /// What still keeps the service from answering, in the words of the fix.
    pub missing: Vec<String>,
}

/// A secret made for the service, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedServiceSecret {
    pub client_id: String,
    /// The client secret or the static key: shown this once, stored only hashed.
    pub secret: String,
    pub kind: SecretKind,
}

impl fmt::Debug for IssuedServiceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IssuedServiceSecret({}, {:?})",
            self.client_id, self.kind
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// The OAuth2 client secret for the token endpoint.
    ClientSecret,
    /// A static bearer key for the start and status endpoints.
    StaticKey,
}

/// Prefix of the static bearer key; access tokens start with [`TOKEN_PREFIX`].
pub const KEY_PREFIX: &str = "fpk_";
pub const TOKEN_PREFIX: &str = "fat.";
pub const SECRET_PREFIX: &str = "fcs_";

/// What an access token says, signed by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The project (`p`), the client secret's generation (`g`), the expiry (`e`, Unix
    /// seconds).
    pub p: uuid::Uuid,
    pub g: u64,
    pub e: i64,
}

// ---- the contract ------------------------------------------------------------------

/// `POST …/start-authentication`: `id` is the user's id in the target.
#[derive(Debug, Deserialize)]
pub struct StartRequest {
    pub id: String,
    pub username: String,
    pub password: Secret,
}

impl StartRequest {
    /// Malformed requests are refused with what is wrong, never the value.
    pub fn check(&self) -> std::result::Result<(), &'static str> {
        if self.id.trim().is_empty() || self.id.len() > MAX_ID_BYTES {
            return Err("id must be the user's id in the target");
        }
        if self.username.trim().is_empty() || self.username.len() > MAX_LOGIN_BYTES {
            return Err("username must be the login name the user typed");
        }
        if self.password.is_empty() {
            return Err("password is empty");
        }
        if self.password.len() > MAX_PASSWORD_BYTES {
            return Err("password is longer than 1024 bytes");
        }
        Ok(())
    }
}

/// `POST …/authentication-status`.
#[derive(Debug, Deserialize)]
pub struct StatusRequest {
    #[serde(rename = "contextId")]
    pub context_id: String,
    pub username: String,
}

/// Why a verification ended as it did. Only [`Reason::message`] leaves the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Success,
    WrongPassword,
    /// No user of the project has this id in the target (or its record is gone).
    UnknownUser,
    /// The login name is not the user's name or e-mail address.
    UsernameMismatch,
    /// The user's password has moved already: it is never verified again.
    AlreadyMigrated,
    /// The user's type resets passwords by invitation, or creates accounts disabled.
    NotSilent,
    /// The record has no password hash and no legacy connection is set.
    NoCredential,
    /// The target says the password changed after the user was created.
    PasswordChanged,
    LockedUser,
    LockedCaller,
    /// Too many verifications waiting; the login may be tried again.
    Busy,
    /// The check itself failed (a stored record that does not open, a database error).
    Error,
    /// The legacy identity provider gave no answer that says right or wrong.
    LegacyUnavailable,
}

impl Reason {
    pub const ALL: [Reason; 13] = [
        Reason::Success,
        Reason::WrongPassword,
        Reason::UnknownUser,
        Reason::UsernameMismatch,
        Reason::AlreadyMigrated,
        Reason::NotSilent,
        Reason::NoCredential,
        Reason::PasswordChanged,
        Reason::LockedUser,
        Reason::LockedCaller,
        Reason::Busy,
        Reason::Error,
        Reason::LegacyUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Success => "success",
            Reason::WrongPassword => "wrong_password",
            Reason::UnknownUser => "unknown_user",
            Reason::UsernameMismatch => "username_mismatch",
            Reason::AlreadyMigrated => "already_migrated",
            Reason::NotSilent => "not_silent",
            Reason::NoCredential => "no_credential",
            Reason::PasswordChanged => "password_changed",
            Reason::LockedUser => "locked_user",
            Reason::LockedCaller => "locked_caller",
            Reason::Busy => "busy",
            Reason::Error => "error",
            Reason::LegacyUnavailable => "legacy_unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// For the people reading the service's log on the Passwords page.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Success => "password verified",
            Reason::WrongPassword => "wrong password",
            Reason::UnknownUser => "no such user in this project",
            Reason::UsernameMismatch => "login name is not the user's",
            Reason::AlreadyMigrated => "password moved already",
            Reason::NotSilent => "user type does not migrate passwords silently",
            Reason::NoCredential => "no password hash and no legacy connection",
            Reason::PasswordChanged => "password changed in the target since the import",
            Reason::LockedUser => "user name locked after failed attempts",
            Reason::LockedCaller => "caller locked after failed attempts",
            Reason::Busy => "too many logins waiting",
            Reason::Error => "the check failed",
            Reason::LegacyUnavailable => "the legacy identity provider did not answer",
        }
    }

    /// The words the login script receives. Every reason about the user answers the
    /// same, so the answer never tells whether a user exists.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Success => "Authenticated",
            Reason::LockedUser | Reason::LockedCaller => {
                "Too many failed attempts; try again later"
            }
            Reason::Busy | Reason::Error | Reason::LegacyUnavailable => {
                "The password could not be checked now; try again"
            }
            _ => "Invalid username or password",
        }
    }

    pub fn is_success(self) -> bool {
        self == Reason::Success
    }

    /// Charged towards a lockout: a guess that was checked (or could have been).
    pub fn counts(self) -> bool {
        matches!(
            self,
            Reason::WrongPassword | Reason::UnknownUser | Reason::UsernameMismatch
        )
    }
}

/// A user of the project as the service finds it by its id in the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordUser {
    pub scim_id: String,
    pub source_id: String,
    pub run_id: RunId,
    pub target_role: String,
    pub user_type: Option<String>,
    /// `None` for users moved before strategies were recorded with them.
    pub strategy: Option<PasswordStrategy>,
    pub created_at: Option<DateTime<Utc>>,
    /// `verified` or `reset` once the password has moved.
    pub moved: Option<String>,
}

/// What a verification reads first: the lockout's counts, the user found by the id the
/// target gave them, and their sealed record (`None` when it is gone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoginLookup {
    pub by_user: u32,
    pub by_caller: u32,
    pub user: Option<PasswordUser>,
    pub sealed: Option<Vec<u8>>,
}

/// A test-run user the rehearsal may use: ids and the user type, never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RehearsalCandidate {
    pub scim_id: String,
    pub source_id: String,
    pub user_type: Option<String>,
}

/// One verification, as recorded (never a password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVerification {
    pub at: DateTime<Utc>,
    pub user_digest: String,
    pub caller: String,
    pub user: Option<PasswordUser>,
    pub reason: Reason,
    /// The scheme or legacy method that checked the password.
    pub method: Option<String>,
}

/// A verification as the Passwords page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Verification {
    pub at: DateTime<Utc>,
    /// The user's id in the target and its legacy id, when one was found.
    pub scim_id: Option<String>,
    pub source_id: Option<String>,
    pub user_type: Option<String>,
    pub reason: Reason,
    pub method: Option<String>,
    pub caller: String,
}

/// What identifies a login's context in the store, and until when it counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextKey {
    /// The SHA-256 of the context id.
    pub digest: String,
    /// The keyed digest of the user name the context is bound to.
    pub user_digest: String,
    pub expires_at: DateTime<Utc>,
}

/// A finished context as the status call reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnsweredContext {
    pub reason: Reason,
    /// The user the verification found (its password moved if the reason is success).
    pub user: Option<MovedUser>,
}

/// What discarding a context found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Discarded {
    /// A context waited: bound to this user name's digest, with its answer (`None`
    /// for a mark a read before the end left).
    Taken {
        user_digest: String,
        reason: Option<Reason>,
        user: Option<MovedUser>,
    },
    /// None was written yet: a taken mark now stands in its place.
    Held,
    /// Nothing waits: unknown, expired or read already.
    Gone,
}

/// Who a password move is about: ids and the user type's name, never values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedUser {
    pub scim_id: String,
    pub source_id: String,
    pub target_role: String,
    pub user_type: Option<String>,
}

impl PasswordUser {
    pub fn moved_user(&self) -> MovedUser {
        MovedUser {
            scim_id: self.scim_id.clone(),
            source_id: self.source_id.clone(),
            target_role: self.target_role.clone(),
            user_type: self.user_type.clone(),
        }
    }
}

/// Whether `login` names this record: its user name, one of its e-mail addresses or
/// its legacy id, compared without case (SCIM user names are not case-exact), also
/// after a user-store prefix such as `PRIMARY/`.
pub fn login_matches(user: &NormalizedUser, login: &str) -> bool {
    let login = login.trim();
    let unprefixed = login
        .split_once('/')
        .filter(|(domain, _)| {
            !domain.is_empty()
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        })
        .map(|(_, rest)| rest);
    let same = |candidate: &str| {
        let candidate = candidate.trim();
        !candidate.is_empty()
            && (candidate.to_lowercase() == login.to_lowercase()
                || unprefixed.is_some_and(|u| candidate.to_lowercase() == u.to_lowercase()))
    };
    user.username.as_deref().is_some_and(same)
        || user.emails.iter().any(|e| same(&e.value))
        || same(&user.source_id)
}

/// The form a login name is digested in (the lockout's key and the context's binding).
pub fn login_key(login: &str) -> String {
    format!("login:{}", login.trim().to_lowercase())
}

/// The attribute the login script sets once a password moved, as the target's schemas
/// define it: `is_migrated` (the claim `http://wso2.org/claims/is_migrated` mapped to
/// SCIM), as a full path (`urn:…:is_migrated` in an extension) and its type.
pub fn migrated_attribute(
    discovery: Option<&crate::scim::discovery::Discovery>,
) -> Option<(String, String)> {
    discovery?
        .user_attribute(|a| a.name.replace('_', "").eq_ignore_ascii_case("ismigrated"))
        .map(|(path, a)| (path, a.kind.clone()))
}

/// The attribute in which the target says when a user's password last changed
/// (WSO2's `lastPasswordUpdateTime`, from the claim
/// `http://wso2.org/claims/identity/lastPasswordUpdateTime`), as a full path.
pub fn password_update_attribute(
    discovery: Option<&crate::scim::discovery::Discovery>,
) -> Option<String> {
    discovery?
        .user_attribute(|a| {
            let name = a.name.to_ascii_lowercase();
            name.contains("passwordupdate") || name.contains("passwordchanged")
        })
        .map(|(path, _)| path)
}

/// A password-update time as targets write it: epoch milliseconds (WSO2 keeps them
/// as text), epoch seconds, or an RFC 3339 date-time.
pub fn parse_update_time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if let Ok(n) = text.parse::<i64>() {
        // Beyond 10^11 a number is milliseconds (seconds would be past the year 5000).
        return if n.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        };
    }
    DateTime::parse_from_rfc3339(&text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// How long after Ferry created a user its random password may still read as
/// changed (the target stamps it as it creates the user, before Ferry records it).
pub const CREATION_SLACK_SECS: i64 = 120;

// ---- invitation waves -------------------------------------------------------------

/// How invitations to choose a new password go out: waves of at most `wave_size`
/// users, `per_minute` at most, no more than `daily_cap` a day, only between `from`
/// and `until` (local time in `zone`). The users of forced-reset types wait for them;
/// with `long_tail_days`, so do users of silent-migration types whose password has
/// not moved that many days after they were created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WavePlan {
    /// Off: no wave starts by itself (one can still be started by hand).
    pub enabled: bool,
    pub wave_size: u32,
    pub per_minute: u32,
    pub daily_cap: u32,
    /// `09:00`
    pub from: String,
    /// `17:00`
    pub until: String,
    /// `Europe/Berlin`
    pub zone: String,
    pub long_tail_days: Option<u32>,
}

impl Default for WavePlan {
    fn default() -> Self {
        Self {
            enabled: false,
            wave_size: 500,
            per_minute: 60,
            daily_cap: 2_000,
            from: "09:00".into(),
            until: "17:00".into(),
            zone: "UTC".into(),
            long_tail_days: None,
        }
    }
}

fn clock_time(field: &str, text: &str) -> Result<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid(field, "a time such as 09:00"))
}

impl WavePlan {
    /// Checks every field and says which is wrong.
    pub fn validate(self) -> Result<Self> {
        range("wave_size", self.wave_size, 1, 100_000)?;
        range("per_minute", self.per_minute, 1, 10_000)?;
        range("daily_cap", self.daily_cap, 1, 1_000_000)?;
        if let Some(days) = self.long_tail_days {
            range("long_tail_days", days, 1, 3_650)?;
        }
        let (from, until) = (
            clock_time("from", &self.from)?,
            clock_time("until", &self.until)?,
        );
        if until <= from {
            return Err(DomainError::invalid(
                "until",
                "must be later in the day than the start",
            ));
        }
        self.zone()?;
        Ok(Self {
            from: from.format("%H:%M").to_string(),
            until: until.format("%H:%M").to_string(),
            ..self
        })
    }

    fn zone(&self) -> Result<chrono_tz::Tz> {
        self.zone.trim().parse().map_err(|_| {
            DomainError::invalid("zone", "an IANA time zone such as Europe/Berlin or UTC")
        })
    }

    /// Local midnight of `now`'s day, in UTC: invitations are counted from it.
    pub fn day_start(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        use chrono::TimeZone;
        let zone = self.zone()?;
        let date = now.with_timezone(&zone).date_naive();
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        Ok(zone
            .from_local_datetime(&midnight)
            .earliest()
            .map_or(now, |t| t.with_timezone(&Utc)))
    }

    /// How many users a wave started at `now` may take, when `sent_today` went out
    /// since local midnight: none outside the hours or past the daily cap, and never
    /// more than the rate can send before the hours end.
    pub fn wave_now(&self, now: DateTime<Utc>, sent_today: u64) -> Result<u32> {
        let zone = self.zone()?;
        let local = now.with_timezone(&zone).time();
        let (from, until) = (
            clock_time("from", &self.from)?,
            clock_time("until", &self.until)?,
        );
        if local < from || local >= until {
            return Ok(0);
        }
        let minutes_left = u64::try_from((until - local).num_minutes()).unwrap_or(0);
        let cap_left = u64::from(self.daily_cap).saturating_sub(sent_today);
        let fits = minutes_left.saturating_mul(u64::from(self.per_minute));
        Ok(u32::try_from(cap_left.min(fits).min(u64::from(self.wave_size))).unwrap_or(0))
    }

    /// Users the plan invites in one day at most.
    pub fn per_day(&self) -> u64 {
        let minutes = match (
            clock_time("from", &self.from),
            clock_time("until", &self.until),
        ) {
            (Ok(from), Ok(until)) => u64::try_from((until - from).num_minutes()).unwrap_or(0),
            _ => 0,
        };
        u64::from(self.daily_cap).min(minutes * u64::from(self.per_minute))
    }

    /// The next `days` days (from today, local) with the users the plan would invite
    /// on each, until `waiting` are all invited.
    pub fn calendar(
        &self,
        now: DateTime<Utc>,
        waiting: u64,
        sent_today: u64,
        days: u32,
    ) -> Vec<PlannedDay> {
        let Ok(zone) = self.zone() else {
            return Vec::new();
        };
        let today = now.with_timezone(&zone).date_naive();
        let mut left = waiting;
        let mut out = Vec::new();
        for d in 0..days {
            if left == 0 {
                break;
            }
            let date = today + chrono::Days::new(u64::from(d));
            let room = if d == 0 {
                self.per_day().saturating_sub(sent_today)
            } else {
                self.per_day()
            };
            let users = room.min(left);
            left -= users;
            out.push(PlannedDay {
                date: date.format("%Y-%m-%d").to_string(),
                users,
            });
        }
        out
    }
}

/// One day of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedDay {
    pub date: String,
    pub users: u64,
}

/// The waves as the Passwords page shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WavesView {
    pub plan: WavePlan,
    /// Users a wave would invite now (forced-reset types, and the long tail).
    pub waiting: u64,
    /// Invitations since local midnight.
    pub sent_today: u64,
    /// The days ahead and how many the plan invites on each, until none wait.
    pub calendar: Vec<PlannedDay>,
    /// The attribute a wave sets (`forcePasswordReset`, or `askPassword` where that is
    /// the mechanism), as the production target's schemas define it.
    pub reset_attribute: Option<String>,
    /// The latest waves, newest first.
    pub waves: Vec<crate::runs::Run>,
}

/// The attribute that makes the target ask a user for a new password: an admin-forced
/// reset (`forcePasswordReset`, in the enterprise or WSO2 extension) where the target
/// defines one, else `askPassword` (the invitation to set one).
pub fn reset_attribute(discovery: Option<&crate::scim::discovery::Discovery>) -> Option<String> {
    let discovery = discovery?;
    discovery
        .user_attribute(|a| {
            a.name.eq_ignore_ascii_case("forcePasswordReset") && a.kind == "boolean"
        })
        .map(|(path, _)| path)
        .or_else(|| crate::runs::ask_password_attribute(Some(discovery)))
}

// ---- coverage ------------------------------------------------------------------------

/// One user type's passwords.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypeCoverage {
    /// `None`: users moved before user types were recorded with them.
    pub user_type: Option<String>,
    pub strategy: Option<PasswordStrategy>,
    /// Users the production runs created.
    pub created: u64,
    pub verified: u64,
    pub reset: u64,
    /// `created - verified - reset`: still to move.
    pub waiting: u64,
}

/// A day's moves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayCoverage {
    /// `2026-12-06` (UTC).
    pub day: String,
    pub verified: u64,
    pub reset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReasonCount {
    pub reason: Reason,
    pub label: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coverage {
    pub by_type: Vec<TypeCoverage>,
    /// The last days with moves, oldest first.
    pub by_day: Vec<DayCoverage>,
    /// Verifications by how they ended (all time).
    pub outcomes: Vec<ReasonCount>,
}

// ---- the script ----------------------------------------------------------------------

/// Which product the script is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScriptVariant {
    IdentityServer,
    Asgardeo,
}

impl ScriptVariant {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "identity_server" | "is" => Some(Self::IdentityServer),
            "asgardeo" => Some(Self::Asgardeo),
            _ => None,
        }
    }
}

/// The name the client secret is stored under in the product's secret store.
pub const SCRIPT_SECRET_NAME: &str = "ferry_client_secret";

/// The conditional-authentication script for a project, ready to paste: on a failed
/// login of a user whose password has not moved, it sends the typed password to the
/// service, waits on the status, and on success sets the password and `is_migrated`.
pub fn login_script(variant: ScriptVariant, urls: &ServiceUrls, client_id: &str) -> String {
    let secret = format!("secrets.{SCRIPT_SECRET_NAME}");
    let product = match variant {
        ScriptVariant::IdentityServer => "WSO2 Identity Server",
        ScriptVariant::Asgardeo => "Asgardeo",
    };
    format!(
        r#"// On-demand silent password migration through Ferry ({product}).
// When a login fails, a user whose password has not moved yet is checked against
// the password exported from the legacy identity provider; on success the typed
// password becomes the user's password here and is_migrated is set to "true".
// The client secret lives in the secret store as "{SCRIPT_SECRET_NAME}".
var START_URL = "{start}";
var STATUS_URL = "{status}";
var AUTH = {{
    type: "clientcredential",
    properties: {{
        consumerKey: "{client_id}",
        consumerSecret: "{secret}",
        tokenEndpoint: "{token}"
    }}
}};
var MIGRATED = "http://wso2.org/claims/is_migrated";
var FAILED = {{
    "status": "Login failed",
    "statusMsg": "Please check your username and password and try again.",
    "i18nkey": "auth.fail.error"
}};

var onLoginRequest = function (context) {{
    executeStep(1, {{
        onFail: function (context) {{
            var login = context.request.params.username[0];
            var password = context.request.params.password[0];
            var user = getUniqueUserWithClaimValues({{
                "http://wso2.org/claims/username": login
            }}, context) || getUniqueUserWithClaimValues({{
                "http://wso2.org/claims/emailaddress": login
            }}, context);
            if (user === null || user.localClaims[MIGRATED] === "true") {{
                sendError(null, FAILED);
                return;
            }}
            httpPost(START_URL, {{
                "id": user.uniqueId,
                "username": login,
                "password": password
            }}, {{}}, AUTH, {{
                onSuccess: function (context, answer) {{
                    if (answer.message !== "Received" || !answer.contextId) {{
                        sendError(null, FAILED);
                        return;
                    }}
                    waitForFerry(context, user, login, password, answer.contextId);
                }},
                onFail: function (context, answer) {{ sendError(null, FAILED); }},
                onTimeout: function (context, answer) {{ sendError(null, FAILED); }}
            }});
        }}
    }});
}};

var waitForFerry = function (context, user, login, password, contextId) {{
    prompt("internalWait", {{
        "waitingType": "POLLING",
        "waitingConfigs": {{
            "timeout": "20",
            "pollingEndpoint": STATUS_URL,
            "requestMethod": "GET",
            "requestParams": "contextId=" + contextId,
            "pollingInterval": "2"
        }}
    }}, {{
        onSuccess: function (context) {{
            httpPost(STATUS_URL, {{ "contextId": contextId, "username": login }}, {{}}, AUTH, {{
                onSuccess: function (context, answer) {{
                    if (answer.status !== "SUCCESS") {{
                        sendError(null, FAILED);
                        return;
                    }}
                    updateUserPassword(user, password, {{
                        onSuccess: function (context) {{
                            user.localClaims[MIGRATED] = "true";
                            // The user signs in as the one the password was checked for.
                            context.steps[1].subject = user;
                        }},
                        onFail: function (context) {{ sendError(null, FAILED); }}
                    }});
                }},
                onFail: function (context, answer) {{ sendError(null, FAILED); }},
                onTimeout: function (context, answer) {{ sendError(null, FAILED); }}
            }});
        }},
        onFail: function (context) {{ sendError(null, FAILED); }},
        onTimeout: function (context) {{ sendError(null, FAILED); }}
    }});
}};
"#,
        start = urls.start,
        status = urls.status,
        token = urls.token,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::Email;

    fn user() -> NormalizedUser {
        NormalizedUser {
            source_id: "auth0|42".into(),
            username: Some("Alice".into()),
            emails: vec![Email {
                value: "Alice@Example.com".into(),
                primary: true,
                verified: Some(true),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_login_matches_the_name_an_address_or_the_legacy_id_without_case() {
        let u = user();
        for login in [
            "alice",
            "ALICE",
            " alice@example.com ",
            "PRIMARY/alice",
            "auth0|42",
        ] {
            assert!(login_matches(&u, login), "{login}");
        }
        for login in ["bob", "alice@example.org", "", "PRIMARY/bob", "alic"] {
            assert!(!login_matches(&u, login), "{login}");
        }
    }

    #[test]
    fn answers_never_tell_whether_a_user_exists() {
        let words = |r: Reason| r.message();
        for r in [
            Reason::WrongPassword,
            Reason::UnknownUser,
            Reason::UsernameMismatch,
            Reason::AlreadyMigrated,
            Reason::NotSilent,
            Reason::NoCredential,
            Reason::PasswordChanged,
        ] {
            assert_eq!(words(r), words(Reason::WrongPassword), "{r:?}");
        }
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn settings_say_which_field_is_wrong() {
        let ok = ServiceSettings {
            login_origin: Some("https://login.example.com/".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(
            ok.login_origin.as_deref(),
            Some("https://login.example.com")
        );
        let bad = ServiceSettings {
            context_ttl_secs: 5,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(bad.field(), Some("context_ttl_secs"));
        let path = ServiceSettings {
            login_origin: Some("https://login.example.com/authenticationendpoint".into()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(path.field(), Some("login_origin"));
    }

    #[test]
    fn update_times_read_in_every_form_targets_write() {
        use serde_json::json;
        let at = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_update_time(&json!("1796551200000")), Some(at));
        assert_eq!(parse_update_time(&json!(1796551200)), Some(at));
        assert_eq!(
            parse_update_time(&json!("2026-12-06T11:00:00+01:00")),
            Some(at)
        );
        assert_eq!(parse_update_time(&json!("yesterday")), None);
        assert_eq!(parse_update_time(&json!(true)), None);
    }

    #[test]
    fn a_wave_keeps_to_the_hours_the_cap_and_the_rate() {
        let plan = WavePlan {
            wave_size: 500,
            per_minute: 10,
            daily_cap: 1_000,
            from: "09:00".into(),
            until: "17:00".into(),
            zone: "Europe/Berlin".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 08:30 in Berlin: before the hours.
        assert_eq!(plan.wave_now(at("2026-12-07T07:30:00Z"), 0).unwrap(), 0);
        // 10:00: a whole wave.
        assert_eq!(plan.wave_now(at("2026-12-07T09:00:00Z"), 0).unwrap(), 500);
        // 16:50: ten minutes at ten a minute.
        assert_eq!(plan.wave_now(at("2026-12-07T15:50:00Z"), 0).unwrap(), 100);
        // 950 sent today: 50 left under the cap.
        assert_eq!(plan.wave_now(at("2026-12-07T09:00:00Z"), 950).unwrap(), 50);
        // 17:00: over.
        assert_eq!(plan.wave_now(at("2026-12-07T16:00:00Z"), 0).unwrap(), 0);
        assert_eq!(
            plan.day_start(at("2026-12-07T09:00:00Z")).unwrap(),
            at("2026-12-06T23:00:00Z")
        );
        let days = plan.calendar(at("2026-12-07T09:00:00Z"), 2_500, 400, 7);
        let users: Vec<u64> = days.iter().map(|d| d.users).collect();
        assert_eq!(users, [600, 1_000, 900]);
        assert_eq!(days[0].date, "2026-12-07");
        let bad = WavePlan {
            until: "08:00".into(),
            from: "09:00".into(),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(bad.field(), Some("until"));
        let zone = WavePlan {
            zone: "Mars/Olympus".into(),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(zone.field(), Some("zone"));
    }

    #[test]
    fn malformed_starts_are_refused_before_hashing() {
        let start = |id: &str, username: &str, password: String| StartRequest {
            id: id.into(),
            username: username.into(),
            password: Secret::new(password),
        };
        assert!(start("1", "a", "p".into()).check().is_ok());
        assert!(start("", "a", "p".into()).check().is_err());
        assert!(start("1", " ", "p".into()).check().is_err());
        assert!(start("1", "a", String::new()).check().is_err());
        assert!(
            start("1", "a", "x".repeat(MAX_PASSWORD_BYTES + 1))
                .check()
                .is_err()
        );
        assert_eq!(format!("{:?}", Secret::new("hunter2".into())), "Secret(…)");
    }

    #[test]
    fn the_script_names_the_urls_the_client_and_the_secret_by_name() {
        let urls = ServiceUrls::new(
            "https://ferry.example/",
            crate::ids::ProjectId(uuid::Uuid::nil()),
        );
        let script = login_script(ScriptVariant::IdentityServer, &urls, "fci_abc");
        assert!(script.contains(&urls.start) && script.contains(&urls.status));
        assert!(script.contains(&urls.token) && script.contains("\"fci_abc\""));
        assert!(script.contains("secrets.ferry_client_secret"));
        assert!(urls.start.ends_with("/start-authentication"));
        assert!(
            urls.start
                .starts_with("https://ferry.example/password-migration/")
        );
    }
}
