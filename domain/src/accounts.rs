//! Accounts of the people who use Ferry, who is acting on a request, and the rules for
//! e-mail addresses, display names and passwords.

use crate::{
    DomainError, Result,
    ids::{AccountId, ApiTokenId},
    roles::{Permission, Role},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The shortest password Ferry accepts. Long passphrases beat composition rules.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Argon2 cost grows with input; a cap keeps a sign-in request from becoming a DoS.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Added by the owner; the person has not yet set a password with the invite link.
    Invited,
    Active,
    Disabled,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "invited" => Ok(Self::Invited),
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            other => Err(DomainError::Internal(format!(
                "unknown account status {other:?}"
            ))),
        }
    }
}

/// A member of the organization. Never carries the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// A new account as the store receives it: already validated and normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub status: AccountStatus,
    pub password_hash: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How a request reached Ferry, recorded in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "token")]
pub enum Channel {
    /// The browser, with a session cookie.
    Web,
    /// The REST API, with the given token.
    Api(ApiTokenId),
}

/// Who is making a request, resolved from a session or an API token by the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub account_id: AccountId,
    pub role: Role,
    pub channel: Channel,
    /// The client's network address, for the audit log.
    pub address: Option<String>,
}

impl Actor {
    /// Fails with `Forbidden` unless the actor's role grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(permission.describe().to_string()))
        }
    }
}

/// Where an anonymous request came from (sign-in, setup, invites).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestOrigin {
    pub address: Option<String>,
}

/// Trims and lower-cases an e-mail address and checks its shape. Deliverability is not
/// checked: Ferry sends no mail; the address is the sign-in name.
pub fn normalize_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let invalid = |message: &str| Err(DomainError::invalid("email", message));
    if email.is_empty() {
        return invalid("enter an e-mail address");
    }
    if email.len() > 254 {
        return invalid("must be at most 254 characters");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid("must contain @, as in name@example.com");
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return invalid("must look like name@example.com");
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return invalid("the part after @ must be a domain such as example.com");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("must not contain spaces");
    }
    Ok(email)
}

/// Trims a display name and checks its length.
pub fn normalize_display_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("display_name", "enter a name"));
    }
    if name.chars().count() > 100 {
        return Err(DomainError::invalid(
            "display_name",
            "must be at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "display_name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// Checks a new password: long enough, not absurdly long, not the e-mail address.
pub fn check_new_password(password: &str, email: &str) -> Result<()> {
    let field = "password";
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(DomainError::invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    if password.trim().to_lowercase() == email {
        return Err(DomainError::invalid(
            field,
            "must not be your e-mail address",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
    }

    #[test]
    fn bad_emails_name_the_field_and_the_problem() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@@b.com",
        ] {
            let err = normalize_email(bad).unwrap_err();
            assert_eq!(err.field(), Some("email"), "{bad:?}");
        }
    }

    #[test]
    fn passwords_follow_the_policy() {
        assert!(check_new_password("short", "a@b.co").is_err());
        assert!(check_new_password("correct horse battery", "a@b.co").is_ok());
        assert!(check_new_password("ada@example.com", "ada@example.com").is_err());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1), "a@b.co").is_err());
    }

    #[test]
    fn actor_checks_the_matrix() {
        let actor = Actor {
            account_id: AccountId(uuid::Uuid::nil()),
            role: Role::Support,
            channel: Channel::Web,
            address: None,
        };
        assert!(actor.require(Permission::ViewProjects).is_ok());
        let err = actor.require(Permission::ManageProjects).unwrap_err();
        assert_eq!(err.to_string(), "your role may not manage projects");
    }

    #[test]
    fn display_names_are_bounded() {
        assert!(normalize_display_name("  ").is_err());
        assert_eq!(normalize_display_name(" Ada ").unwrap(), "Ada");
        assert!(normalize_display_name(&"a".repeat(101)).is_err());
    }
}
