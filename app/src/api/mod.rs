//! Server functions: each takes the service from the request context, calls one
//! use-case and converts the error. Endpoints are fixed under `/sfn/` so that the
//! server's role-matrix test can name every one of them.

pub mod assessment;
pub mod audit;
pub mod auth;
pub mod goals;
pub mod members;
pub mod passwords;
pub mod plan;
pub mod projects;
pub mod review;
pub mod runs;
pub mod targets;
pub mod tokens;
pub mod uploads;

use serde::{Deserialize, Serialize};

/// A one-time link for a member to set a password, shown once to the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteLink {
    pub email: String,
    pub link: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(feature = "ssr")]
impl InviteLink {
    fn from_invitation(public_url: &str, invitation: domain::service::Invitation) -> Self {
        Self {
            email: invitation.account.email,
            link: format!("{public_url}/invite/{}", invitation.token),
            expires_at: invitation.expires_at,
        }
    }
}
