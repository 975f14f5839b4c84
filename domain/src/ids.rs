//! Typed identifiers, so an account id can never be passed where a project id belongs.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| crate::DomainError::NotFound(format!("{} {s:?}", $what)))
            }
        }
    };
}

id_type!(
    /// A person who signs in to Ferry.
    AccountId, "account"
);
id_type!(
    /// A migration project.
    ProjectId, "project"
);
id_type!(
    /// An API token used by automation.
    ApiTokenId, "API token"
);
id_type!(
    /// An uploaded export.
    UploadId, "upload"
);
id_type!(
    /// A run: a test run, a real run, a retry, a rollback or an invite wave.
    RunId, "run"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_id_reads_as_not_found() {
        let err = "not-a-uuid".parse::<ProjectId>().unwrap_err();
        assert_eq!(err.http_status(), 404);
    }

    #[test]
    fn id_round_trips_through_text() {
        let id = ProjectId(Uuid::from_u128(42));
        assert_eq!(id.to_string().parse::<ProjectId>().unwrap(), id);
    }
}
