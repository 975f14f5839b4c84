//! Ferry's use-cases: the service, its ports and policy, and one file per concern
//! (access, members, projects, tokens, uploads, assessment, mappings, plan, targets,
//! runs). Server functions and REST handlers call exactly one of these methods each;
//! the permission check happens here, once, for both.

use crate::{
    DomainError, Result,
    accounts::{
        Account, AccountStatus, Actor, Channel, NewAccount, RequestOrigin, check_new_password,
        normalize_display_name, normalize_email,
    },
    api_tokens::{
        ApiToken, IssuedApiToken, NewApiToken, TOKEN_PREFIX, effective_role, normalize_token_name,
    },
    assess::{
        AssessOptions, AssessmentStatus, AssessmentView, Check, Finding, Report,
        classify::DataClass, heatmap,
    },
    audit::{AuditAction, AuditPage, AuditQuery, NewAuditEntry, ObjectKind},
    ids::{AccountId, ApiTokenId, ProjectId, UploadId},
    pagination::{Page, PageRequest},
    ports::{Clock, PasswordHasher, Secrets, Store, Workers},
    projects::{Project, ProjectChanges, ProjectDraft, ProjectFilter},
    roles::{Permission, Role},
    throttle::{ThrottlePolicy, ThrottleScope},
    uploads::{NewUpload, StoredError, Upload},
};
mod access;
mod assessment;
mod goals;
mod journey;
mod legacy;
mod mappings;
mod members;
mod passwords;
mod plan;
mod projects;
mod report;
mod retention;
mod review;
mod runs;
mod targets;
mod tokens;
mod uploads;

pub use goals::{
    COUNT_SAMPLE, Estimate, GoalsView, ImpactView, PREVIEW_RECORDS, Preview, PreviewRecord,
    RulePreview, UserTypeEstimate, UserTypesView,
};
pub use mappings::{MAX_RULES, MappingView};
pub use passwords::{
    AccessToken, Pending, Receipt, Rehearsal, RehearsalInput, RehearsalStep, ServiceCall,
    ServiceRefusal, StatusAnswer, TokenRefusal,
};
pub use plan::{AutoMilestone, PlanInput, PlanUserType, PlanView};
pub use report::{FinalReport, ReconcileResult};
pub use review::{
    COUNTED_UP_TO, CorrectionPreview, MAX_QUEUE_PAGE, QueueView, RecordReview, ReviewExport,
};
pub use runs::{Control, MAX_RECORDS_PAGE, RecordsPage, RetryPlan, RunView, WindowView, advance};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Lifetimes and limits of the sign-in machinery.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub session_ttl: Duration,
    pub invite_ttl: Duration,
    pub throttle: ThrottlePolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            session_ttl: Duration::hours(12),
            invite_ttl: Duration::days(7),
            throttle: ThrottlePolicy::default(),
        }
    }
}

/// A new session: the token goes into an HTTP-only cookie and nowhere else.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub account: Account,
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A one-time link for a member to set their password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub account: Account,
    /// Goes into the link `/invite/{token}`; shown once to the owner.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

const WRONG_CREDENTIALS: &str = "e-mail address or password is wrong";

/// The application service. Cheap to clone; shared by every request.
#[derive(Clone)]
pub struct Ferry {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn Secrets>,
    hasher: Arc<dyn PasswordHasher>,
    policy: Policy,
    workers: Workers,
    /// What the password service reads on every login, kept briefly.
    password_cache: passwords::Cache,
}

/// How long a setup token printed at start stays valid.
const SETUP_TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

impl Ferry {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn Secrets>,
        hasher: Arc<dyn PasswordHasher>,
        policy: Policy,
        workers: Workers,
    ) -> Self {
        Self {
            store,
            clock,
            secrets,
            hasher,
            policy,
            workers,
            password_cache: passwords::Cache::default(),
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    // ---- housekeeping ------------------------------------------------------------

    /// Drops expired sessions and old failure counters; run periodically by the server.
    pub async fn housekeeping(&self) -> Result<u64> {
        let now = self.now();
        let sessions = self.store.purge_expired_sessions(now).await?;
        let failures = self
            .store
            .purge_failures_before(self.policy.throttle.window_start(now))
            .await?;
        let contexts = self.store.purge_password_contexts(now).await?;
        self.password_cache.forget_expired(now);
        Ok(sessions + failures + contexts)
    }
}
