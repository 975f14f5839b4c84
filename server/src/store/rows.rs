//! Row shapes shared by both databases and their conversion into domain types.

use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    accounts::{Account, AccountStatus},
    api_tokens::ApiToken,
    audit::{AuditAction, AuditEntry, ObjectKind},
    ids::{AccountId, ApiTokenId, ProjectId, UploadId},
    projects::{Project, SourceKind},
    roles::Role,
    uploads::{StoredError, Upload, UploadStatus},
};
use uuid::Uuid;

pub fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A stored enum value that no longer parses means the database was edited by hand or
/// by a newer Ferry: report it as internal, never guess.
fn role(s: &str) -> Result<Role> {
    Role::parse(s).map_err(|_| DomainError::Internal(format!("stored role {s:?} is unknown")))
}

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub status: String,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

impl TryFrom<AccountRow> for Account {
    type Error = DomainError;
    fn try_from(row: AccountRow) -> Result<Self> {
        Ok(Account {
            id: AccountId(row.id),
            email: row.email,
            display_name: row.display_name,
            role: role(&row.role)?,
            status: AccountStatus::parse(&row.status)?,
            created_at: time(row.created_at),
            last_sign_in_at: row.last_sign_in_at.map(time),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AccountHashRow {
    #[sqlx(flatten)]
    pub account: AccountRow,
    pub password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub name: String,
    pub source_kind: String,
    pub description: String,
    pub archived: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub purged_at: Option<i64>,
}

impl TryFrom<ProjectRow> for Project {
    type Error = DomainError;
    fn try_from(row: ProjectRow) -> Result<Self> {
        Ok(Project {
            id: ProjectId(row.id),
            name: row.name,
            source_kind: SourceKind::parse(&row.source_kind).map_err(|_| {
                DomainError::Internal(format!(
                    "stored source kind {:?} is unknown",
                    row.source_kind
                ))
            })?,
            description: row.description,
            archived: row.archived,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            purged_at: row.purged_at.map(time),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: Uuid,
    pub name: String,
    pub hint: String,
    pub role: String,
    pub created_by: Uuid,
    pub created_by_email: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TryFrom<ApiTokenRow> for ApiToken {
    type Error = DomainError;
    fn try_from(row: ApiTokenRow) -> Result<Self> {
        Ok(ApiToken {
            id: ApiTokenId(row.id),
            name: row.name,
            hint: row.hint,
            role: role(&row.role)?,
            created_by: AccountId(row.created_by),
            created_by_email: row.created_by_email,
            created_at: time(row.created_at),
            last_used_at: row.last_used_at.map(time),
            revoked_at: row.revoked_at.map(time),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct GrantRow {
    #[sqlx(flatten)]
    pub token: ApiTokenRow,
    pub creator_role: String,
    pub creator_status: String,
}

impl TryFrom<GrantRow> for ApiToken {
    type Error = DomainError;
    fn try_from(row: GrantRow) -> Result<Self> {
        row.token.try_into()
    }
}

impl GrantRow {
    pub fn into_grant(self) -> Result<domain::ports::TokenGrant> {
        Ok(domain::ports::TokenGrant {
            creator_role: role(&self.creator_role)?,
            creator_status: AccountStatus::parse(&self.creator_status)?,
            token: self.token.try_into()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub channel: String,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub project_id: Option<Uuid>,
    pub address: Option<String>,
    pub detail: String,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = DomainError;
    fn try_from(row: AuditRow) -> Result<Self> {
        Ok(AuditEntry {
            seq: row.seq,
            at: time(row.at),
            actor: row.actor_id.map(AccountId),
            actor_email: row.actor_email,
            channel: row.channel,
            action: AuditAction::parse(&row.action)?,
            object_kind: ObjectKind::parse(&row.object_kind)?,
            object_id: row.object_id,
            project_id: row.project_id.map(ProjectId),
            address: row.address,
            detail: row.detail,
        })
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[derive(sqlx::FromRow)]
pub struct UploadRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub file_name: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub status: String,
    pub format: Option<String>,
    pub source: Option<String>,
    pub bytes_read: i64,
    pub rows_ok: i64,
    pub rows_failed: i64,
    pub records_new: i64,
    pub records_changed: i64,
    pub records_unchanged: i64,
    pub records_missing: i64,
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub parse_started_at: Option<i64>,
    pub parse_finished_at: Option<i64>,
    pub purged_at: Option<i64>,
}

impl TryFrom<UploadRow> for Upload {
    type Error = DomainError;
    fn try_from(row: UploadRow) -> Result<Self> {
        Ok(Upload {
            id: UploadId(row.id),
            project_id: ProjectId(row.project_id),
            file_name: row.file_name,
            size_bytes: count(row.size_bytes),
            sha256: row.sha256,
            status: UploadStatus::parse(&row.status)?,
            format: row.format,
            source: row.source,
            bytes_read: count(row.bytes_read),
            rows_ok: count(row.rows_ok),
            rows_failed: count(row.rows_failed),
            records_new: count(row.records_new),
            records_changed: count(row.records_changed),
            records_unchanged: count(row.records_unchanged),
            records_missing: count(row.records_missing),
            error: row.error,
            created_by: row.created_by.map(AccountId),
            created_at: time(row.created_at),
            parse_started_at: row.parse_started_at.map(time),
            parse_finished_at: row.parse_finished_at.map(time),
            purged_at: row.purged_at.map(time),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ErrorRow {
    pub seq: i64,
    pub location: String,
    pub field: Option<String>,
    pub reason: String,
}

impl From<ErrorRow> for StoredError {
    fn from(row: ErrorRow) -> Self {
        StoredError {
            seq: count(row.seq),
            location: row.location,
            field: row.field,
            reason: row.reason,
        }
    }
}

/// Translates a driver error where it enters the domain. Unique violations become
/// `Conflict` with the caller's wording; everything else is internal.
pub fn db_error(conflict: &str) -> impl Fn(sqlx::Error) -> DomainError + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            DomainError::Conflict(conflict.to_string())
        }
        _ => DomainError::Internal(err.to_string()),
    }
}

pub fn internal(err: sqlx::Error) -> DomainError {
    DomainError::Internal(err.to_string())
}
