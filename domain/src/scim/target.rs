//! A project's SCIM target connection: the settings a user edits (base URL, how to
//! authenticate, extra headers, a CA certificate, timeouts, what to do with users that
//! already exist), the secrets kept apart from them (sealed at rest, never shown), the
//! presets for known targets, and the validation of what a form or the API sends.

use super::discovery::ConnectionReport;
use crate::{DomainError, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A project has a production target and, optionally, a separate one for test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetRole {
    Production,
    Test,
}

impl TargetRole {
    pub const ALL: [TargetRole; 2] = [TargetRole::Production, TargetRole::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Test => "test",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Production => "Production target",
            Self::Test => "Test target",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                DomainError::invalid("target", format!("{s:?} is not production or test"))
            })
    }
}

/// Known kinds of target; each brings its own defaults and limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Wso2,
    Asgardeo,
    #[default]
    Generic,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Wso2, Preset::Asgardeo, Preset::Generic];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wso2 => "wso2",
            Self::Asgardeo => "asgardeo",
            Self::Generic => "generic",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Wso2 => "WSO2 Identity Server",
            Self::Asgardeo => "Asgardeo",
            Self::Generic => "Generic SCIM 2.0",
        }
    }

    /// The SCIM root below the host when the user gives only the host.
    pub fn default_path(self) -> Option<&'static str> {
        match self {
            Self::Wso2 | Self::Asgardeo => Some("/scim2"),
            Self::Generic => None,
        }
    }

    /// A bulk limit the target enforces whatever it advertises (Asgardeo: 100).
    pub fn max_operations_cap(self) -> Option<u32> {
        match self {
            Self::Asgardeo => Some(100),
            _ => None,
        }
    }

    /// WSO2 runs every user operation of a bulk request before its group operations
    /// and resolves `bulkId:` references only inside group `members`, so groups must
    /// follow their members and refer to nothing else by `bulkId`.
    pub fn users_before_groups(self) -> bool {
        matches!(self, Self::Wso2 | Self::Asgardeo)
    }

    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| DomainError::invalid("preset", format!("unknown preset {s:?}")))
    }
}

/// How Ferry proves who it is to the target. The secret part (password, token, client
/// secret) lives in [`TargetSecrets`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetAuth {
    /// HTTP Basic with this user name and the secret as password.
    Basic { username: String },
    /// A static bearer token (the secret).
    Bearer,
    /// OAuth2 client credentials; the secret is the client secret.
    #[serde(rename = "oauth2")]
    OAuth2 {
        token_url: String,
        client_id: String,
        #[serde(default)]
        scope: String,
    },
}

impl TargetAuth {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "basic",
            Self::Bearer => "bearer",
            Self::OAuth2 { .. } => "oauth2",
        }
    }

    pub fn secret_label(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "password",
            Self::Bearer => "bearer token",
            Self::OAuth2 { .. } => "client secret",
        }
    }
}

/// What to do when a user Ferry creates already exists in the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExistingPolicy {
    /// Leave the existing user as it is and record the record as skipped.
    #[default]
    Skip,
    /// Replace the existing user's attributes with the mapped ones.
    Update,
    /// Record the record as failed, for review.
    Fail,
}

impl ExistingPolicy {
    pub const ALL: [ExistingPolicy; 3] = [Self::Skip, Self::Update, Self::Fail];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Update => "update",
            Self::Fail => "fail",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Skip => "Skip it",
            Self::Update => "Update it",
            Self::Fail => "Fail the record",
        }
    }
}

pub const DEFAULT_CONNECT_TIMEOUT_SECS: u32 = 10;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u32 = 60;
const MAX_HEADERS: usize = 20;
const MAX_URL_CHARS: usize = 2000;
const MAX_CA_BYTES: usize = 64 * 1024;

/// The visible settings of a target connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetSettings {
    pub preset: Preset,
    /// The SCIM root, e.g. `https://is.example.com/scim2`, without a trailing slash.
    pub base_url: String,
    pub auth: TargetAuth,
    /// PEM certificate(s) trusted in addition to the system's, for a private CA.
    pub ca_certificate: Option<String>,
    pub connect_timeout_secs: u32,
    pub request_timeout_secs: u32,
    pub on_existing: ExistingPolicy,
    /// An upper bound on operations per bulk request below what the target advertises.
    pub max_operations: Option<u32>,
}

impl TargetSettings {
    /// Operations per bulk request: the advertised limit, capped by the preset and the
    /// project's own bound.
    pub fn bulk_operations(&self, advertised: u32) -> u32 {
        [
            Some(advertised),
            self.preset.max_operations_cap(),
            self.max_operations,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(advertised)
        .max(1)
    }

    /// Things a careful administrator should know before relying on the settings.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let loopback = |url: &str| {
            url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
        };
        if self.base_url.starts_with("http://") && !loopback(&self.base_url) {
            warnings.push(
                "the target is reached over plain http: credentials and user data cross \
                 the network unencrypted"
                    .into(),
            );
        }
        if let TargetAuth::OAuth2 { token_url, .. } = &self.auth
            && token_url.starts_with("http://")
            && !loopback(token_url)
        {
            warnings.push("the token endpoint is reached over plain http".into());
        }
        warnings
    }
}

/// The secret half of a target connection: sealed at rest, never sent to a browser.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSecrets {
    /// The Basic password, the bearer token or the OAuth2 client secret.
    pub secret: Option<String>,
    /// Extra request headers, kept secret because they often carry API keys.
    pub headers: Vec<Header>,
}

impl std::fmt::Debug for TargetSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetSecrets")
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field(
                "headers",
                &self.headers.iter().map(|h| &h.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <set>", self.name)
    }
}

/// What a form or an API client sends to create or change a target. Secrets left out
/// (`None`) keep their stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetInput {
    #[serde(default)]
    pub preset: Preset,
    pub base_url: String,
    pub auth: TargetAuth,
    /// A new password / token / client secret; omitted keeps the stored one.
    #[serde(default)]
    pub secret: Option<String>,
    /// New extra headers (replacing all stored ones); omitted keeps them.
    #[serde(default)]
    pub headers: Option<Vec<Header>>,
    #[serde(default)]
    pub ca_certificate: Option<String>,
    #[serde(default)]
    pub connect_timeout_secs: Option<u32>,
    #[serde(default)]
    pub request_timeout_secs: Option<u32>,
    #[serde(default)]
    pub on_existing: ExistingPolicy,
    #[serde(default)]
    pub max_operations: Option<u32>,
}

impl TargetInput {
    /// Validates the input against what is stored (`current`), returning the settings
    /// and secrets to keep.
    pub fn validate(
        self,
        current: Option<(&TargetSettings, &TargetSecrets)>,
    ) -> Result<(TargetSettings, TargetSecrets)> {
        let base_url = normalize_base_url(&self.base_url, self.preset)?;
        let auth = match self.auth {
            TargetAuth::Basic { username } => {
                let username = username.trim().to_string();
                if username.is_empty() || username.chars().any(char::is_control) {
                    return Err(DomainError::invalid(
                        "auth.username",
                        "enter the user name for HTTP Basic",
                    ));
                }
                if username.contains(':') {
                    return Err(DomainError::invalid(
                        "auth.username",
                        "an HTTP Basic user name cannot contain ':'",
                    ));
                }
                TargetAuth::Basic { username }
            }
            TargetAuth::Bearer => TargetAuth::Bearer,
            TargetAuth::OAuth2 {
                token_url,
                client_id,
                scope,
            } => {
                let token_url = check_url("auth.token_url", &token_url)?.to_string();
                let client_id = client_id.trim().to_string();
                if client_id.is_empty() {
                    return Err(DomainError::invalid(
                        "auth.client_id",
                        "enter the OAuth2 client id",
                    ));
                }
                let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
                TargetAuth::OAuth2 {
                    token_url,
                    client_id,
                    scope,
                }
            }
        };
        let secret = match self.secret {
            Some(secret) => {
                if secret.is_empty() {
                    return Err(DomainError::invalid(
                        "secret",
                        format!("enter the {}", auth.secret_label()),
                    ));
                }
                if secret.chars().any(|c| c.is_control()) {
                    return Err(DomainError::invalid(
                        "secret",
                        "must not contain control characters or line breaks",
                    ));
                }
                Some(secret)
            }
            // A secret is kept only for the same kind of authentication (a Basic
            // password is no bearer token) sent to the same place: a stored secret
            // never follows a changed URL to another host.
            None => current
                .filter(|(settings, _)| {
                    settings.auth.kind() == auth.kind()
                        && same_destination(settings, &base_url, &auth)
                })
                .and_then(|(_, secrets)| secrets.secret.clone()),
        };
        if secret.is_none() {
            let moved = current.is_some_and(|(settings, _)| {
                settings.auth.kind() == auth.kind() && !same_destination(settings, &base_url, &auth)
            });
            return Err(DomainError::invalid(
                "secret",
                if moved {
                    format!(
                        "enter the {} again: credentials are sent to a new address",
                        auth.secret_label()
                    )
                } else {
                    format!("enter the {}", auth.secret_label())
                },
            ));
        }
        let ca_certificate = match self.ca_certificate.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(pem) => {
                if pem.len() > MAX_CA_BYTES {
                    return Err(DomainError::invalid(
                        "ca_certificate",
                        "is larger than 64 KiB; paste only the CA certificate(s)",
                    ));
                }
                if !pem.contains("-----BEGIN CERTIFICATE-----")
                    || !pem.contains("-----END CERTIFICATE-----")
                {
                    return Err(DomainError::invalid(
                        "ca_certificate",
                        "paste a PEM certificate (-----BEGIN CERTIFICATE----- …)",
                    ));
                }
                Some(pem.to_string())
            }
        };
        let headers = match self.headers {
            Some(headers) => validate_headers(headers)?,
            None => match current {
                // Header values may be credentials too: they follow no new address.
                Some((settings, secrets))
                    if !secrets.headers.is_empty()
                        && !same_destination(settings, &base_url, &auth) =>
                {
                    return Err(DomainError::invalid(
                        "headers",
                        "enter the extra headers again: they are sent to a new address",
                    ));
                }
                Some((_, secrets)) => secrets.headers.clone(),
                None => Vec::new(),
            },
        };
        let connect_timeout_secs = bounded(
            "connect_timeout_secs",
            self.connect_timeout_secs
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS),
            1,
            300,
        )?;
        let request_timeout_secs = bounded(
            "request_timeout_secs",
            self.request_timeout_secs
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS),
            1,
            3600,
        )?;
        let max_operations = match self.max_operations {
            None => None,
            Some(n) => Some(bounded("max_operations", n, 1, 100_000)?),
        };
        Ok((
            TargetSettings {
                preset: self.preset,
                base_url,
                auth,
                ca_certificate,
                connect_timeout_secs,
                request_timeout_secs,
                on_existing: self.on_existing,
                max_operations,
            },
            TargetSecrets { secret, headers },
        ))
    }
}

fn bounded(field: &str, value: u32, min: u32, max: u32) -> Result<u32> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(DomainError::invalid(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

pub(crate) fn check_url(field: &str, raw: &str) -> Result<url::Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(DomainError::invalid(field, "enter a URL"));
    }
    if raw.len() > MAX_URL_CHARS {
        return Err(DomainError::invalid(field, "is too long"));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| DomainError::invalid(field, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DomainError::invalid(
            field,
            "must start with https:// or http://",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid(field, "names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            field,
            "must not contain credentials; enter them under authentication",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(DomainError::invalid(
            field,
            "must not contain a query (?…) or a fragment (#…)",
        ));
    }
    Ok(url)
}

/// The SCIM root as Ferry will use it: checked, without a trailing slash, with the
/// preset's path added when only a host was given.
pub fn normalize_base_url(raw: &str, preset: Preset) -> Result<String> {
    let mut url = check_url("base_url", raw)?;
    if url.path() == "/"
        && let Some(path) = preset.default_path()
    {
        url.set_path(path);
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Whether credentials saved with `settings` would go where they went before: the
/// same base URL and, for OAuth2, the same token endpoint (where the client secret
/// goes).
fn same_destination(settings: &TargetSettings, base_url: &str, auth: &TargetAuth) -> bool {
    let token_url = |auth: &TargetAuth| match auth {
        TargetAuth::OAuth2 { token_url, .. } => Some(token_url.clone()),
        _ => None,
    };
    settings.base_url == base_url && token_url(&settings.auth) == token_url(auth)
}

fn validate_headers(headers: Vec<Header>) -> Result<Vec<Header>> {
    if headers.len() > MAX_HEADERS {
        return Err(DomainError::invalid(
            "headers",
            format!("at most {MAX_HEADERS} extra headers"),
        ));
    }
    let mut out: Vec<Header> = Vec::with_capacity(headers.len());
    for (i, header) in headers.into_iter().enumerate() {
        let name = header.name.trim().to_string();
        let field = format!("headers[{i}]");
        if name.is_empty() && header.value.trim().is_empty() {
            continue;
        }
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(DomainError::invalid(
                field,
                format!("{name:?} is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if [
            "authorization",
            "host",
            "content-length",
            "content-type",
            "transfer-encoding",
            "connection",
        ]
        .contains(&lower.as_str())
        {
            return Err(DomainError::invalid(
                field,
                format!("{name} is set by Ferry itself; use the authentication settings"),
            ));
        }
        if out.iter().any(|h| h.name.eq_ignore_ascii_case(&name)) {
            return Err(DomainError::invalid(
                field,
                format!("{name} is given twice"),
            ));
        }
        let value = header.value.trim().to_string();
        if value.chars().any(|c| c.is_control() || !c.is_ascii()) {
            return Err(DomainError::invalid(
                field,
                format!("the value of {name} must be printable ASCII on one line"),
            ));
        }
        out.push(Header { name, value });
    }
    Ok(out)
}

/// A target as stored: the visible settings, the sealed secrets, the last test.
#[derive(Clone, Debug)]
pub struct StoredTarget {
    pub project_id: crate::ids::ProjectId,
    pub role: TargetRole,
    pub settings: TargetSettings,
    pub sealed_secrets: Vec<u8>,
    pub updated_at: DateTime<Utc>,
    pub last_test: Option<ConnectionReport>,
}

/// A target as a browser or API client sees it: secrets only as "set".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetView {
    pub role: TargetRole,
    pub settings: TargetSettings,
    /// Whether a password / token / client secret is stored (never its value).
    pub secret_set: bool,
    /// The names of the extra headers (their values are not shown).
    pub header_names: Vec<String>,
    pub warnings: Vec<String>,
    pub updated_at: DateTime<Utc>,
    pub last_test: Option<ConnectionReport>,
}

impl TargetView {
    pub fn new(stored: StoredTarget, secrets: &TargetSecrets) -> Self {
        Self {
            role: stored.role,
            warnings: stored.settings.warnings(),
            secret_set: secrets.secret.is_some(),
            header_names: secrets.headers.iter().map(|h| h.name.clone()).collect(),
            settings: stored.settings,
            updated_at: stored.updated_at,
            last_test: stored.last_test,
        }
    }
}
