//! The error every server function returns: a domain error the page can show beside
//! the right field, or a transport failure (network, decoding).

use domain::DomainError;
use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AppError {
    #[error(transparent)]
    Domain(DomainError),
    #[error("could not reach Ferry: {0}")]
    Transport(String),
}

impl AppError {
    /// The message for a given form field, if this error is about it.
    pub fn for_field(&self, field: &str) -> Option<String> {
        match self {
            AppError::Domain(err) if err.field() == Some(field) => Some(err.message()),
            _ => None,
        }
    }

    /// The message for the form as a whole (errors not tied to a field).
    pub fn general(&self) -> Option<String> {
        match self {
            AppError::Domain(err) if err.field().is_some() => None,
            AppError::Domain(DomainError::Internal(_)) => {
                Some("something went wrong on the server; the error is in its log".into())
            }
            other => Some(other.to_string()),
        }
    }

    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, AppError::Domain(DomainError::Unauthenticated(_)))
    }
}

impl From<DomainError> for AppError {
    fn from(err: DomainError) -> Self {
        AppError::Domain(err)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}
