//! The one error type of the domain layer and its mapping to HTTP status codes.

use serde::{Deserialize, Serialize};

/// Every failure a use-case can report. Messages are written for the person who caused
/// them: they say what was wrong and where (the `field` of a form or request body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("your role may not {0}")]
    Forbidden(String),
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    /// A storage or infrastructure failure. The text is for the server log only; callers
    /// that answer a client show [`DomainError::public`] instead.
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status that answers this error: the single place where domain errors
    /// become status codes, shared by the REST API and the server functions.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid { .. } => 422,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
            Self::Throttled { .. } => 429,
            Self::Internal(_) => 500,
        }
    }

    /// A short machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::Throttled { .. } => "throttled",
            Self::Internal(_) => "internal",
        }
    }

    /// The error as it may be shown outside the server: internal details are dropped.
    pub fn public(&self) -> Self {
        match self {
            Self::Internal(_) => Self::Internal(String::new()),
            other => other.clone(),
        }
    }

    /// The form field this error belongs to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The message without the field prefix, for showing beside the field.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_leave_the_server() {
        let err = DomainError::Internal("connection refused to db.internal:5432".into());
        assert_eq!(err.public(), DomainError::Internal(String::new()));
        assert_eq!(err.to_string(), "internal error");
    }

    #[test]
    fn every_error_has_a_status() {
        assert_eq!(DomainError::invalid("name", "empty").http_status(), 422);
        assert_eq!(DomainError::Forbidden("x".into()).http_status(), 403);
        assert_eq!(DomainError::Unauthenticated("x".into()).http_status(), 401);
        assert_eq!(
            DomainError::Throttled {
                retry_after_secs: 3
            }
            .http_status(),
            429
        );
    }
}
