//! The password stage's tables for both databases: the verification service's settings
//! and hashed credentials, the contexts of logins in progress (so any instance on the
//! database answers any of them), every verification, the users whose password moved,
//! and the counts of the coverage.

use super::{PostgresStore, SqliteStore, count};
use crate::store::{
    group_commit::GroupCommit,
    rows::{internal, millis, time},
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{ProjectId, RunId},
    legacy::{LegacySettings, LegacyTest, StoredLegacy},
    pagination::{Page, PageRequest},
    password_service::{
        AnsweredContext, ContextKey, Coverage, DayCoverage, Discarded, LoginLookup, MovedUser,
        NewVerification, PasswordUser, Reason, ReasonCount, ServiceSettings, StoredService,
        TypeCoverage, Verification, WavePlan,
    },
    ports::PasswordStore,
    user_types::PasswordStrategy,
};
use std::{collections::HashMap, sync::Arc};

#[derive(sqlx::FromRow)]
struct ServiceRow {
    enabled: bool,
    client_id: String,
    secret_hash: Option<String>,
    secret_hint: Option<String>,
    secret_generation: i64,
    secret_set_at: Option<i64>,
    key_hash: Option<String>,
    key_hint: Option<String>,
    key_set_at: Option<i64>,
    context_ttl_secs: i64,
    token_ttl_secs: i64,
    login_origin: Option<String>,
    max_user_failures: i64,
    max_caller_failures: i64,
    failure_window_secs: i64,
    updated_at: i64,
}

fn small(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<ServiceRow> for StoredService {
    fn from(r: ServiceRow) -> Self {
        StoredService {
            settings: ServiceSettings {
                enabled: r.enabled,
                context_ttl_secs: small(r.context_ttl_secs),
                token_ttl_secs: small(r.token_ttl_secs),
                login_origin: r.login_origin,
                max_user_failures: small(r.max_user_failures),
                max_caller_failures: small(r.max_caller_failures),
                failure_window_secs: small(r.failure_window_secs),
            },
            client_id: r.client_id,
            secret_hash: r.secret_hash,
            secret_hint: r.secret_hint,
            secret_generation: count(r.secret_generation),
            secret_set_at: r.secret_set_at.map(time),
            key_hash: r.key_hash,
            key_hint: r.key_hint,
            key_set_at: r.key_set_at.map(time),
            updated_at: time(r.updated_at),
        }
    }
}

#[derive(sqlx::FromRow)]
struct LegacyRow {
    settings: String,
    sealed_secret: Option<Vec<u8>>,
    last_test: Option<String>,
    updated_at: i64,
}

impl TryFrom<LegacyRow> for StoredLegacy {
    type Error = DomainError;
    fn try_from(r: LegacyRow) -> Result<Self> {
        let unreadable =
            |e: serde_json::Error| DomainError::Internal(format!("stored legacy connection: {e}"));
        Ok(StoredLegacy {
            settings: serde_json::from_str(&r.settings).map_err(unreadable)?,
            sealed_secret: r.sealed_secret,
            last_test: r
                .last_test
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(unreadable)?,
            updated_at: time(r.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    scim_id: String,
    source_id: String,
    job_id: uuid::Uuid,
    target_role: String,
    user_type: Option<String>,
    password_strategy: Option<String>,
    settled_at: Option<i64>,
    moved: Option<String>,
}

impl From<UserRow> for PasswordUser {
    fn from(r: UserRow) -> Self {
        PasswordUser {
            scim_id: r.scim_id,
            source_id: r.source_id,
            run_id: RunId(r.job_id),
            target_role: r.target_role,
            user_type: r.user_type,
            strategy: r
                .password_strategy
                .as_deref()
                .and_then(PasswordStrategy::parse),
            created_at: r.settled_at.map(time),
            moved: r.moved,
        }
    }
}

/// The users a wave may take (`$1` the project, `$2` the long tail's cut-off): created
/// by a production run, of a forced-reset type (or of a silent-migration type created
/// before the cut-off), password not moved, not rolled back, in no other wave (one
/// that failed may be tried again); the latest record of each user.
pub(crate) const WAITING_FOR_RESET: &str = "SELECT * FROM (SELECT jr.source_id, jr.scim_id, \
     jr.user_type, jr.password_strategy, ROW_NUMBER() OVER (PARTITION BY jr.source_id \
     ORDER BY jr.settled_at DESC) AS latest \
     FROM job_records jr JOIN jobs j ON j.id = jr.job_id \
     WHERE j.project_id = $1 AND j.target_role = 'production' \
     AND j.kind NOT IN ('invite_wave', 'rollback', 'reconcile') AND jr.state = 'created' \
     AND jr.scim_id IS NOT NULL \
     AND (jr.password_strategy = 'forced_reset' \
     OR (jr.password_strategy = 'silent_migration' AND jr.settled_at < $2)) \
     AND NOT EXISTS (SELECT 1 FROM password_moves m WHERE m.project_id = j.project_id \
     AND m.scim_id = jr.scim_id) \
     AND NOT EXISTS (SELECT 1 FROM job_records d JOIN jobs dj ON dj.id = d.job_id \
     WHERE dj.project_id = j.project_id AND d.scim_id = jr.scim_id \
     AND (d.state = 'deleted' OR (dj.kind = 'invite_wave' \
     AND d.state IN ('pending', 'in_flight', 'updated'))))) w WHERE latest = 1";

/// The long tail's cut-off as bound: none takes no silent-migration user.
pub(crate) fn cut_off(before: Option<DateTime<Utc>>) -> i64 {
    before.map_or(i64::MIN, millis)
}

/// Records a user counts as moved to the target from.
const MOVED_STATES: &str = "('created', 'updated', 'skipped')";

/// Each user a production run put in the target and no rollback deleted since, once
/// (its latest record: a user found again by a later run, or created again after a
/// rollback, is one user): `source_id`, `scim_id`, `user_type`, `password_strategy`.
/// `$1` is the project. A reconciliation only reads users back: its records are not
/// the users'.
pub(crate) const IN_TARGET: &str = "SELECT source_id, scim_id, user_type, password_strategy, \
     member_of FROM (\
     SELECT jr.source_id, jr.scim_id, jr.user_type, jr.password_strategy, jr.member_of, \
     ROW_NUMBER() OVER \
     (PARTITION BY jr.source_id ORDER BY jr.settled_at DESC) AS latest \
     FROM job_records jr JOIN jobs j ON j.id = jr.job_id WHERE j.project_id = $1 \
     AND j.target_role = 'production' \
     AND (j.kind NOT IN ('rollback', 'invite_wave', 'reconcile') \
     OR (j.kind = 'rollback' AND jr.state = 'created')) \
     AND jr.state IN ('created', 'updated', 'skipped') AND jr.scim_id IS NOT NULL \
     AND NOT EXISTS (SELECT 1 FROM job_records d JOIN jobs dj ON dj.id = d.job_id \
     WHERE dj.project_id = j.project_id AND d.scim_id = jr.scim_id AND d.state = 'deleted')\
     ) t WHERE latest = 1";
/// Runs that move users (a rollback deletes them, a wave only changes them, a
/// reconciliation only reads them).
const MOVING_KINDS: &str = "j.kind NOT IN ('rollback', 'invite_wave', 'reconcile')";

const USER_SELECT: &str = "SELECT jr.scim_id, jr.source_id, jr.job_id, j.target_role, \
     jr.user_type, jr.password_strategy, jr.settled_at, \
     (SELECT m.how FROM password_moves m WHERE m.project_id = j.project_id \
     AND m.scim_id = jr.scim_id) AS moved \
     FROM job_records jr JOIN jobs j ON j.id = jr.job_id";

/// The lockout's counts and the user (all `None` when there is none) with their
/// sealed record.
#[derive(sqlx::FromRow)]
struct LoginRow {
    by_user: i64,
    by_caller: i64,
    scim_id: Option<String>,
    source_id: Option<String>,
    job_id: Option<uuid::Uuid>,
    target_role: Option<String>,
    user_type: Option<String>,
    password_strategy: Option<String>,
    settled_at: Option<i64>,
    moved: Option<String>,
    sealed: Option<Vec<u8>>,
}

impl From<LoginRow> for LoginLookup {
    fn from(r: LoginRow) -> Self {
        let user = match (r.scim_id, r.source_id, r.job_id, r.target_role) {
            (Some(scim_id), Some(source_id), Some(job_id), Some(target_role)) => {
                Some(PasswordUser::from(UserRow {
                    scim_id,
                    source_id,
                    job_id,
                    target_role,
                    user_type: r.user_type,
                    password_strategy: r.password_strategy,
                    settled_at: r.settled_at,
                    moved: r.moved,
                }))
            }
            _ => None,
        };
        LoginLookup {
            by_user: small(r.by_user),
            by_caller: small(r.by_caller),
            sealed: user.as_ref().and(r.sealed),
            user,
        }
    }
}

#[derive(sqlx::FromRow)]
struct VerificationRow {
    at: i64,
    scim_id: Option<String>,
    source_id: Option<String>,
    user_type: Option<String>,
    reason: String,
    method: Option<String>,
    caller: String,
}

/// The user a context names, when the verification found one.
fn moved_user(
    scim_id: Option<String>,
    source_id: Option<String>,
    target_role: Option<String>,
    user_type: Option<String>,
) -> Option<MovedUser> {
    Some(MovedUser {
        scim_id: scim_id?,
        source_id: source_id?,
        target_role: target_role?,
        user_type,
    })
}

fn reason(code: &str) -> Result<Reason> {
    Reason::parse(code)
        .ok_or_else(|| DomainError::Internal(format!("stored verification reason {code:?}")))
}

/// A verification's end, to be written with the others that end with it: its context
/// with the answer (the attempt's row follows by trigger).
pub(crate) struct Finish {
    project: ProjectId,
    context: ContextKey,
    verification: NewVerification,
}

/// A status call's read of its answer, to be made with the others asked with it.
pub(crate) struct Take {
    project: ProjectId,
    digest: String,
    user_digest: String,
    now: DateTime<Utc>,
}

/// The logins' writes of one store, grouped: on SQLite's one writer each commit was a
/// turn the other logins queued behind, and on both databases each statement a round
/// trip and a wake-up of the driver's thread.
#[derive(Clone, Default)]
pub(crate) struct LoginWrites {
    finishes: Arc<GroupCommit<Finish, ()>>,
    takes: Arc<GroupCommit<Take, Option<AnsweredContext>>>,
}

/// The projects of a group's items, in the order they first appear.
fn projects_of<T>(items: &[T], project: impl Fn(&T) -> ProjectId) -> Vec<ProjectId> {
    let mut projects = Vec::new();
    for item in items {
        let p = project(item);
        if !projects.contains(&p) {
            projects.push(p);
        }
    }
    projects
}

/// What one statement of takes answered: by context digest, the user name's digest the
/// context is bound to and the answer.
type Taken = HashMap<String, (String, AnsweredContext)>;

/// Hands each take of `project` its answer: a context goes to the first take that asked
/// for it under its own user name; any other take of it gets nothing (read once).
fn hand_out(
    takes: &[Take],
    project: ProjectId,
    taken: Result<Taken>,
    answers: &mut [Option<Result<Option<AnsweredContext>>>],
) {
    let mut rows = match taken {
        Ok(rows) => rows,
        Err(err) => {
            for (take, answer) in takes.iter().zip(answers.iter_mut()) {
                if take.project == project {
                    *answer = Some(Err(err.clone()));
                }
            }
            return;
        }
    };
    for (take, answer) in takes.iter().zip(answers.iter_mut()) {
        if take.project != project {
            continue;
        }
        let mine = rows
            .get(&take.digest)
            .is_some_and(|(bound, _)| *bound == take.user_digest);
        *answer = Some(Ok(if mine {
            rows.remove(&take.digest).map(|(_, answered)| answered)
        } else {
            None
        }));
    }
}

macro_rules! password_store {
    ($name:ident, $db:ty) => {
        impl $name {
            /// The ends of verifications that ended together, in one statement: each
            /// context written with its answer (the attempt's row is the trigger
            /// `password_context_attempt`'s). A context whose status was read before
            /// its end stays as that read left it, and its verification is recorded
            /// all the same.
            async fn write_finishes(&self, finishes: Vec<Finish>) -> Vec<Result<()>> {
                let written = self.try_write_finishes(&finishes).await;
                finishes.iter().map(|_| written.clone()).collect()
            }

            async fn try_write_finishes(&self, finishes: &[Finish]) -> Result<()> {
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO password_contexts (digest, project_id, user_digest, \
                     complete, reason, scim_id, source_id, target_role, user_type, \
                     expires_at, attempted_at, caller, method, counts) ",
                );
                insert.push_values(finishes, |mut row, f| {
                    let (v, user) = (&f.verification, f.verification.user.as_ref());
                    row.push_bind(f.context.digest.clone())
                        .push_bind(f.project.0)
                        .push_bind(v.user_digest.clone())
                        .push_bind(true)
                        .push_bind(v.reason.as_str())
                        .push_bind(user.map(|u| u.scim_id.clone()))
                        .push_bind(user.map(|u| u.source_id.clone()))
                        .push_bind(user.map(|u| u.target_role.clone()))
                        .push_bind(user.and_then(|u| u.user_type.clone()))
                        .push_bind(millis(f.context.expires_at))
                        .push_bind(millis(v.at))
                        .push_bind(v.caller.clone())
                        .push_bind(v.method.clone())
                        .push_bind(v.reason.counts());
                });
                insert.push(" ON CONFLICT (digest) DO NOTHING RETURNING digest");
                let written: Vec<String> = insert
                    .build_query_scalar()
                    .fetch_all(self.service_writes())
                    .await
                    .map_err(internal)?;
                let read_early: Vec<&Finish> = finishes
                    .iter()
                    .filter(|f| !written.contains(&f.context.digest))
                    .collect();
                if read_early.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO password_attempts (project_id, at, user_digest, caller, \
                     scim_id, source_id, user_type, success, reason, method, counts) ",
                );
                insert.push_values(read_early, |mut row, f| {
                    let (v, user) = (&f.verification, f.verification.user.as_ref());
                    row.push_bind(f.project.0)
                        .push_bind(millis(v.at))
                        .push_bind(v.user_digest.clone())
                        .push_bind(v.caller.clone())
                        .push_bind(user.map(|u| u.scim_id.clone()))
                        .push_bind(user.map(|u| u.source_id.clone()))
                        .push_bind(user.and_then(|u| u.user_type.clone()))
                        .push_bind(v.reason.is_success())
                        .push_bind(v.reason.as_str())
                        .push_bind(v.method.clone())
                        .push_bind(v.reason.counts());
                });
                insert.build().execute(self.service_writes()).await.map_err(internal)?;
                Ok(())
            }

            /// The answers of status calls asked together, one statement a project
            /// (a success's move is the trigger `password_context_answered`'s).
            async fn write_takes(
                &self,
                takes: Vec<Take>,
            ) -> Vec<Result<Option<AnsweredContext>>> {
                let mut answers: Vec<Option<Result<Option<AnsweredContext>>>> =
                    takes.iter().map(|_| None).collect();
                for project in projects_of(&takes, |t| t.project) {
                    let asked: Vec<&Take> = takes.iter().filter(|t| t.project == project).collect();
                    let taken = self.take_answers(project, &asked).await;
                    hand_out(&takes, project, taken, &mut answers);
                }
                answers.into_iter().map(|a| a.unwrap_or(Ok(None))).collect()
            }

            /// Marks answered the contexts of `asked` that ended, have not been read and
            /// are bound to the user name asked with; returns them.
            async fn take_answers(&self, project: ProjectId, asked: &[&Take]) -> Result<Taken> {
                let Some(now) = asked.iter().map(|t| t.now).max() else {
                    return Ok(Taken::new());
                };
                let mut update = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE password_contexts SET taken_as = 'answered', taken_at = ",
                );
                update
                    .push_bind(millis(now))
                    .push(" WHERE project_id = ")
                    .push_bind(project.0)
                    .push(" AND taken_as IS NULL AND reason IS NOT NULL AND expires_at > ")
                    .push_bind(millis(now))
                    // The digests alone let SQLite find the rows by the primary key; the
                    // pairs bind each to its user name.
                    .push(" AND digest IN (");
                let mut list = update.separated(", ");
                for take in asked {
                    list.push_bind(take.digest.clone());
                }
                update.push(") AND (digest, user_digest) IN (");
                update.push_values(asked, |mut row, take| {
                    row.push_bind(take.digest.clone()).push_bind(take.user_digest.clone());
                });
                update.push(
                    ") RETURNING digest, user_digest, reason, scim_id, source_id, \
                     target_role, user_type",
                );
                type Row = (
                    String,
                    String,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let rows: Vec<Row> = update
                    .build_query_as()
                    .fetch_all(self.service_writes())
                    .await
                    .map_err(internal)?;
                let mut taken = Taken::new();
                for (digest, user_digest, code, scim_id, source_id, role, user_type) in rows {
                    let answered = AnsweredContext {
                        reason: reason(&code)?,
                        user: moved_user(scim_id, source_id, role, user_type),
                    };
                    taken.insert(digest, (user_digest, answered));
                }
                Ok(taken)
            }
        }

        #[async_trait]
        impl PasswordStore for $name {
            async fn password_service(&self, project: ProjectId) -> Result<Option<StoredService>> {
                let row: Option<ServiceRow> = sqlx::query_as(
                    "SELECT enabled, client_id, secret_hash, secret_hint, secret_generation, \
                     secret_set_at, key_hash, key_hint, key_set_at, context_ttl_secs, \
                     token_ttl_secs, login_origin, max_user_failures, max_caller_failures, \
                     failure_window_secs, updated_at FROM password_services WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(row.map(StoredService::from))
            }

            async fn legacy_connection(&self, project: ProjectId) -> Result<Option<StoredLegacy>> {
                let row: Option<LegacyRow> = sqlx::query_as(
                    "SELECT settings, sealed_secret, last_test, updated_at \
                     FROM legacy_connections WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                row.map(StoredLegacy::try_from).transpose()
            }

            async fn put_legacy_connection(
                &self,
                project: ProjectId,
                settings: &LegacySettings,
                sealed_secret: Option<&[u8]>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let settings = serde_json::to_string(settings)
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO legacy_connections (project_id, settings, sealed_secret, \
                         last_test, updated_at) VALUES ($1, $2, $3, NULL, $4) \
                         ON CONFLICT (project_id) DO UPDATE SET settings = excluded.settings, \
                         sealed_secret = excluded.sealed_secret, last_test = NULL, \
                         updated_at = excluded.updated_at",
                    )
                    .bind(project.0)
                    .bind(settings)
                    .bind(sealed_secret)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn set_legacy_test(
                &self,
                project: ProjectId,
                test: &LegacyTest,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let test =
                    serde_json::to_string(test).map_err(|e| DomainError::Internal(e.to_string()))?;
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE legacy_connections SET last_test = $1 WHERE project_id = $2")
                        .bind(test)
                        .bind(project.0),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn delete_legacy_connection(
                &self,
                project: ProjectId,
                audit: &NewAuditEntry,
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                let n = Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM legacy_connections WHERE project_id = $1")
                        .bind(project.0),
                )
                .await?;
                if n == 0 {
                    return Ok(false);
                }
                Self::commit(tx, audit).await?;
                Ok(true)
            }

            async fn save_password_service(
                &self,
                project: ProjectId,
                settings: &ServiceSettings,
                client_id: &str,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO password_services (project_id, enabled, client_id, \
                     secret_generation, context_ttl_secs, token_ttl_secs, login_origin, \
                     max_user_failures, max_caller_failures, failure_window_secs, updated_at) \
                     VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (project_id) DO UPDATE SET enabled = excluded.enabled, \
                     context_ttl_secs = excluded.context_ttl_secs, \
                     token_ttl_secs = excluded.token_ttl_secs, \
                     login_origin = excluded.login_origin, \
                     max_user_failures = excluded.max_user_failures, \
                     max_caller_failures = excluded.max_caller_failures, \
                     failure_window_secs = excluded.failure_window_secs, \
                     updated_at = excluded.updated_at",
                )
                .bind(project.0)
                .bind(settings.enabled)
                .bind(client_id)
                .bind(i64::from(settings.context_ttl_secs))
                .bind(i64::from(settings.token_ttl_secs))
                .bind(&settings.login_origin)
                .bind(i64::from(settings.max_user_failures))
                .bind(i64::from(settings.max_caller_failures))
                .bind(i64::from(settings.failure_window_secs))
                .bind(millis(at))
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                Self::commit(tx, audit).await
            }

            async fn set_service_secret(
                &self,
                project: ProjectId,
                hash: &str,
                hint: &str,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE password_services SET secret_hash = $1, secret_hint = $2, \
                         secret_generation = secret_generation + 1, secret_set_at = $3, \
                         updated_at = $3 WHERE project_id = $4",
                    )
                    .bind(hash)
                    .bind(hint)
                    .bind(millis(at))
                    .bind(project.0),
                )
                .await?;
                super::not_found_unless_one(n, "password service")?;
                Self::commit(tx, audit).await
            }

            async fn set_service_key(
                &self,
                project: ProjectId,
                key: Option<(&str, &str)>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE password_services SET key_hash = $1, key_hint = $2, \
                         key_set_at = $3, updated_at = $4 WHERE project_id = $5",
                    )
                    .bind(key.map(|k| k.0))
                    .bind(key.map(|k| k.1))
                    .bind(key.map(|_| millis(at)))
                    .bind(millis(at))
                    .bind(project.0),
                )
                .await?;
                super::not_found_unless_one(n, "password service")?;
                Self::commit(tx, audit).await
            }

            async fn password_context_complete(
                &self,
                project: ProjectId,
                digest: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<bool>> {
                sqlx::query_scalar(
                    "SELECT complete FROM password_contexts WHERE digest = $1 \
                     AND project_id = $2 AND expires_at > $3",
                )
                .bind(digest)
                .bind(project.0)
                .bind(millis(now))
                .fetch_optional(self.service_reads())
                .await
                .map_err(internal)
            }

            async fn take_password_context(
                &self,
                project: ProjectId,
                digest: &str,
                user_digest: &str,
                now: DateTime<Utc>,
            ) -> Result<Option<AnsweredContext>> {
                let take = Take {
                    project,
                    digest: digest.to_string(),
                    user_digest: user_digest.to_string(),
                    now,
                };
                let store = self.clone();
                self.logins
                    .takes
                    .submit(take, move |takes| {
                        let store = store.clone();
                        async move { store.write_takes(takes).await }
                    })
                    .await
            }

            async fn discard_password_context(
                &self,
                project: ProjectId,
                digest: &str,
                now: DateTime<Utc>,
                hold_until: Option<DateTime<Utc>>,
            ) -> Result<Discarded> {
                type Row = (
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                );
                let row: Option<Row> = sqlx::query_as(
                    "UPDATE password_contexts SET taken_as = 'discarded', taken_at = $1 \
                     WHERE digest = $2 AND project_id = $3 AND taken_as IS NULL \
                     AND expires_at > $1 \
                     RETURNING user_digest, reason, scim_id, source_id, target_role, user_type",
                )
                .bind(millis(now))
                .bind(digest)
                .bind(project.0)
                .fetch_optional(self.service_writes())
                .await
                .map_err(internal)?;
                if let Some((user_digest, code, scim_id, source_id, role, user_type)) = row {
                    return Ok(Discarded::Taken {
                        user_digest,
                        reason: code.as_deref().map(reason).transpose()?,
                        user: moved_user(scim_id, source_id, role, user_type),
                    });
                }
                let Some(until) = hold_until else {
                    return Ok(Discarded::Gone);
                };
                // Written with no answer, so the attempt trigger leaves it alone; a
                // context read already is not marked twice.
                let held = sqlx::query(
                    "INSERT INTO password_contexts (digest, project_id, user_digest, \
                     complete, expires_at, taken_as, taken_at) \
                     VALUES ($1, $2, '', TRUE, $3, 'discarded', $4) \
                     ON CONFLICT (digest) DO NOTHING",
                )
                .bind(digest)
                .bind(project.0)
                .bind(millis(until))
                .bind(millis(now))
                .execute(self.service_writes())
                .await
                .map_err(internal)?
                .rows_affected();
                Ok(if held == 1 {
                    Discarded::Held
                } else {
                    Discarded::Gone
                })
            }

            async fn purge_password_contexts(&self, before: DateTime<Utc>) -> Result<u64> {
                self.execute(
                    sqlx::query("DELETE FROM password_contexts WHERE expires_at < $1")
                        .bind(millis(before)),
                )
                .await
            }

            async fn mark_password_moved(
                &self,
                project: ProjectId,
                user: &MovedUser,
                how: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO password_moves (project_id, scim_id, source_id, \
                     target_role, user_type, how, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (project_id, scim_id) DO NOTHING",
                )
                .bind(project.0)
                .bind(&user.scim_id)
                .bind(&user.source_id)
                .bind(&user.target_role)
                .bind(&user.user_type)
                .bind(how)
                .bind(millis(at))
                .execute(&self.bulk)
                .await
                .map_err(internal)?;
                Ok(())
            }

            async fn password_login(
                &self,
                project: ProjectId,
                scim_id: &str,
                user_digest: &str,
                caller: &str,
                since: DateTime<Utc>,
            ) -> Result<LoginLookup> {
                // One round trip instead of three: a login's reads were most of its cost.
                let row: LoginRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT (SELECT COUNT(*) FROM password_attempts WHERE project_id = $1 \
                     AND user_digest = $2 AND at >= $4 AND counts = TRUE) AS by_user, \
                     (SELECT COUNT(*) FROM password_attempts WHERE project_id = $1 \
                     AND caller = $3 AND at >= $4 AND counts = TRUE) AS by_caller, \
                     u.scim_id, u.source_id, u.job_id, u.target_role, u.user_type, \
                     u.password_strategy, u.settled_at, u.moved, \
                     (SELECT COALESCE(c.data, r.data) FROM records r \
                     LEFT JOIN record_corrections c ON c.project_id = r.project_id \
                     AND c.source_id = r.source_id \
                     WHERE r.project_id = $1 AND r.source_id = u.source_id) AS sealed \
                     FROM (SELECT 1 AS one) o LEFT JOIN ({USER_SELECT} \
                     WHERE jr.scim_id = $5 AND j.project_id = $1 \
                     AND {MOVING_KINDS} AND jr.state IN {MOVED_STATES} \
                     ORDER BY jr.settled_at DESC LIMIT 1) u ON TRUE"
                )))
                .bind(project.0)
                .bind(user_digest)
                .bind(caller)
                .bind(millis(since))
                .bind(scim_id)
                .fetch_one(self.service_reads())
                .await
                .map_err(internal)?;
                Ok(row.into())
            }

            async fn finish_verification(
                &self,
                project: ProjectId,
                context: &ContextKey,
                v: &NewVerification,
            ) -> Result<()> {
                let finish = Finish {
                    project,
                    context: context.clone(),
                    verification: v.clone(),
                };
                let store = self.clone();
                self.logins
                    .finishes
                    .submit(finish, move |finishes| {
                        let store = store.clone();
                        async move { store.write_finishes(finishes).await }
                    })
                    .await
            }

            async fn verifications(
                &self,
                project: ProjectId,
                page: PageRequest,
            ) -> Result<Page<Verification>> {
                let rows: Vec<VerificationRow> = sqlx::query_as(
                    "SELECT at, scim_id, source_id, user_type, reason, method, caller \
                     FROM password_attempts WHERE project_id = $1 \
                     ORDER BY at DESC, id DESC LIMIT $2 OFFSET $3",
                )
                .bind(project.0)
                .bind(super::limit(page))
                .bind(super::offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM password_attempts WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                let items = rows
                    .into_iter()
                    .map(|r| {
                        Ok(Verification {
                            at: time(r.at),
                            scim_id: r.scim_id,
                            source_id: r.source_id,
                            user_type: r.user_type,
                            reason: reason(&r.reason)?,
                            method: r.method,
                            caller: r.caller,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Page {
                    items,
                    total: count(total),
                    offset: page.offset,
                    limit: page.limit,
                })
            }

            async fn password_coverage(&self, project: ProjectId, days: u32) -> Result<Coverage> {
                let created: Vec<(Option<String>, Option<String>, i64)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT user_type, password_strategy, COUNT(*) FROM ({IN_TARGET}) u \
                         GROUP BY user_type, password_strategy"
                    )))
                    .bind(project.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?;
                let moved: Vec<(Option<String>, String, i64)> = sqlx::query_as(
                    "SELECT user_type, how, COUNT(*) FROM password_moves WHERE project_id = $1 \
                     AND target_role = 'production' GROUP BY user_type, how",
                )
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let mut by_type: Vec<TypeCoverage> = Vec::new();
                for (user_type, strategy, n) in created {
                    let strategy = strategy.as_deref().and_then(PasswordStrategy::parse);
                    match by_type.iter_mut().find(|t| t.user_type == user_type) {
                        Some(t) => t.created += count(n),
                        None => by_type.push(TypeCoverage {
                            user_type,
                            strategy,
                            created: count(n),
                            verified: 0,
                            reset: 0,
                            waiting: 0,
                        }),
                    }
                }
                for (user_type, how, n) in moved {
                    let Some(t) = by_type.iter_mut().find(|t| t.user_type == user_type) else {
                        continue;
                    };
                    match how.as_str() {
                        "verified" => t.verified += count(n),
                        _ => t.reset += count(n),
                    }
                }
                for t in &mut by_type {
                    t.waiting = t.created.saturating_sub(t.verified + t.reset);
                }
                by_type.sort_by(|a, b| a.user_type.cmp(&b.user_type));
                const DAY: i64 = 86_400_000;
                let since = Utc::now() - chrono::Duration::days(i64::from(days));
                let daily: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT at / 86400000 AS day, how, COUNT(*) FROM password_moves \
                     WHERE project_id = $1 AND target_role = 'production' AND at >= $2 \
                     GROUP BY at / 86400000, how ORDER BY day",
                )
                .bind(project.0)
                .bind(millis(since))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let mut by_day: Vec<DayCoverage> = Vec::new();
                for (day, how, n) in daily {
                    let label = time(day * DAY).format("%Y-%m-%d").to_string();
                    if by_day.last().is_none_or(|d| d.day != label) {
                        by_day.push(DayCoverage {
                            day: label,
                            verified: 0,
                            reset: 0,
                        });
                    }
                    if let Some(d) = by_day.last_mut() {
                        match how.as_str() {
                            "verified" => d.verified += count(n),
                            _ => d.reset += count(n),
                        }
                    }
                }
                let outcomes: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT reason, COUNT(*) FROM password_attempts WHERE project_id = $1 \
                     GROUP BY reason",
                )
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let mut outcomes = outcomes
                    .into_iter()
                    .map(|(code, n)| {
                        let reason = reason(&code)?;
                        Ok(ReasonCount {
                            reason,
                            label: reason.label().into(),
                            count: count(n),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                outcomes.sort_by(|a, b| b.count.cmp(&a.count));
                Ok(Coverage {
                    by_type,
                    by_day,
                    outcomes,
                })
            }

            async fn rehearsal_candidates(
                &self,
                project: ProjectId,
                limit: u32,
            ) -> Result<Vec<PasswordUser>> {
                let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{USER_SELECT} WHERE jr.job_id = (SELECT id FROM jobs WHERE project_id = $1 \
                     AND target_role = 'test' AND kind <> 'rollback' \
                     ORDER BY created_at DESC LIMIT 1) \
                     AND jr.state = 'created' AND jr.scim_id IS NOT NULL \
                     AND (jr.password_strategy IS NULL \
                     OR jr.password_strategy = 'silent_migration') \
                     AND NOT EXISTS (SELECT 1 FROM password_moves m WHERE m.project_id = $1 \
                     AND m.scim_id = jr.scim_id) ORDER BY jr.seq LIMIT $2"
                )))
                .bind(project.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(rows.into_iter().map(PasswordUser::from).collect())
            }

            async fn wave_plan(&self, project: ProjectId) -> Result<Option<WavePlan>> {
                let text: Option<String> =
                    sqlx::query_scalar("SELECT plan FROM password_wave_plans WHERE project_id = $1")
                        .bind(project.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(internal)?;
                text.map(|t| {
                    serde_json::from_str(&t)
                        .map_err(|e| DomainError::Internal(format!("stored wave plan: {e}")))
                })
                .transpose()
            }

            async fn save_wave_plan(
                &self,
                project: ProjectId,
                plan: &WavePlan,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let text = serde_json::to_string(plan)
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO password_wave_plans (project_id, plan, enabled, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE SET \
                     plan = excluded.plan, enabled = excluded.enabled, \
                     updated_at = excluded.updated_at",
                )
                .bind(project.0)
                .bind(text)
                .bind(plan.enabled)
                .bind(millis(at))
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                Self::commit(tx, audit).await
            }

            async fn enabled_wave_plans(&self) -> Result<Vec<(ProjectId, WavePlan)>> {
                let rows: Vec<(uuid::Uuid, String)> = sqlx::query_as(
                    "SELECT w.project_id, w.plan FROM password_wave_plans w \
                     JOIN projects p ON p.id = w.project_id \
                     WHERE w.enabled = TRUE AND p.archived = FALSE",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                rows.into_iter()
                    .map(|(id, text)| {
                        let plan = serde_json::from_str(&text)
                            .map_err(|e| DomainError::Internal(format!("stored wave plan: {e}")))?;
                        Ok((ProjectId(id), plan))
                    })
                    .collect()
            }

            async fn invited_since(&self, project: ProjectId, since: DateTime<Utc>) -> Result<u64> {
                // PostgreSQL sums BIGINTs into NUMERIC: cast back.
                let n: i64 = sqlx::query_scalar(
                    "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) FROM jobs \
                     WHERE project_id = $1 AND kind = 'invite_wave' AND created_at >= $2",
                )
                .bind(project.0)
                .bind(millis(since))
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }

            async fn waiting_for_reset(
                &self,
                project: ProjectId,
                long_tail_before: Option<DateTime<Utc>>,
            ) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM ({WAITING_FOR_RESET}) waiting"
                )))
                .bind(project.0)
                .bind(cut_off(long_tail_before))
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }

            async fn moved_among(
                &self,
                project: ProjectId,
                scim_ids: &[String],
            ) -> Result<Vec<String>> {
                if scim_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT scim_id FROM password_moves WHERE project_id = ",
                );
                query.push_bind(project.0).push(" AND scim_id IN (");
                let mut list = query.separated(", ");
                for id in scim_ids {
                    list.push_bind(id.clone());
                }
                query.push(")");
                query
                    .build_query_scalar()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)
            }

            async fn mark_wave_moved(
                &self,
                run: RunId,
                seqs: &[u64],
                at: DateTime<Utc>,
            ) -> Result<()> {
                if seqs.is_empty() {
                    return Ok(());
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO password_moves (project_id, scim_id, source_id, target_role, \
                     user_type, how, at) SELECT j.project_id, jr.scim_id, jr.source_id, \
                     j.target_role, jr.user_type, 'reset', ",
                );
                query
                    .push_bind(millis(at))
                    .push(
                        " FROM job_records jr JOIN jobs j ON j.id = jr.job_id \
                         WHERE jr.scim_id IS NOT NULL AND jr.job_id = ",
                    )
                    .push_bind(run.0)
                    .push(" AND jr.seq IN (");
                let mut list = query.separated(", ");
                for seq in seqs {
                    list.push_bind(*seq as i64);
                }
                query.push(") ON CONFLICT (project_id, scim_id) DO NOTHING");
                query.build().execute(&self.pool).await.map_err(internal)?;
                Ok(())
            }

            async fn silent_users(&self, project: ProjectId) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM ({IN_TARGET}) u \
                     WHERE password_strategy = 'silent_migration'"
                )))
                .bind(project.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }

            async fn passwords_moved(&self, project: ProjectId) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM password_moves \
                     WHERE project_id = $1 AND target_role = 'production'",
                )
                .bind(project.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }
        }
    };
}

password_store!(SqliteStore, sqlx::Sqlite);
password_store!(PostgresStore, sqlx::Postgres);
