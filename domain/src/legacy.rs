//! The legacy identity provider that checks a password live when the export carried no
//! hash (Okta, Cognito and Entra ID never export them; a directory may withhold them):
//! how Ferry reaches it, the one secret some methods need (sealed, and kept only for
//! the address it was entered for), who is asked about which user, and what a check
//! can answer.

use crate::{DomainError, Result, import::NormalizedUser, scim::target::check_url};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The longest distinguished name or template accepted.
const MAX_DN_CHARS: usize = 1024;
/// Where a template puts the login name (escaped for a DN).
pub const LOGIN_PLACEHOLDER: &str = "{login}";

/// How Ferry asks the legacy identity provider whether a password is right.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LegacySettings {
    /// A simple bind as the user: to the DN the export gave the user (an LDIF export
    /// names each entry's DN), else to `dn_template` with the login name in place of
    /// `{login}`.
    Ldap {
        /// `ldap://host:389` or `ldaps://host:636`.
        url: String,
        #[serde(default)]
        dn_template: Option<String>,
        /// Upgrade an `ldap://` connection with StartTLS before the password is sent.
        #[serde(default)]
        starttls: bool,
    },
    /// OAuth2's resource-owner password grant (Keycloak, Auth0, Entra ID): a token for
    /// the right password, `invalid_grant` for a wrong one. The client secret, if the
    /// client has one, is the connection's secret.
    #[serde(rename = "oauth2_password")]
    OAuth2Password {
        token_url: String,
        client_id: String,
        #[serde(default)]
        scope: String,
    },
    /// Okta's primary authentication, `POST {org_url}/api/v1/authn`.
    Okta { org_url: String },
    /// Cognito's `InitiateAuth` with `USER_PASSWORD_AUTH`. An app client with a
    /// secret needs it as the connection's secret (for the `SECRET_HASH`).
    Cognito {
        region: String,
        client_id: String,
        /// Another address than `https://cognito-idp.{region}.amazonaws.com/`
        /// (a VPC endpoint, or an emulator).
        #[serde(default)]
        endpoint: Option<String>,
    },
}

impl LegacySettings {
    pub fn kind(&self) -> &'static str {
        match self {
            LegacySettings::Ldap { .. } => "ldap",
            LegacySettings::OAuth2Password { .. } => "oauth2_password",
            LegacySettings::Okta { .. } => "okta",
            LegacySettings::Cognito { .. } => "cognito",
        }
    }

    /// The method's name in the verification log.
    pub fn method(&self) -> &'static str {
        match self {
            LegacySettings::Ldap { .. } => "LDAP bind",
            LegacySettings::OAuth2Password { .. } => "OAuth2 password grant",
            LegacySettings::Okta { .. } => "Okta authn",
            LegacySettings::Cognito { .. } => "Cognito USER_PASSWORD_AUTH",
        }
    }

    /// Where the password (and the secret) are sent.
    pub fn destination(&self) -> String {
        match self {
            LegacySettings::Ldap { url, .. } => url.clone(),
            LegacySettings::OAuth2Password { token_url, .. } => token_url.clone(),
            LegacySettings::Okta { org_url } => format!("{org_url}/api/v1/authn"),
            LegacySettings::Cognito {
                region, endpoint, ..
            } => endpoint
                .clone()
                .unwrap_or_else(|| format!("https://cognito-idp.{region}.amazonaws.com/")),
        }
    }

    /// Whether the method can use a secret at all.
    pub fn takes_secret(&self) -> bool {
        matches!(
            self,
            LegacySettings::OAuth2Password { .. } | LegacySettings::Cognito { .. }
        )
    }

    /// Checks every field, says which is wrong, and returns the settings as kept.
    pub fn validate(self) -> Result<Self> {
        Ok(match self {
            LegacySettings::Ldap {
                url,
                dn_template,
                starttls,
            } => {
                let url = check_ldap_url(&url)?;
                if starttls && url.starts_with("ldaps://") {
                    return Err(DomainError::invalid(
                        "starttls",
                        "an ldaps:// address is encrypted already; switch StartTLS off",
                    ));
                }
                let dn_template = match dn_template.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(template) => {
                        if template.chars().count() > MAX_DN_CHARS
                            || template.chars().any(char::is_control)
                        {
                            return Err(DomainError::invalid(
                                "dn_template",
                                "must be one line of at most 1024 characters",
                            ));
                        }
                        if template.matches(LOGIN_PLACEHOLDER).count() != 1
                            || !template.contains('=')
                        {
                            return Err(DomainError::invalid(
                                "dn_template",
                                "write a DN with {login} once, e.g. uid={login},ou=people,dc=example,dc=org",
                            ));
                        }
                        Some(template.to_string())
                    }
                };
                LegacySettings::Ldap {
                    url,
                    dn_template,
                    starttls,
                }
            }
            LegacySettings::OAuth2Password {
                token_url,
                client_id,
                scope,
            } => LegacySettings::OAuth2Password {
                token_url: check_url("token_url", &token_url)?.to_string(),
                client_id: required("client_id", &client_id, "the OAuth2 client id")?,
                scope: scope.split_whitespace().collect::<Vec<_>>().join(" "),
            },
            LegacySettings::Okta { org_url } => {
                let url = check_url("org_url", &org_url)?;
                if url.path() != "/" {
                    return Err(DomainError::invalid(
                        "org_url",
                        "enter only the organization's address, e.g. https://example.okta.com",
                    ));
                }
                LegacySettings::Okta {
                    org_url: url.as_str().trim_end_matches('/').to_string(),
                }
            }
            LegacySettings::Cognito {
                region,
                client_id,
                endpoint,
            } => {
                let region = region.trim().to_string();
                let parts: Vec<&str> = region.split('-').collect();
                let region_like = parts.len() >= 3
                    && parts.iter().all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    })
                    && parts
                        .last()
                        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
                if !region_like {
                    return Err(DomainError::invalid(
                        "region",
                        "enter an AWS region such as eu-west-1",
                    ));
                }
                let endpoint = match endpoint.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(raw) => Some(check_url("endpoint", raw)?.to_string()),
                };
                LegacySettings::Cognito {
                    region,
                    client_id: required("client_id", &client_id, "the app client id")?,
                    endpoint,
                }
            }
        })
    }
}

fn required(field: &str, value: &str, what: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(field, format!("enter {what}")));
    }
    if value.len() > 512 || value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must be one line of at most 512 characters",
        ));
    }
    Ok(value.to_string())
}

fn check_ldap_url(raw: &str) -> Result<String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw).map_err(|_| {
        DomainError::invalid("url", "enter an address such as ldaps://ldap.example.org")
    })?;
    if !matches!(url.scheme(), "ldap" | "ldaps") {
        return Err(DomainError::invalid(
            "url",
            "must start with ldaps:// or ldap://",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DomainError::invalid("url", "names no host"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(DomainError::invalid(
            "url",
            "enter only the scheme, host and port, e.g. ldaps://ldap.example.org:636",
        ));
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://{}{port}",
        url.scheme(),
        url.host_str().unwrap_or_default().to_ascii_lowercase()
    ))
}

/// The connection as an administrator saves it. `secret`: omitted keeps the stored
/// one (for the same method at the same address), an empty string removes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyInput {
    pub settings: LegacySettings,
    #[serde(default)]
    pub secret: Option<String>,
}

/// What the secret becomes when the input is saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretChange {
    Keep,
    Remove,
    Set(String),
}

impl LegacyInput {
    /// The settings to keep and what becomes of the secret, given what is stored.
    /// A stored secret follows neither another method nor another address.
    pub fn validate(
        self,
        current: Option<&StoredLegacy>,
    ) -> Result<(LegacySettings, SecretChange)> {
        let settings = self.settings.validate()?;
        let change = match self.secret {
            Some(secret) if secret.is_empty() => SecretChange::Remove,
            Some(secret) => {
                if !settings.takes_secret() {
                    return Err(DomainError::invalid(
                        "secret",
                        format!("{} takes no secret", settings.method()),
                    ));
                }
                if secret.len() > 4096 || secret.chars().any(char::is_control) {
                    return Err(DomainError::invalid(
                        "secret",
                        "must be one line of at most 4096 characters",
                    ));
                }
                SecretChange::Set(secret)
            }
            None => match current {
                Some(stored)
                    if stored.sealed_secret.is_some()
                        && (stored.settings.kind() != settings.kind()
                            || stored.settings.destination() != settings.destination()) =>
                {
                    if settings.takes_secret() {
                        return Err(DomainError::invalid(
                            "secret",
                            "enter the secret again: it would go to a new address (an empty secret saves the connection without one)",
                        ));
                    }
                    SecretChange::Remove
                }
                _ => SecretChange::Keep,
            },
        };
        Ok((settings, change))
    }
}

/// The last connection test's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyTest {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// What happened, in words (never a password or a secret).
    pub message: String,
}

/// A project's legacy connection as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLegacy {
    pub settings: LegacySettings,
    pub sealed_secret: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
    pub last_test: Option<LegacyTest>,
}

/// The connection as the Passwords page shows it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LegacyView {
    pub settings: LegacySettings,
    pub has_secret: bool,
    /// Where passwords are sent.
    pub destination: String,
    pub method: String,
    pub updated_at: DateTime<Utc>,
    pub last_test: Option<LegacyTest>,
}

impl From<&StoredLegacy> for LegacyView {
    fn from(stored: &StoredLegacy) -> Self {
        LegacyView {
            settings: stored.settings.clone(),
            has_secret: stored.sealed_secret.is_some(),
            destination: stored.settings.destination(),
            method: stored.settings.method().to_string(),
            updated_at: stored.updated_at,
            last_test: stored.last_test.clone(),
        }
    }
}

/// Who the legacy identity provider is asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyLogin {
    /// The user's login name at the legacy provider.
    pub login: String,
    /// The user's DN, where the export gave one.
    pub dn: Option<String>,
}

impl LegacyLogin {
    /// The record's own login name (the legacy provider knows the user by it, not by
    /// what the target's login page was given), else the name typed.
    pub fn of(record: &NormalizedUser, typed: &str) -> Self {
        let login = record
            .username
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(typed.trim())
            .to_string();
        let dn = record
            .attributes
            .get("dn")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        LegacyLogin { login, dn }
    }

    /// The DN a simple bind uses: the template's when one is set (the directory's
    /// layout may have changed since the export), else the export's.
    pub fn bind_dn(&self, template: Option<&str>) -> Option<String> {
        match template {
            Some(template) => {
                Some(template.replace(LOGIN_PLACEHOLDER, &escape_dn_value(&self.login)))
            }
            None => self.dn.clone(),
        }
    }
}

/// Escapes a value for an RDN (RFC 4514 §2.4), so a login name cannot add components.
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// What the legacy identity provider said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyOutcome {
    /// The password is right (also when the provider would next ask for a second
    /// factor or a new password: the password itself was accepted).
    Valid,
    /// The provider refused the user name and password.
    Invalid,
    /// No answer that says either (unreachable, misconfigured, throttled): why, in
    /// words that quote no value.
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_cannot_add_components_to_a_dn() {
        let login = LegacyLogin {
            login: "ada,ou=admins".into(),
            dn: Some("uid=ada,ou=people,dc=example,dc=org".into()),
        };
        assert_eq!(
            login.bind_dn(Some("uid={login},ou=people,dc=example,dc=org")),
            Some("uid=ada\\,ou\\=admins,ou=people,dc=example,dc=org".into())
        );
        assert_eq!(login.bind_dn(None), login.dn);
        assert_eq!(escape_dn_value(" #a b "), "\\ #a b\\ ");
        assert_eq!(escape_dn_value("#x"), "\\#x");
    }

    #[test]
    fn settings_say_which_field_is_wrong() {
        let field = |s: LegacySettings| match s.validate() {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(LegacySettings::Ldap {
                url: "http://ldap".into(),
                dn_template: None,
                starttls: false
            }),
            "url"
        );
        assert_eq!(
            field(LegacySettings::Ldap {
                url: "ldaps://ldap".into(),
                dn_template: None,
                starttls: true
            }),
            "starttls"
        );
        assert_eq!(
            field(LegacySettings::Ldap {
                url: "ldap://ldap:389".into(),
                dn_template: Some("ou=people".into()),
                starttls: false
            }),
            "dn_template"
        );
        assert_eq!(
            field(LegacySettings::Okta {
                org_url: "https://x.okta.com/api/v1/authn".into()
            }),
            "org_url"
        );
        assert_eq!(
            field(LegacySettings::Cognito {
                region: "europe".into(),
                client_id: "c".into(),
                endpoint: None
            }),
            "region"
        );
        assert_eq!(
            field(LegacySettings::OAuth2Password {
                token_url: "https://idp.example/token".into(),
                client_id: " ".into(),
                scope: String::new()
            }),
            "client_id"
        );
        let ok = LegacySettings::Ldap {
            url: "LDAP://Ldap.Example.org:389/".into(),
            dn_template: Some(" uid={login},dc=example ".into()),
            starttls: true,
        }
        .validate()
        .unwrap();
        assert_eq!(ok.destination(), "ldap://ldap.example.org:389");
    }

    #[test]
    fn a_stored_secret_follows_no_other_address() {
        let settings = LegacySettings::OAuth2Password {
            token_url: "https://idp.example/token".into(),
            client_id: "ferry".into(),
            scope: String::new(),
        };
        let stored = StoredLegacy {
            settings: settings.clone(),
            sealed_secret: Some(vec![1]),
            updated_at: DateTime::<Utc>::MIN_UTC,
            last_test: None,
        };
        let input = |settings: LegacySettings, secret: Option<&str>| LegacyInput {
            settings,
            secret: secret.map(str::to_string),
        };
        let change = |i: LegacyInput| i.validate(Some(&stored)).unwrap().1;
        assert_eq!(change(input(settings.clone(), None)), SecretChange::Keep);
        assert_eq!(
            change(input(settings.clone(), Some(""))),
            SecretChange::Remove
        );
        let moved = LegacySettings::OAuth2Password {
            token_url: "https://elsewhere.example/token".into(),
            client_id: "ferry".into(),
            scope: String::new(),
        };
        assert!(input(moved.clone(), None).validate(Some(&stored)).is_err());
        assert_eq!(change(input(moved, Some(""))), SecretChange::Remove);
        let okta = LegacySettings::Okta {
            org_url: "https://x.okta.com".into(),
        };
        assert!(input(okta.clone(), Some("s")).validate(None).is_err());
        assert_eq!(change(input(okta, None)), SecretChange::Remove);
    }
}
