//! Migration projects: what they are, how their fields are validated, and the stages
//! of the migration journey a project page offers.

use crate::{DomainError, Result, ids::ProjectId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// The legacy identity provider a project migrates from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Auth0,
    Okta,
    Cognito,
    Keycloak,
    Firebase,
    Ldap,
    EntraId,
    Csv,
    Json,
}

impl SourceKind {
    pub const ALL: [SourceKind; 9] = [
        SourceKind::Auth0,
        SourceKind::Okta,
        SourceKind::Cognito,
        SourceKind::Keycloak,
        SourceKind::Firebase,
        SourceKind::Ldap,
        SourceKind::EntraId,
        SourceKind::Csv,
        SourceKind::Json,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth0 => "auth0",
            Self::Okta => "okta",
            Self::Cognito => "cognito",
            Self::Keycloak => "keycloak",
            Self::Firebase => "firebase",
            Self::Ldap => "ldap",
            Self::EntraId => "entra_id",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Auth0 => "Auth0",
            Self::Okta => "Okta",
            Self::Cognito => "AWS Cognito",
            Self::Keycloak => "Keycloak",
            Self::Firebase => "Firebase Authentication",
            Self::Ldap => "LDAP / Active Directory (LDIF)",
            Self::EntraId => "Microsoft Entra ID",
            Self::Csv => "Generic CSV",
            Self::Json => "Generic JSON / NDJSON",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                DomainError::invalid(
                    "source_kind",
                    format!("unknown source {s:?}; expected one of {}", known.join(", ")),
                )
            })
    }
}

/// A migration project. Every later object (uploads, mappings, runs) belongs to one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub source_kind: SourceKind,
    pub description: String,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set once the project's imported data was purged: read only from then on.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
}

/// The editable fields of a project, validated and normalized by [`ProjectDraft::new`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDraft {
    pub name: String,
    pub source_kind: SourceKind,
    pub description: String,
}

impl ProjectDraft {
    pub fn new(name: &str, source_kind: &str, description: &str) -> Result<Self> {
        Ok(Self {
            name: normalize_name(name)?,
            source_kind: SourceKind::parse(source_kind)?,
            description: normalize_description(description)?,
        })
    }
}

/// A partial edit: fields left `None` keep their current value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub source_kind: Option<String>,
    pub description: Option<String>,
}

impl ProjectChanges {
    /// The project as it would be after the edit, validated.
    pub fn apply_to(&self, project: &Project) -> Result<ProjectDraft> {
        ProjectDraft::new(
            self.name.as_deref().unwrap_or(&project.name),
            self.source_kind
                .as_deref()
                .unwrap_or(project.source_kind.as_str()),
            self.description.as_deref().unwrap_or(&project.description),
        )
    }
}

pub fn normalize_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("name", "enter a project name"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

pub fn normalize_description(raw: &str) -> Result<String> {
    let description = raw.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(DomainError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description.to_string())
}

/// Which projects a listing shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFilter {
    pub include_archived: bool,
}

/// A stage of the migration journey (DESIGN §1) that the project page links to. Only
/// stages that exist in Ferry are listed here, so the navigation never leads nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// The project itself: name, source, description, support staff.
    Project,
    /// The SCIM targets users move into: settings, connection test, discovery.
    Target,
    /// The exports uploaded to the project and what reading them found.
    Uploads,
    /// What the uploaded users look like: the assessment report.
    Assessment,
    /// Which users move (user types, password strategy) and how long it would take.
    Goals,
    /// How source attributes become SCIM attributes: rules, preview, impact, versions.
    Mapping,
    /// The written plan: requirements, experiences, acceptable impact, risks, timeline
    /// with the suggested window, versions and approval.
    Plan,
    /// Test runs, the real run and its window, live progress, failures, rollbacks.
    Runs,
    /// Passwords following the users: the verification service, the login script,
    /// the rehearsal, and the coverage.
    Passwords,
    /// Support staff's queue of failed users: fix, retry, skip, discuss.
    Review,
    /// The final report: what moved, what did not and why, passwords, reconciliation,
    /// the timeline and approvals.
    Report,
    /// What happened in this project, from the audit log.
    Activity,
}

impl Stage {
    /// In the order a migration walks them: the export first, then where it goes.
    pub const AVAILABLE: [Stage; 12] = [
        Stage::Project,
        Stage::Uploads,
        Stage::Assessment,
        Stage::Target,
        Stage::Goals,
        Stage::Mapping,
        Stage::Plan,
        Stage::Runs,
        Stage::Passwords,
        Stage::Review,
        Stage::Report,
        Stage::Activity,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::Project => "Project",
            Stage::Target => "Target",
            Stage::Uploads => "Uploads",
            Stage::Assessment => "Assessment",
            Stage::Goals => "Goals",
            Stage::Mapping => "Mapping",
            Stage::Plan => "Plan",
            Stage::Runs => "Runs",
            Stage::Passwords => "Passwords",
            Stage::Review => "Review",
            Stage::Report => "Report",
            Stage::Activity => "Activity",
        }
    }

    /// Path below `/projects/{id}`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Stage::Project => "",
            Stage::Target => "/target",
            Stage::Uploads => "/uploads",
            Stage::Assessment => "/assessment",
            Stage::Goals => "/goals",
            Stage::Mapping => "/mapping",
            Stage::Runs => "/runs",
            Stage::Passwords => "/passwords",
            Stage::Plan => "/plan",
            Stage::Report => "/report",
            Stage::Review => "/review",
            Stage::Activity => "/activity",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_is_trimmed_and_validated() {
        let draft = ProjectDraft::new("  Acme  ", "Auth0", " move staff ").unwrap();
        assert_eq!(draft.name, "Acme");
        assert_eq!(draft.source_kind, SourceKind::Auth0);
        assert_eq!(draft.description, "move staff");
    }

    #[test]
    fn bad_drafts_name_their_field() {
        assert_eq!(
            ProjectDraft::new(" ", "okta", "").unwrap_err().field(),
            Some("name")
        );
        assert_eq!(
            ProjectDraft::new("x", "ping", "").unwrap_err().field(),
            Some("source_kind")
        );
        assert_eq!(
            ProjectDraft::new("x", "okta", &"d".repeat(MAX_DESCRIPTION_CHARS + 1))
                .unwrap_err()
                .field(),
            Some("description")
        );
        assert!(ProjectDraft::new(&"n".repeat(MAX_NAME_CHARS + 1), "okta", "").is_err());
    }

    #[test]
    fn every_source_kind_round_trips() {
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::parse(kind.as_str()).unwrap(), kind);
        }
    }
}
