//! The audit log: who did what to which object, when and from where.

use crate::{
    DomainError, Result,
    accounts::{Actor, Channel},
    ids::{AccountId, ProjectId},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! audit_actions {
    ($($variant:ident => $code:literal, $label:literal;)*) => {
        /// Every state-changing action Ferry records.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum AuditAction { $($variant,)* }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// Stable code stored in the database and returned by the API.
            pub fn code(self) -> &'static str {
                match self { $(AuditAction::$variant => $code,)* }
            }

            /// Wording for the audit page.
            pub fn label(self) -> &'static str {
                match self { $(AuditAction::$variant => $label,)* }
            }

            pub fn parse(code: &str) -> Result<Self> {
                match code {
                    $($code => Ok(AuditAction::$variant),)*
                    other => Err(DomainError::Internal(format!("unknown audit action {other:?}"))),
                }
            }
        }
    };
}

audit_actions! {
    SetupCompleted => "setup.completed", "created the owner account";
    SignedIn => "session.signed_in", "signed in";
    SignInFailed => "session.sign_in_failed", "failed to sign in";
    SignedOut => "session.signed_out", "signed out";
    PasswordChanged => "account.password_changed", "changed their password";
    MemberInvited => "member.invited", "invited a member";
    InviteReissued => "member.invite_reissued", "issued a new invite link";
    InviteAccepted => "member.invite_accepted", "accepted an invite";
    MemberRoleChanged => "member.role_changed", "changed a member's role";
    MemberDisabled => "member.disabled", "disabled a member";
    MemberEnabled => "member.enabled", "re-enabled a member";
    ProjectCreated => "project.created", "created a project";
    ProjectUpdated => "project.updated", "edited a project";
    ProjectArchived => "project.archived", "archived a project";
    ProjectRestored => "project.restored", "restored a project";
    SupportAssigned => "project.support_assigned", "assigned support staff";
    SupportUnassigned => "project.support_unassigned", "removed support staff";
    ApiTokenCreated => "api_token.created", "created an API token";
    ApiTokenRevoked => "api_token.revoked", "revoked an API token";
    UploadStored => "upload.stored", "uploaded an export";
    UploadRemoved => "upload.removed", "removed an upload";
    ProjectSecretSet => "project.secret_set", "saved a project secret";
    AssessmentStarted => "assessment.started", "started the assessment";
    AttributeClassSet => "assessment.class_set", "changed an attribute's class";
    AssessmentValueRevealed => "assessment.value_revealed", "revealed an example value";
    TargetSaved => "target.saved", "saved a target connection";
    TargetDeleted => "target.deleted", "removed a target connection";
    TargetTested => "target.tested", "tested a target connection";
    MappingSaved => "mapping.saved", "saved a mapping version";
    MappingPreviewed => "mapping.previewed", "previewed mapped records";
    ImpactStarted => "mapping.impact_started", "computed a mapping's impact";
    UserTypesSaved => "segments.saved", "saved the user types";
    RunCreated => "job.created", "created a run";
    RunStateChanged => "job.state_changed", "changed a run's state";
    RunRescheduled => "job.rescheduled", "gave a run a new window";
    CrosswalkDownloaded => "job.crosswalk_downloaded", "downloaded a run's crosswalk";
    ReviewActed => "review.acted", "acted on failed records";
    RecordCorrected => "review.corrected", "corrected a record";
    ReviewRetried => "review.retried", "retried failed records";
    ReviewExported => "review.exported", "exported the review queue";
    CorrectionsImported => "review.corrections_imported", "imported corrections";
    PersonalDataGranted => "member.personal_data_granted", "let a member see personal data";
    PersonalDataRevoked => "member.personal_data_revoked", "took back a member's view of personal data";
    PasswordServiceSaved => "passwords.service_saved", "saved the password verification service";
    PasswordServiceSecretRotated => "passwords.secret_rotated", "made a new client secret for the password service";
    PasswordServiceKeySet => "passwords.key_set", "made a static key for the password service";
    PasswordServiceKeyRevoked => "passwords.key_revoked", "removed the password service's static key";
    PasswordRehearsed => "passwords.rehearsed", "rehearsed a silent password migration";
    WavePlanSaved => "passwords.wave_plan_saved", "saved the plan of invitation waves";
    LegacyConnectionSaved => "passwords.legacy_saved", "saved the legacy identity provider's connection";
    LegacyConnectionDeleted => "passwords.legacy_deleted", "removed the legacy identity provider's connection";
    LegacyConnectionTested => "passwords.legacy_tested", "tested the legacy identity provider's connection";
    PlanSaved => "plan.saved", "saved a version of the migration plan";
    PlanApproved => "plan.approved", "approved a version of the migration plan";
    RetentionSaved => "data.retention_saved", "set how long the project's data is kept";
    ProjectPurged => "data.project_purged", "purged the project's imported data";
    UploadPurged => "data.upload_purged", "purged an upload";
}

/// The kind of object an action touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Account,
    Project,
    ApiToken,
    Upload,
    Run,
    /// A legacy user of a project (its source id).
    Record,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Project => "project",
            Self::ApiToken => "api_token",
            Self::Upload => "upload",
            Self::Run => "job",
            Self::Record => "record",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "account" => Ok(Self::Account),
            "project" => Ok(Self::Project),
            "api_token" => Ok(Self::ApiToken),
            "job" => Ok(Self::Run),
            "upload" => Ok(Self::Upload),
            "record" => Ok(Self::Record),
            other => Err(DomainError::Internal(format!(
                "unknown object kind {other:?}"
            ))),
        }
    }
}

/// An entry about to be written. Details name Ferry's own objects (project names,
/// members' e-mail addresses, token names), never personal data from exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    pub actor: Option<AccountId>,
    pub channel: String,
    pub action: AuditAction,
    pub object_kind: ObjectKind,
    pub object_id: String,
    pub project_id: Option<ProjectId>,
    pub address: Option<String>,
    pub detail: String,
}

impl NewAuditEntry {
    /// An entry for an action taken by a signed-in actor.
    pub fn by(
        actor: &Actor,
        at: DateTime<Utc>,
        action: AuditAction,
        object_kind: ObjectKind,
        object_id: impl ToString,
    ) -> Self {
        Self {
            at,
            actor: Some(actor.account_id),
            channel: channel_label(actor.channel),
            action,
            object_kind,
            object_id: object_id.to_string(),
            project_id: None,
            address: actor.address.clone(),
            detail: String::new(),
        }
    }

    /// An entry for an action taken before anyone is signed in (setup, sign-in, invites).
    pub fn anonymous(
        address: Option<String>,
        at: DateTime<Utc>,
        action: AuditAction,
        object_kind: ObjectKind,
        object_id: impl ToString,
    ) -> Self {
        Self {
            at,
            actor: None,
            channel: "web".into(),
            action,
            object_kind,
            object_id: object_id.to_string(),
            project_id: None,
            address,
            detail: String::new(),
        }
    }

    /// An entry for an action Ferry took on its own, by a plan someone made (an
    /// invitation wave started by its plan).
    pub fn scheduled(
        at: DateTime<Utc>,
        action: AuditAction,
        object_kind: ObjectKind,
        object_id: impl ToString,
    ) -> Self {
        Self {
            at,
            actor: None,
            channel: "scheduler".into(),
            action,
            object_kind,
            object_id: object_id.to_string(),
            project_id: None,
            address: None,
            detail: String::new(),
        }
    }

    pub fn in_project(mut self, project: ProjectId) -> Self {
        self.project_id = Some(project);
        self
    }

    pub fn with_actor(mut self, actor: AccountId) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

fn channel_label(channel: Channel) -> String {
    match channel {
        Channel::Web => "web".into(),
        Channel::Api(token) => format!("api:{token}"),
    }
}

/// A recorded entry, as listed on the audit page and by the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Position in the log; larger is newer.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Option<AccountId>,
    /// The actor's e-mail at listing time, for display.
    pub actor_email: Option<String>,
    /// `web`, or `api:` followed by the API token's id.
    pub channel: String,
    pub action: AuditAction,
    pub object_kind: ObjectKind,
    pub object_id: String,
    pub project_id: Option<ProjectId>,
    pub address: Option<String>,
    pub detail: String,
}

/// A request for one page of the log, newest first. Keyset paging (`before` a sequence
/// number) keeps every page as fast as the first one, however long the log grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub before: Option<i64>,
    pub project: Option<ProjectId>,
    pub limit: u32,
}

impl AuditQuery {
    pub fn new(before: Option<i64>, project: Option<ProjectId>, limit: Option<u32>) -> Self {
        Self {
            before,
            project,
            limit: crate::pagination::PageRequest::new(None, limit).limit,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to get the next (older) page; `None` at the end of the log.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_codes_are_unique_and_round_trip() {
        let mut codes: Vec<&str> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.code()).unwrap(), *action);
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len());
    }
}
