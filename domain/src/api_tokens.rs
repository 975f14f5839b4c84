//! API tokens for automation: named, role-limited, shown once, stored only as a hash.

use crate::{
    DomainError, Result,
    ids::{AccountId, ApiTokenId},
    roles::Role,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Every token starts with this, so secret scanners and people recognize it.
pub const TOKEN_PREFIX: &str = "ferry_";

/// A token as listed: never the secret itself, only its first characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub hint: String,
    /// The most the token may do; it never exceeds its creator's current role.
    pub role: Role,
    pub created_by: AccountId,
    pub created_by_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token about to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiToken {
    pub id: ApiTokenId,
    pub name: String,
    pub hint: String,
    pub secret_hash: String,
    pub role: Role,
    pub created_by: AccountId,
    pub created_at: DateTime<Utc>,
}

/// What the creator sees exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedApiToken {
    pub token: ApiToken,
    pub secret: String,
}

pub fn normalize_token_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid(
            "name",
            "name the token after what uses it",
        ));
    }
    if name.chars().count() > 80 {
        return Err(DomainError::invalid(
            "name",
            "must be at most 80 characters",
        ));
    }
    Ok(name.to_string())
}

/// The role a token acts with: the lower of its own role and its creator's current one,
/// so demoting a person demotes their tokens too.
pub fn effective_role(token_role: Role, creator_role: Role) -> Role {
    token_role.min(creator_role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_outranks_its_creator() {
        assert_eq!(effective_role(Role::Owner, Role::Admin), Role::Admin);
        assert_eq!(effective_role(Role::Support, Role::Owner), Role::Support);
    }

    #[test]
    fn token_name_is_required() {
        assert_eq!(normalize_token_name(" ").unwrap_err().field(), Some("name"));
        assert_eq!(normalize_token_name(" ci ").unwrap(), "ci");
    }
}
