//! Ports: what the domain needs from the outside world. The server implements them
//! (SQLite and PostgreSQL stores, argon2id, the system clock, the OS random source).
//!
//! Every store method that changes state takes the [`NewAuditEntry`] describing the
//! change and writes both in one transaction, so no change escapes the audit log.

use crate::{
    Result,
    accounts::{Account, AccountStatus, NewAccount},
    api_tokens::{ApiToken, NewApiToken},
    assess::{AssessOptions, AssessmentStatus, Check, Finding, Report, classify::DataClass},
    audit::{AuditPage, AuditQuery, NewAuditEntry},
    ids::{AccountId, ApiTokenId, ProjectId, RunId, UploadId},
    import::record::NormalizedUser,
    mapping::{
        Mapping,
        impact::{Evaluator, ImpactReport},
        versions::{MappingVersion, MappingVersionSummary},
    },
    pagination::{Page, PageRequest},
    password_service::{
        AnsweredContext, ContextKey, Coverage, Discarded, MovedUser, NewVerification, PasswordUser,
        Secret, ServiceSettings, StoredService, TokenClaims, Verification, WavePlan,
    },
    plan::{PlanDocument, PlanVersion, PlanVersionSummary},
    projects::{Project, ProjectDraft, ProjectFilter},
    retention::{Holding, PurgeOutcome, Retention, StoredKey},
    review::{
        Attempt, CorrectionInfo, GroupBy, NewReviewEvent, QueueItem, QueuedFailure, ReviewAction,
        ReviewEvent, ReviewSummary, ReviewTask, StoredFilter, TaskState,
    },
    roles::Role,
    runs::{Claimed, NewRun, PauseReason, RecordState, Run, RunState, Settled},
    scim::{
        discovery::ConnectionReport,
        target::{StoredTarget, TargetRole, TargetSecrets, TargetSettings},
    },
    throttle::{FailureStats, ThrottleScope},
    uploads::{NewUpload, ParseProgress, SealedRecord, StoredError, Upload, UploadStatus},
    user_types::UserTypes,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored session: the account it belongs to and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub account_id: AccountId,
    pub expires_at: DateTime<Utc>,
}

/// An API token found by its hash, with its creator's current standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub token: ApiToken,
    pub creator_role: Role,
    pub creator_status: AccountStatus,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn count_accounts(&self) -> Result<u64>;
    /// Creates the first owner; fails with `Conflict` when any account already exists,
    /// atomically, so two racing setups cannot both succeed.
    async fn create_first_owner(
        &self,
        account: &NewAccount,
        audit: &NewAuditEntry,
    ) -> Result<Account>;
    /// Fails with `Conflict` when the e-mail address is taken.
    async fn insert_account(&self, account: &NewAccount, audit: &NewAuditEntry) -> Result<Account>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    /// The account with this (normalized) e-mail and its password hash, if set.
    async fn account_with_hash(&self, email: &str) -> Result<Option<(Account, Option<String>)>>;
    async fn password_hash(&self, id: AccountId) -> Result<Option<String>>;
    /// Sets the hash and makes an invited account active.
    async fn set_password(&self, id: AccountId, hash: &str, audit: &NewAuditEntry) -> Result<()>;
    async fn set_role(&self, id: AccountId, role: Role, audit: &NewAuditEntry) -> Result<()>;
    /// Disabling also ends every session of the account.
    async fn set_status(
        &self,
        id: AccountId,
        status: AccountStatus,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>>;
    async fn count_active_owners(&self) -> Result<u64>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session by the hash of its token and records the sign-in.
    async fn create_session(
        &self,
        token_hash: &str,
        account: AccountId,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>>;
    async fn delete_session(&self, token_hash: &str, audit: Option<&NewAuditEntry>) -> Result<()>;
    /// Ends every other session of an account (after a password change).
    async fn delete_other_sessions(&self, account: AccountId, keep_hash: &str) -> Result<()>;
    async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait SetupStore: Send + Sync {
    async fn add_setup_token(&self, token_hash: &str, created_at: DateTime<Utc>) -> Result<()>;
    /// Whether this setup token was issued at or after `since`.
    async fn setup_token_exists(&self, token_hash: &str, since: DateTime<Utc>) -> Result<bool>;
    async fn clear_setup_tokens(&self) -> Result<()>;
}

#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Replaces any earlier invite of the account: only the newest link works.
    async fn put_invite(
        &self,
        token_hash: &str,
        account: AccountId,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The invited account, if the link exists and has not expired.
    async fn invite(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<AccountId>>;
    async fn delete_invites(&self, account: AccountId) -> Result<()>;
}

#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn record_failure(
        &self,
        scope: ThrottleScope,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn failures_since(
        &self,
        scope: ThrottleScope,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<FailureStats>;
    async fn clear_failures(&self, scope: ThrottleScope, key: &str) -> Result<()>;
    /// Takes back one failure recorded at `at` (an attempt charged before its password
    /// was checked, that then succeeded).
    async fn withdraw_failure(
        &self,
        scope: ThrottleScope,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn purge_failures_before(&self, before: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait ProjectStore: Send + Sync {
    async fn insert_project(&self, project: &Project, audit: &NewAuditEntry) -> Result<()>;
    async fn project(&self, id: ProjectId) -> Result<Option<Project>>;
    /// Projects newest first; `visible_to` limits the list to a support member's assignments.
    async fn list_projects(
        &self,
        filter: ProjectFilter,
        visible_to: Option<AccountId>,
        page: PageRequest,
    ) -> Result<Page<Project>>;
    async fn update_project(
        &self,
        id: ProjectId,
        draft: &ProjectDraft,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn set_archived(
        &self,
        id: ProjectId,
        archived: bool,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn assign_support(
        &self,
        project: ProjectId,
        account: AccountId,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn unassign_support(
        &self,
        project: ProjectId,
        account: AccountId,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn project_support(&self, project: ProjectId) -> Result<Vec<Account>>;
    async fn is_assigned(&self, project: ProjectId, account: AccountId) -> Result<bool>;
}

#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    async fn insert_api_token(&self, token: &NewApiToken, audit: &NewAuditEntry) -> Result<()>;
    async fn api_token_grant(&self, secret_hash: &str) -> Result<Option<TokenGrant>>;
    async fn touch_api_token(&self, id: ApiTokenId, at: DateTime<Utc>) -> Result<()>;
    async fn list_api_tokens(&self, page: PageRequest) -> Result<Page<ApiToken>>;
    async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>>;
    async fn revoke_api_token(
        &self,
        id: ApiTokenId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// For actions that change nothing else (a failed sign-in).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()>;
    async fn audit_page(&self, query: AuditQuery) -> Result<AuditPage>;
}

#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn insert_upload(&self, upload: &NewUpload, audit: &NewAuditEntry) -> Result<Upload>;
    async fn upload(&self, id: UploadId) -> Result<Option<Upload>>;
    /// Removes an upload that is not being read, with its row errors and the users
    /// only it delivered; refused (409) when some of its users were also delivered by
    /// another upload (their data is this upload's: removing it would lose it). How
    /// many users went with it.
    async fn delete_upload(&self, id: UploadId, audit: &NewAuditEntry) -> Result<u64>;
    async fn list_uploads(&self, project: ProjectId, page: PageRequest) -> Result<Page<Upload>>;
    /// An earlier upload of the same file (same SHA-256) to the project.
    async fn upload_by_sha(&self, project: ProjectId, sha256: &str) -> Result<Option<Upload>>;
    async fn uploads_with_status(&self, status: UploadStatus) -> Result<Vec<Upload>>;
    /// Marks the upload as being read and forgets the errors of any earlier reading,
    /// so reading again after a crash starts clean. Records are upserted by source id,
    /// so reading them again is harmless.
    async fn start_parse(
        &self,
        id: UploadId,
        format: &str,
        source: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Stores one batch of records and errors with the progress so far, atomically.
    /// The records are taken, not borrowed: each is freed once its rows are written,
    /// so a batch being saved gives its memory back as it goes.
    async fn save_batch(
        &self,
        upload: &Upload,
        records: Vec<SealedRecord>,
        errors: &[StoredError],
        progress: ParseProgress,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Settles the upload and counts new, changed, unchanged and missing records.
    async fn finish_parse(
        &self,
        id: UploadId,
        status: UploadStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Upload>;
    async fn record_errors(&self, upload: UploadId, page: PageRequest)
    -> Result<Page<StoredError>>;
    /// Saves a sealed secret of a project, replacing the one of that kind, with its
    /// audit entry.
    async fn put_project_secret(
        &self,
        project: ProjectId,
        kind: &str,
        sealed: &[u8],
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// A sealed secret of a project, if one of that kind was saved.
    async fn project_secret(&self, project: ProjectId, kind: &str) -> Result<Option<Vec<u8>>>;
}

/// Where an assessment stands, with its sealed report once ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssessmentRow {
    pub status: AssessmentStatus,
    pub records_total: u64,
    pub records_done: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub sealed_report: Option<Vec<u8>>,
}

#[async_trait]
pub trait AssessmentStore: Send + Sync {
    /// Marks the project's assessment as running and drops the findings of the last.
    /// Fails with `Conflict` when one is running already.
    async fn start_assessment(
        &self,
        project: ProjectId,
        records_total: u64,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Saves findings and how many records are done.
    async fn save_assessment_progress(
        &self,
        project: ProjectId,
        records_done: u64,
        findings: &[(u64, Finding)],
    ) -> Result<()>;
    /// Settles the assessment: ready with its sealed report, or failed with the reason.
    async fn finish_assessment(
        &self,
        project: ProjectId,
        outcome: std::result::Result<&[u8], &str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn assessment(&self, project: ProjectId) -> Result<Option<AssessmentRow>>;
    /// Assessments left running by a stopped server.
    async fn running_assessments(&self) -> Result<Vec<ProjectId>>;
    async fn findings(
        &self,
        project: ProjectId,
        check: Check,
        page: PageRequest,
    ) -> Result<Page<Finding>>;
    /// Sets (or with `None` clears) an administrator's class for an attribute.
    async fn set_attribute_class(
        &self,
        project: ProjectId,
        path: &str,
        class: Option<DataClass>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn attribute_classes(&self, project: ProjectId) -> Result<Vec<(String, DataClass)>>;
    async fn count_records(&self, project: ProjectId) -> Result<u64>;
    /// Records of a project in source-id order after `after`: id, the upload that last
    /// delivered it, and the sealed record.
    async fn records_with_upload(
        &self,
        project: ProjectId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, UploadId, Vec<u8>)>>;
}

/// Computes assessments in the background and opens their sealed reports (the server
/// holds the key and the workers).
#[async_trait]
pub trait AssessmentRunner: Send + Sync {
    /// Starts computing; the store already says the assessment is running.
    fn spawn(&self, project: ProjectId, options: AssessOptions);
    /// Records done so far by a running assessment, from memory.
    fn progress(&self, project: ProjectId) -> Option<u64>;
    async fn open_report(&self, project: ProjectId, sealed: &[u8]) -> Result<Report>;
}

/// The target connections of projects: visible settings, sealed secrets, last test.
#[async_trait]
pub trait TargetStore: Send + Sync {
    /// Creates or replaces a target; its previous connection test no longer applies
    /// and is cleared.
    async fn put_target(
        &self,
        project: ProjectId,
        role: TargetRole,
        settings: &TargetSettings,
        sealed_secrets: &[u8],
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn target(&self, project: ProjectId, role: TargetRole) -> Result<Option<StoredTarget>>;
    async fn targets(&self, project: ProjectId) -> Result<Vec<StoredTarget>>;
    /// Returns whether there was one.
    async fn delete_target(
        &self,
        project: ProjectId,
        role: TargetRole,
        audit: &NewAuditEntry,
    ) -> Result<bool>;
    async fn save_connection_report(
        &self,
        project: ProjectId,
        role: TargetRole,
        report: &ConnectionReport,
        audit: &NewAuditEntry,
    ) -> Result<()>;
}

/// The numbered versions of each project's mapping.
#[async_trait]
pub trait MappingStore: Send + Sync {
    /// Saves `mapping` as the project's next version and returns its number; two
    /// saves racing for one number make the later one a conflict, never an overwrite.
    async fn save_mapping_version(
        &self,
        project: ProjectId,
        mapping: &Mapping,
        note: &str,
        by: Option<AccountId>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<u32>;
    /// One version; `None` for the latest.
    async fn mapping_version(
        &self,
        project: ProjectId,
        version: Option<u32>,
    ) -> Result<Option<MappingVersion>>;
    /// Versions newest first.
    async fn mapping_versions(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<MappingVersionSummary>>;
}

/// The migration plan's versions.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Saves `document` as the project's next version and returns its number; two
    /// saves racing for one number make the later one a conflict, never an overwrite.
    async fn save_plan_version(
        &self,
        project: ProjectId,
        document: &PlanDocument,
        note: &str,
        by: Option<AccountId>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<u32>;
    /// One version; `None` for the latest.
    async fn plan_version(
        &self,
        project: ProjectId,
        version: Option<u32>,
    ) -> Result<Option<PlanVersion>>;
    /// Versions newest first.
    async fn plan_versions(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<PlanVersionSummary>>;
    /// Marks a version approved; not found for a version that does not exist, a
    /// conflict for one approved already.
    async fn approve_plan_version(
        &self,
        project: ProjectId,
        version: u32,
        by: AccountId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
}

/// Project data keys, retention settings and purges.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    async fn project_key(&self, project: ProjectId) -> Result<StoredKey>;
    /// Stores a new project's key unless one is stored already (another instance may
    /// have made one first); returns the key stored in the end.
    async fn insert_project_key(
        &self,
        project: ProjectId,
        wrapped: &[u8],
        at: DateTime<Utc>,
    ) -> Result<StoredKey>;
    async fn retention(&self, project: ProjectId) -> Result<Retention>;
    async fn save_retention(
        &self,
        project: ProjectId,
        retention: &Retention,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// The end of the project's latest finished real run.
    async fn real_run_finished_at(&self, project: ProjectId) -> Result<Option<DateTime<Utc>>>;
    async fn holding(&self, project: ProjectId) -> Result<Holding>;
    /// Projects not purged yet whose retention period ended before `now`.
    async fn projects_due_for_purge(&self, now: DateTime<Utc>) -> Result<Vec<ProjectId>>;
    /// In one transaction: destroys the project's key, deletes its imported data
    /// (records, corrections, uploads' errors, findings, reports, secrets, the review
    /// queue, the password service's logins), the crosswalk unless `keep_crosswalk`,
    /// keeps `kept_report`, and marks the project and its uploads purged. Returns what
    /// went and the uploads whose files are to be removed.
    async fn purge_project(
        &self,
        project: ProjectId,
        keep_crosswalk: bool,
        kept_report: Option<Vec<u8>>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<(PurgeOutcome, Vec<UploadId>)>;
    /// Deletes the records whose newest version came from `upload` and its errors,
    /// and marks it purged; returns the records deleted.
    async fn purge_upload(
        &self,
        project: ProjectId,
        upload: UploadId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<u64>;
    /// The final report a purge kept, sealed under the server's key.
    async fn kept_report(&self, project: ProjectId) -> Result<Option<Vec<u8>>>;
}

/// A project's saved user types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUserTypes {
    pub user_types: UserTypes,
    pub saved_at: DateTime<Utc>,
    pub saved_by_email: Option<String>,
}

/// A project's impact computation: what it was computed for, its progress, and the
/// sealed report once ready.
#[derive(Clone, Debug)]
pub struct ImpactRow {
    pub status: AssessmentStatus,
    pub mapping: Mapping,
    pub user_types: UserTypes,
    pub records_total: u64,
    pub records_done: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub sealed_report: Option<Vec<u8>>,
}

/// The plan's tables: user types, the impact computation, and the sealed records a
/// preview samples.
#[async_trait]
pub trait GoalsStore: Send + Sync {
    async fn user_types(&self, project: ProjectId) -> Result<Option<StoredUserTypes>>;
    async fn save_user_types(
        &self,
        project: ProjectId,
        user_types: &UserTypes,
        by: Option<AccountId>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Marks the impact running for these rules and user types; a conflict when one
    /// is running already. The last report stays until the new one replaces it.
    async fn start_impact(
        &self,
        project: ProjectId,
        records_total: u64,
        mapping: &Mapping,
        user_types: &UserTypes,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    async fn save_impact_progress(&self, project: ProjectId, records_done: u64) -> Result<()>;
    async fn finish_impact(
        &self,
        project: ProjectId,
        outcome: std::result::Result<&[u8], &str>,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn impact(&self, project: ProjectId) -> Result<Option<ImpactRow>>;
    async fn running_impacts(&self) -> Result<Vec<ProjectId>>;
    /// The sealed records with these source ids (those that exist); where support
    /// staff corrected a record, the correction.
    async fn sealed_records(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>>;
    /// Up to `limit` sealed records whose content digest lies in `[from, to)`: digests
    /// are uniform, so a random range is a random sample.
    async fn sealed_records_by_digest(
        &self,
        project: ProjectId,
        from: &str,
        to: &str,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>>;
}

/// The run table and the record table of each run. Every method keeps a run's counts
/// equal to its records' states, in the same transaction.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates the run in draft with these records, all pending, in one transaction.
    async fn create_run(
        &self,
        run: &NewRun,
        records: RunRecords<'_>,
        audit: &NewAuditEntry,
    ) -> Result<Run>;
    async fn run(&self, id: RunId) -> Result<Option<Run>>;
    /// A project's runs, newest first.
    async fn runs(&self, project: ProjectId, page: PageRequest) -> Result<Page<Run>>;
    /// Every scheduled, running or paused run (the scheduler's round).
    async fn active_runs(&self) -> Result<Vec<Run>>;
    /// Replaces the run's settings (a new window), while it is in `state`.
    async fn set_run_settings(
        &self,
        id: RunId,
        state: RunState,
        settings: &str,
        audit: &NewAuditEntry,
    ) -> Result<Run>;
    /// A run's records in order after `after`, filtered.
    async fn run_records(
        &self,
        id: RunId,
        filter: &RecordFilter,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RunRecord>>;
    /// After `after`, records that got a SCIM id and belong to groups: (seq, SCIM id,
    /// group names one per line).
    async fn memberships(
        &self,
        id: RunId,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<(u64, String, String)>>;
    /// Failed (and skipped) records per error class, with one example detail each.
    async fn error_classes(&self, id: RunId) -> Result<Vec<ClassCount>>;
    /// Takes the right to finish the run (groups, read-back) until `until`, when
    /// nobody holds it or its holder's lease expired; whether it was taken.
    async fn claim_finish(
        &self,
        id: RunId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Keeps what the finish found: the groups' summary (JSON) and a test run's
    /// sealed read-back.
    async fn save_finish(
        &self,
        id: RunId,
        summary: &str,
        sealed_readback: Option<&[u8]>,
    ) -> Result<()>;
    async fn run_finish(&self, id: RunId) -> Result<(Option<String>, Option<Vec<u8>>)>;
    /// Every SCIM id a production run of the project recorded: the users the crosswalk
    /// explains.
    async fn known_scim_ids(&self, project: ProjectId) -> Result<Vec<String>>;
    /// Each of these records of a run with its delta decision and its sealed undo.
    async fn delta_records(
        &self,
        run: RunId,
        seqs: &[u64],
    ) -> Result<Vec<(u64, String, Option<Vec<u8>>)>>;
    /// Turns these users a reconciliation found matching into findings whose group
    /// memberships differ, with the detail; returns how many changed.
    async fn groups_differ(&self, run: RunId, found: &[(u64, String)]) -> Result<u64>;
    /// Keeps how to undo what a delta run changed of these records (sealed).
    async fn keep_undo(&self, run: RunId, undo: &[(u64, Vec<u8>)]) -> Result<()>;
    /// Moves the run from `from` to `to` (compare and set: a conflict when it is no
    /// longer in `from`), recording the pause reason and the start and end times.
    async fn set_run_state(
        &self,
        id: RunId,
        from: RunState,
        to: RunState,
        reason: Option<&PauseReason>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<Run>;
    /// Claims up to `limit` records for `owner` until `lease_until`: pending ones,
    /// and in-flight ones whose lease expired before `now` (their worker is gone).
    /// Two claimers never get the same record.
    async fn claim(
        &self,
        id: RunId,
        owner: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>>;
    /// Extends the lease of `owner`'s in-flight records; how many it holds.
    async fn heartbeat(&self, id: RunId, owner: &str, lease_until: DateTime<Utc>) -> Result<u64>;
    /// Settles `owner`'s claimed records. Records it no longer holds (its lease
    /// expired and another worker claimed them) are left alone; returns how many
    /// were settled.
    async fn settle(
        &self,
        id: RunId,
        owner: &str,
        outcomes: &[Settled],
        at: DateTime<Utc>,
    ) -> Result<u64>;
    /// Lets the leases of a process that ran before under the same instance name lapse
    /// at once (records and finishers whose owner starts with `prefix`, except those of
    /// `current`): that process is gone, so nobody waits out its lease. Its records
    /// keep their attempts and sent marks, so the next claim looks them up first.
    /// How many records' leases lapsed.
    async fn lapse_leases(&self, prefix: &str, current: &str, now: DateTime<Utc>) -> Result<u64>;
    /// Gives `owner`'s in-flight records back (pending), as when a run pauses. They
    /// may have been sent: their claims still count as attempts.
    async fn release(&self, id: RunId, owner: &str) -> Result<u64>;
    /// Gives back records of `owner` that were claimed but certainly never sent (a
    /// batch readied ahead, a batch the target refused to authorise): their claims
    /// do not count as attempts, so that on their next claim nobody takes a user
    /// found in the target for one an earlier attempt created.
    async fn unclaim(&self, id: RunId, owner: &str, seqs: &[u64]) -> Result<u64>;
    /// Marks `owner`'s records as sent at `at` (kept from the first time): their
    /// batch's request is about to leave. One statement per batch; after a crash only
    /// records so marked are looked up.
    async fn mark_sent(
        &self,
        id: RunId,
        owner: &str,
        seqs: &[u64],
        at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// The password verification service: its settings and credentials, the contexts of
/// logins in progress, every verification, and the users whose password has moved.
#[async_trait]
pub trait PasswordStore: Send + Sync {
    async fn password_service(&self, project: ProjectId) -> Result<Option<StoredService>>;
    /// The legacy identity provider that checks passwords of users without a hash.
    async fn legacy_connection(
        &self,
        project: ProjectId,
    ) -> Result<Option<crate::legacy::StoredLegacy>>;
    /// Creates or replaces the connection (its last test is forgotten).
    async fn put_legacy_connection(
        &self,
        project: ProjectId,
        settings: &crate::legacy::LegacySettings,
        sealed_secret: Option<&[u8]>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Keeps a test's result with the connection (nothing when it was removed).
    async fn set_legacy_test(
        &self,
        project: ProjectId,
        test: &crate::legacy::LegacyTest,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// `false` when the project had none.
    async fn delete_legacy_connection(
        &self,
        project: ProjectId,
        audit: &NewAuditEntry,
    ) -> Result<bool>;
    /// Creates the service (with `client_id`) or changes its settings.
    async fn save_password_service(
        &self,
        project: ProjectId,
        settings: &ServiceSettings,
        client_id: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Replaces the client secret (its hash and hint) and moves to the next
    /// generation, which revokes every access token issued before.
    async fn set_service_secret(
        &self,
        project: ProjectId,
        hash: &str,
        hint: &str,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Sets (or, with `None`, removes) the static bearer key.
    async fn set_service_key(
        &self,
        project: ProjectId,
        key: Option<(&str, &str)>,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// `Some(complete)` for a context written and not expired (a context is written
    /// when its verification ends, so one found is complete).
    async fn password_context_complete(
        &self,
        project: ProjectId,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>>;
    /// The status call's read: the answer of a finished, unexpired context bound to
    /// this user name's digest, once. A success marks the user's password moved in the
    /// same statement. `None` when no such context waits (see
    /// [`PasswordStore::discard_password_context`] for why).
    async fn take_password_context(
        &self,
        project: ProjectId,
        digest: &str,
        user_digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<AnsweredContext>>;
    /// Consumes a context without moving anything: one a wrong user name asked
    /// about, one the rehearsal read. When none was written yet and `hold_until` is
    /// given, leaves a taken mark until then so the verification's answer, when it
    /// comes, is never read.
    async fn discard_password_context(
        &self,
        project: ProjectId,
        digest: &str,
        now: DateTime<Utc>,
        hold_until: Option<DateTime<Utc>>,
    ) -> Result<Discarded>;
    async fn purge_password_contexts(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Marks a user's password moved (`verified` or `reset`); a user marked once
    /// keeps its first mark.
    async fn mark_password_moved(
        &self,
        project: ProjectId,
        user: &MovedUser,
        how: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// What a verification reads, in one statement: the failed verifications that
    /// count towards a lockout since `since` (of the user name's digest, and from the
    /// caller), and the project's user with this id in the target (its latest run)
    /// with their sealed record, corrections applied.
    async fn password_login(
        &self,
        project: ProjectId,
        scim_id: &str,
        user_digest: &str,
        caller: &str,
        since: DateTime<Utc>,
    ) -> Result<crate::password_service::LoginLookup>;
    /// Completes a login's context and records its verification, in one statement.
    /// A context already taken (its status was read before the end) only gets the
    /// record.
    async fn finish_verification(
        &self,
        project: ProjectId,
        context: &ContextKey,
        verification: &NewVerification,
    ) -> Result<()>;
    /// The latest verifications, newest first.
    async fn verifications(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> Result<Page<Verification>>;
    async fn password_coverage(&self, project: ProjectId, days: u32) -> Result<Coverage>;
    /// Up to `limit` users the latest test run created, of silent-migration types,
    /// whose password has not moved.
    async fn rehearsal_candidates(
        &self,
        project: ProjectId,
        limit: u32,
    ) -> Result<Vec<PasswordUser>>;
    async fn wave_plan(&self, project: ProjectId) -> Result<Option<WavePlan>>;
    async fn save_wave_plan(
        &self,
        project: ProjectId,
        plan: &WavePlan,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// The projects whose plan starts waves by itself.
    async fn enabled_wave_plans(&self) -> Result<Vec<(ProjectId, WavePlan)>>;
    /// Users the project's waves took since `since`.
    async fn invited_since(&self, project: ProjectId, since: DateTime<Utc>) -> Result<u64>;
    /// How many users a wave would take now (see [`RunRecords::WaitingForReset`]).
    async fn waiting_for_reset(
        &self,
        project: ProjectId,
        long_tail_before: Option<DateTime<Utc>>,
    ) -> Result<u64>;
    /// Which of these users' passwords have moved already.
    async fn moved_among(&self, project: ProjectId, scim_ids: &[String]) -> Result<Vec<String>>;
    /// Marks the users of these records of a wave reset (their password moves by the
    /// invitation).
    async fn mark_wave_moved(&self, run: RunId, seqs: &[u64], at: DateTime<Utc>) -> Result<()>;
    /// Users of silent-migration types the production runs created.
    async fn silent_users(&self, project: ProjectId) -> Result<u64>;
    /// Users whose password moved in production (verified or reset): one count on
    /// the moves' primary key, cheap enough for the projects list.
    async fn passwords_moved(&self, project: ProjectId) -> Result<u64>;
}

/// Password work the server does: signing access tokens with a key derived from the
/// server key, and checking passwords on a bounded pool of threads.
#[async_trait]
pub trait PasswordWork: Send + Sync {
    fn sign_token(&self, claims: &TokenClaims) -> String;
    /// The claims of a token this server (or one sharing its key) signed.
    fn check_token(&self, token: &str) -> Option<TokenClaims>;
    /// A login's context id: `nonce` and the expiry (Unix milliseconds), signed for
    /// the project, so any instance sharing the key tells a context still being
    /// verified from one it never opened without a look-up.
    fn context_id(&self, project: ProjectId, nonce: &str, expires_at: i64) -> String;
    /// The expiry a context id of this project carries, if this server (or one sharing
    /// its key) signed it.
    fn context_expiry(&self, project: ProjectId, context_id: &str) -> Option<i64>;
    /// Checks a password against an imported credential. `Ok(None)` when too many
    /// checks are waiting already.
    async fn check_credential(
        &self,
        credential: crate::passwords::Credential,
        password: Secret,
    ) -> Result<Option<bool>>;
    /// Seals the legacy connection's secret for the project (never stored in clear).
    async fn seal_legacy_secret(&self, project: ProjectId, secret: &str) -> Result<Vec<u8>>;
    async fn open_legacy_secret(&self, project: ProjectId, sealed: &[u8]) -> Result<Secret>;
    /// Asks the legacy identity provider whether the password is right. `None` when
    /// too many checks are under way already.
    async fn check_legacy(
        &self,
        settings: &crate::legacy::LegacySettings,
        secret: Option<Secret>,
        login: &crate::legacy::LegacyLogin,
        password: Secret,
    ) -> Option<crate::legacy::LegacyOutcome>;
    /// Asks the legacy identity provider about a made-up user and password: a
    /// connection that works refuses them.
    async fn probe_legacy(
        &self,
        settings: &crate::legacy::LegacySettings,
        secret: Option<Secret>,
    ) -> crate::legacy::LegacyOutcome;
}

/// The review queue, its history, corrections and the grant to see personal data.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Records a finished run's outcomes in the queue: each failure becomes (or
    /// updates) its user's row unless the row already holds a later outcome; each
    /// success marks a queued user migrated (a test run's only users whose failure
    /// was a test run's). Each change is added to the user's history. Repeatable:
    /// a repeat changes nothing.
    async fn queue_outcomes(
        &self,
        project: ProjectId,
        run: RunId,
        target_role: &str,
        failed: &[QueuedFailure],
        succeeded: &[(String, DateTime<Utc>)],
    ) -> Result<()>;
    /// Up to `limit` queued users matching the filter, in legacy-id order after `after`.
    async fn queue(
        &self,
        project: ProjectId,
        filter: &StoredFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<QueueItem>>;
    /// How many queued users match, counted up to `cap` (exactly when `None`, and for a
    /// view without other filters, which is read from the tally).
    async fn queue_count(
        &self,
        project: ProjectId,
        filter: &StoredFilter,
        cap: Option<u64>,
    ) -> Result<u64>;
    /// The matching users counted by `by`, largest groups first, at most `limit`.
    async fn queue_groups(
        &self,
        project: ProjectId,
        filter: &StoredFilter,
        by: GroupBy,
        limit: u32,
    ) -> Result<Vec<(Option<String>, u64)>>;
    async fn queue_item(&self, project: ProjectId, source_id: &str) -> Result<Option<QueueItem>>;
    async fn queue_summary(&self, project: ProjectId) -> Result<ReviewSummary>;
    /// Counts the users in the target again (when a run finishes) for the summary;
    /// returns the count.
    async fn refresh_migrated(&self, project: ProjectId, at: DateTime<Utc>) -> Result<u64>;
    #[allow(clippy::too_many_arguments)]
    /// Applies an action to those of `ids` that are queued, adds it to each one's
    /// history and writes the audit entry, in one transaction; how many changed.
    async fn queue_act(
        &self,
        project: ProjectId,
        ids: &[String],
        action: &ReviewAction,
        event: &NewReviewEvent,
        actor: AccountId,
        at: DateTime<Utc>,
        audit: Option<&NewAuditEntry>,
    ) -> Result<u64>;
    /// Adds the same entry to the history of each of `ids` (a retry, a correction).
    async fn queue_note(
        &self,
        project: ProjectId,
        ids: &[String],
        actor: AccountId,
        event: &NewReviewEvent,
        at: DateTime<Utc>,
    ) -> Result<()>;
    async fn queue_events(&self, project: ProjectId, source_id: &str) -> Result<Vec<ReviewEvent>>;
    /// Every run's outcome for this user, newest first.
    async fn attempts(&self, project: ProjectId, source_id: &str) -> Result<Vec<Attempt>>;
    /// The imported record, sealed, and its content digest (not a correction).
    async fn imported_record(
        &self,
        project: ProjectId,
        source_id: &str,
    ) -> Result<Option<(String, Vec<u8>)>>;
    /// Keeps a correction (replacing an earlier one), its search digests, the history
    /// entry and the audit entry, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn put_correction(
        &self,
        project: ProjectId,
        source_id: &str,
        sealed: &[u8],
        base_digest: &str,
        fields: &[String],
        digests: &[String],
        actor: AccountId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// The correction's sealed record and what is known of it, if there is one.
    async fn correction(
        &self,
        project: ProjectId,
        source_id: &str,
    ) -> Result<Option<(Vec<u8>, CorrectionInfo)>>;
    async fn personal_data_grant(&self, account: AccountId) -> Result<bool>;
    async fn set_personal_data_grant(
        &self,
        account: AccountId,
        granted: bool,
        by: AccountId,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> Result<()>;
    /// Members allowed to see personal data unmasked.
    async fn personal_data_grants(&self) -> Result<Vec<AccountId>>;
    async fn create_review_task(&self, task: &ReviewTask, audit: &NewAuditEntry) -> Result<()>;
    async fn review_task(&self, id: uuid::Uuid) -> Result<Option<ReviewTask>>;
    /// A project's newest background actions, newest first.
    async fn review_tasks(&self, project: ProjectId, limit: u32) -> Result<Vec<ReviewTask>>;
    /// Every background action still running (to go on with after a restart).
    async fn running_review_tasks(&self) -> Result<Vec<ReviewTask>>;
    /// Records a step: users acted on so far and the last legacy id. Only while the
    /// task runs; false once it was cancelled.
    async fn advance_review_task(&self, id: uuid::Uuid, done: u64, cursor: &str) -> Result<bool>;
    /// Ends a running task (compare and set: a task already ended stays as it is).
    async fn finish_review_task(
        &self,
        id: uuid::Uuid,
        state: TaskState,
        error: Option<&str>,
        at: DateTime<Utc>,
        audit: Option<&NewAuditEntry>,
    ) -> Result<bool>;
}

/// Where a new run's records come from.
#[derive(Clone, Copy, Debug)]
pub enum RunRecords<'a> {
    /// These source ids.
    Ids(&'a [String]),
    /// Every record of the project.
    Project,
    /// The records that failed in this run (a retry).
    FailedOf(RunId),
    /// The records this run created, with their SCIM ids (a rollback).
    CreatedOf(RunId),
    /// These source ids, each with whether an earlier attempt may have reached the
    /// target (then the user is looked up by its `externalId` before it is sent).
    Reviewed(&'a [(String, bool)]),
    /// Up to `limit` users the production runs created whose password waits for an
    /// invitation: of forced-reset types, and of silent-migration types created before
    /// `long_tail_before` (the long tail); not moved, in no other wave, not rolled back.
    WaitingForReset {
        long_tail_before: Option<DateTime<Utc>>,
        limit: u32,
    },
    /// Each user a production run put in the target and no rollback deleted since
    /// (its latest record), with its SCIM id: all of them, or `sample` chosen at random
    /// (a reconciliation).
    InTarget { sample: Option<u32> },
    /// A newer export's decisions: its users new to the target (`create`), those it
    /// changed that are in the target (`update`), and those in the target it no
    /// longer has (`missing`'s decision).
    Delta {
        upload: UploadId,
        missing: crate::runs::delta::Decision,
    },
    /// What a delta run created or changed, with how to undo each (its rollback).
    UndoOf(RunId),
}

/// Which of a run's records to list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordFilter {
    pub state: Option<RecordState>,
    pub error_class: Option<String>,
}

/// One record of a run as stored: ids and outcome, never values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunRecord {
    pub seq: u64,
    pub source_id: String,
    pub state: RecordState,
    pub attempts: u32,
    pub scim_id: Option<String>,
    pub error_class: Option<String>,
    pub error_detail: Option<String>,
    /// The target's `scimType` of a failure, when it gave one.
    pub scim_type: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// Records of one error class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassCount {
    pub state: RecordState,
    pub error_class: String,
    pub count: u64,
    pub example: Option<String>,
}

/// Which records a preview or a live count looks at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sample {
    /// A random sample; the same seed gives the same records.
    Random { seed: u64 },
    /// Records whose source id, user name, e-mail address or name contains the text.
    Search { text: String },
    /// These records.
    Ids { ids: Vec<String> },
}

/// Records a sample found, and how many were looked at to find them.
pub struct Sampled {
    pub records: Vec<NormalizedUser>,
    /// Records searched (a search stops after a bounded number).
    pub scanned: u64,
}

/// Work on a project's sealed records (the server holds the key and the threads):
/// samples for previews and counts, and the impact computed in the background.
#[async_trait]
pub trait RecordWork: Send + Sync {
    async fn sample(&self, project: ProjectId, sample: &Sample, limit: u32) -> Result<Sampled>;
    /// Starts computing the impact; the store already says it is running.
    fn spawn_impact(
        &self,
        project: ProjectId,
        evaluator: Evaluator,
        mapping: Mapping,
        user_types: usize,
    );
    /// Records done so far by a running impact, from memory.
    fn impact_progress(&self, project: ProjectId) -> Option<u64>;
    async fn open_impact(&self, project: ProjectId, sealed: &[u8]) -> Result<ImpactReport>;
    /// The keyed digest a search value is looked up by (never the value itself).
    fn search_digest(&self, project: ProjectId, key: &str) -> String;
    /// Opens one of the project's sealed records (imported or corrected).
    async fn open_record(
        &self,
        project: ProjectId,
        source_id: &str,
        sealed: &[u8],
    ) -> Result<NormalizedUser>;
    /// Seals a record (a correction) as records are kept.
    async fn seal_record(&self, project: ProjectId, user: &NormalizedUser) -> Result<Vec<u8>>;
    /// Carries out a background action (already stored as running) step by step.
    fn spawn_review_task(&self, task: ReviewTask);
}

/// The engine that works on running runs (the server holds the workers, the HTTP
/// client and the key). Use-cases change a run's state in the store, then tell it.
#[async_trait]
pub trait RunEngine: Send + Sync {
    /// The run is running: work on it here (nothing when already working on it).
    fn wake(&self, run: RunId);
    /// The run stopped running: local workers finish the batch in hand and stop.
    fn stop(&self, run: RunId);
    /// The run's progress: live from the workers while they run it here, else from its
    /// counts.
    fn progress(&self, run: &Run) -> crate::runs::Progress;
    async fn open_readback(&self, run: &Run, sealed: &[u8]) -> Result<crate::runs::ReadBack>;
    /// A reconciliation's extra users, kept sealed in the read-back's place.
    async fn open_extra_users(&self, run: &Run, sealed: &[u8]) -> Result<crate::runs::ExtraUsers>;
}

/// Seals target secrets and talks to targets (the server holds the key and the HTTP
/// client).
#[async_trait]
pub trait TargetConnector: Send + Sync {
    async fn seal_secrets(
        &self,
        project: ProjectId,
        role: TargetRole,
        secrets: &TargetSecrets,
    ) -> Result<Vec<u8>>;
    async fn open_secrets(
        &self,
        project: ProjectId,
        role: TargetRole,
        sealed: &[u8],
    ) -> Result<TargetSecrets>;
    /// Runs the connection test step by step; failures are in the report, not errors.
    async fn test_connection(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        started_at: DateTime<Utc>,
    ) -> ConnectionReport;
    /// Reads one user from a target; the error says what went wrong.
    async fn get_user(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        scim_id: &str,
    ) -> std::result::Result<serde_json::Value, String>;
    /// Changes one user by SCIM PATCH operations.
    async fn patch_user(
        &self,
        settings: &TargetSettings,
        secrets: &TargetSecrets,
        scim_id: &str,
        operations: Vec<serde_json::Value>,
    ) -> std::result::Result<(), String>;
}

/// The workers behind the service, given to it once at construction: the server holds
/// the key, the files, the threads and the HTTP client they need.
#[derive(Clone)]
pub struct Workers {
    pub assessments: std::sync::Arc<dyn AssessmentRunner>,
    pub records: std::sync::Arc<dyn RecordWork>,
    pub targets: std::sync::Arc<dyn TargetConnector>,
    pub runs: std::sync::Arc<dyn RunEngine>,
    pub passwords: std::sync::Arc<dyn PasswordWork>,
    pub keys: std::sync::Arc<dyn DataKeys>,
}

/// The project keys everything a project's data is sealed under (the server holds
/// the server's key and the uploads' files).
#[async_trait]
pub trait DataKeys: Send + Sync {
    /// Seals a purged project's final report under the server's key.
    fn seal_kept_report(&self, project: ProjectId, json: &[u8]) -> Vec<u8>;
    fn open_kept_report(&self, project: ProjectId, sealed: &[u8]) -> Result<Vec<u8>>;
    /// After a purge: forgets the project's key here and removes the uploads' files.
    async fn purged(&self, project: ProjectId, uploads: &[UploadId]);
    /// After an upload's purge: removes its file.
    async fn upload_purged(&self, upload: UploadId);
}

/// Everything Ferry stores. One implementation per database, chosen at start.
pub trait Store:
    AccountStore
    + SessionStore
    + SetupStore
    + InviteStore
    + ThrottleStore
    + ProjectStore
    + ApiTokenStore
    + AuditStore
    + UploadStore
    + AssessmentStore
    + TargetStore
    + MappingStore
    + PlanStore
    + GoalsStore
    + RunStore
    + ReviewStore
    + PasswordStore
    + RetentionStore
{
}

impl<T> Store for T where
    T: AccountStore
        + SessionStore
        + SetupStore
        + InviteStore
        + ThrottleStore
        + ProjectStore
        + ApiTokenStore
        + AuditStore
        + UploadStore
        + AssessmentStore
        + TargetStore
        + MappingStore
        + PlanStore
        + GoalsStore
        + RunStore
        + ReviewStore
        + PasswordStore
        + RetentionStore
{
}

/// Time is a parameter: tests pass a fixed clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Randomness and one-way hashing of high-entropy secrets (session, setup, invite and
/// API tokens). Such tokens carry 256 random bits, so a fast hash is enough: it keeps a
/// stolen database from yielding working tokens.
pub trait Secrets: Send + Sync {
    /// A fresh random token, URL-safe.
    fn new_token(&self) -> String;
    fn new_uuid(&self) -> uuid::Uuid;
    fn hash_token(&self, token: &str) -> String;
}

/// Slow password hashing (argon2id), run off the async executor by the implementation.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &str) -> Result<String>;
    async fn verify(&self, password: &str, hash: &str) -> Result<bool>;
    /// Spends the same time as a real verification, so a missing account cannot be told
    /// apart from a wrong password by timing.
    async fn verify_dummy(&self, password: &str);
}
