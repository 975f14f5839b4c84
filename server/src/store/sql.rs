//! The store, written once in SQL that both SQLite and PostgreSQL accept (`$N`
//! parameters, `RETURNING`, `ON CONFLICT`) and expanded by `sql_store!` into two typed
//! implementations, one per driver. Dialect differences live in the migrations.
//!
//! Some statements are assembled with `format!` (column lists, optional filters). They
//! are built only from the constant fragments in this file; every value is bound as a
//! parameter, which is why wrapping them in `AssertSqlSafe` is sound.

use super::rows::{
    AccountHashRow, AccountRow, AuditRow, ErrorRow, GrantRow, ProjectRow, UploadRow, db_error,
    internal, millis,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    accounts::{Account, AccountStatus, NewAccount},
    api_tokens::{ApiToken, NewApiToken},
    audit::{AuditEntry, AuditPage, AuditQuery, NewAuditEntry},
    ids::{AccountId, ApiTokenId, ProjectId, UploadId},
    pagination::{Page, PageRequest},
    ports::{
        AccountStore, ApiTokenStore, AuditStore, InviteStore, ProjectStore, SessionRecord,
        SessionStore, SetupStore, ThrottleStore, TokenGrant, UploadStore,
    },
    projects::{Project, ProjectDraft, ProjectFilter},
    roles::Role,
    throttle::{FailureStats, ThrottleScope},
    uploads::{NewUpload, ParseProgress, SealedRecord, StoredError, Upload, UploadStatus},
};
use sqlx::AssertSqlSafe;

const ACCOUNT_COLUMNS: &str = "id, email, display_name, role, status, created_at, last_sign_in_at";
const PROJECT_COLUMNS: &str =
    "id, name, source_kind, description, archived, created_at, updated_at";
const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.hint, t.role, t.created_by, \
     a.email AS created_by_email, t.created_at, t.last_used_at, t.revoked_at, \
     a.role AS creator_role, a.status AS creator_status \
     FROM api_tokens t LEFT JOIN accounts a ON a.id = t.created_by";
const UPLOAD_COLUMNS: &str = "id, project_id, file_name, size_bytes, sha256, status, format, \
     source, bytes_read, rows_ok, rows_failed, records_new, records_changed, records_unchanged, \
     records_missing, error, created_by, created_at, parse_started_at, parse_finished_at";
const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (at, actor_id, channel, action, object_kind, object_id, project_id, address, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Rows per multi-row `INSERT`: 8 parameters each stays well under SQLite's 32,766
/// and PostgreSQL's 65,535 parameters per statement.
const ROWS_PER_STATEMENT: usize = 250;

fn limit(page: PageRequest) -> i64 {
    i64::from(page.limit)
}

fn offset(page: PageRequest) -> i64 {
    i64::try_from(page.offset).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn not_found_unless_one(rows: u64, what: &str) -> Result<()> {
    if rows == 0 {
        Err(DomainError::NotFound(what.to_string()))
    } else {
        Ok(())
    }
}

mod assessments;
mod jobs;
mod mappings;
mod plan;
mod targets;

macro_rules! sql_store {
    ($(#[$doc:meta])* $name:ident, $db:ty, $conn:ty) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pool: sqlx::Pool<$db>,
            /// Where batches of records are written. On SQLite, one connection: the
            /// pool hands out connections in turn, and each would find its page cache
            /// stale after the others' writes and read the pages again.
            bulk: sqlx::Pool<$db>,
        }

        impl $name {
            pub fn new(pool: sqlx::Pool<$db>) -> Self {
                Self { bulk: pool.clone(), pool }
            }

            pub fn with_bulk_pool(pool: sqlx::Pool<$db>, bulk: sqlx::Pool<$db>) -> Self {
                Self { pool, bulk }
            }

            /// One row by its id, converted to its domain type.
            async fn by_id<R, T>(&self, sql: String, id: uuid::Uuid) -> Result<Option<T>>
            where
                R: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
                T: TryFrom<R, Error = DomainError>,
            {
                sqlx::query_as::<_, R>(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(T::try_from)
                    .transpose()
            }

            async fn begin(&self) -> Result<sqlx::Transaction<'static, $db>> {
                self.pool.begin().await.map_err(internal)
            }

            /// A transaction on the bulk pool, for the writes a run makes batch after
            /// batch. On SQLite its one connection queues them in process: writers
            /// racing on separate connections would instead sleep in SQLite's busy
            /// handler (up to 100 ms a turn) while the lock is long free.
            async fn begin_bulk(&self) -> Result<sqlx::Transaction<'static, $db>> {
                self.bulk.begin().await.map_err(internal)
            }

            /// Runs one statement and returns how many rows it touched.
            async fn exec<'q>(
                conn: &mut $conn,
                statement: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            ) -> Result<u64> {
                Ok(statement.execute(&mut *conn).await.map_err(internal)?.rows_affected())
            }

            /// Runs one statement outside a transaction; returns how many rows it touched.
            async fn run<'q>(
                &self,
                statement: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            ) -> Result<u64> {
                Ok(statement.execute(&self.pool).await.map_err(internal)?.rows_affected())
            }

            /// The last step of every change: its audit entry, then the commit.
            async fn commit(mut tx: sqlx::Transaction<'static, $db>, audit: &NewAuditEntry) -> Result<()> {
                Self::audit(&mut tx, audit).await?;
                tx.commit().await.map_err(internal)
            }

            async fn audit(conn: &mut $conn, entry: &NewAuditEntry) -> Result<()> {
                sqlx::query(INSERT_AUDIT)
                    .bind(millis(entry.at))
                    .bind(entry.actor.map(|a| a.0))
                    .bind(&entry.channel)
                    .bind(entry.action.code())
                    .bind(entry.object_kind.as_str())
                    .bind(&entry.object_id)
                    .bind(entry.project_id.map(|p| p.0))
                    .bind(&entry.address)
                    .bind(&entry.detail)
                    .execute(&mut *conn)
                    .await
                    .map_err(internal)?;
                Ok(())
            }

            async fn insert_account_in(conn: &mut $conn, account: &NewAccount) -> Result<()> {
                sqlx::query(
                    "INSERT INTO accounts (id, email, display_name, role, status, password_hash, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(account.id.0)
                .bind(&account.email)
                .bind(&account.display_name)
                .bind(account.role.as_str())
                .bind(account.status.as_str())
                .bind(&account.password_hash)
                .bind(millis(account.created_at))
                .execute(&mut *conn)
                .await
                .map_err(db_error("a member with this e-mail address already exists"))
                .map_err(|e| match e {
                    DomainError::Conflict(m) => DomainError::invalid("email", m),
                    other => other,
                })?;
                Ok(())
            }

            async fn load_account(&self, id: AccountId) -> Result<Account> {
                self.account(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("member".into()))
            }
        }

        #[async_trait]
        impl AccountStore for $name {
            async fn count_accounts(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(count(n))
            }

            async fn create_first_owner(
                &self,
                account: &NewAccount,
                audit: &NewAuditEntry,
            ) -> Result<Account> {
                let mut tx = self.begin().await?;
                // The conditional insert makes "only while no account exists" atomic.
                let inserted = Self::exec(&mut tx, sqlx::query("INSERT INTO accounts (id, email, display_name, role, status, password_hash, \
                     created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
                     WHERE NOT EXISTS (SELECT 1 FROM accounts)")
                .bind(account.id.0)
                .bind(&account.email)
                .bind(&account.display_name)
                .bind(account.role.as_str())
                .bind(account.status.as_str())
                .bind(&account.password_hash)
                .bind(millis(account.created_at))).await?;
                if inserted == 0 {
                    return Err(DomainError::Conflict(
                        "Ferry is already set up; sign in instead".into(),
                    ));
                }
                Self::commit(tx, audit).await?;
                self.load_account(account.id).await
            }

            async fn insert_account(
                &self,
                account: &NewAccount,
                audit: &NewAuditEntry,
            ) -> Result<Account> {
                let mut tx = self.begin().await?;
                Self::insert_account_in(&mut tx, account).await?;
                Self::commit(tx, audit).await?;
                self.load_account(account.id).await
            }

            async fn account(&self, id: AccountId) -> Result<Option<Account>> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
                self.by_id::<AccountRow, Account>(sql, id.0).await
            }

            async fn account_with_hash(
                &self,
                email: &str,
            ) -> Result<Option<(Account, Option<String>)>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE email = $1"
                );
                let row = sqlx::query_as::<_, AccountHashRow>(AssertSqlSafe(sql))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?;
                row.map(|r| Ok((Account::try_from(r.account)?, r.password_hash)))
                    .transpose()
            }

            async fn password_hash(&self, id: AccountId) -> Result<Option<String>> {
                let hash: Option<Option<String>> =
                    sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(hash.flatten())
            }

            async fn set_password(
                &self,
                id: AccountId,
                hash: &str,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = $3, \
                     status = CASE WHEN status = 'invited' THEN 'active' ELSE status END \
                     WHERE id = $1")
                .bind(id.0)
                .bind(hash)
                .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                Self::commit(tx, audit).await
            }

            async fn set_role(&self, id: AccountId, role: Role, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE accounts SET role = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(role.as_str())
                    .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                if role != Role::Support {
                    // Assignments only mean something for support staff.
                    Self::exec(&mut tx, sqlx::query("DELETE FROM project_support WHERE account_id = $1")
                        .bind(id.0)).await?;
                }
                Self::commit(tx, audit).await
            }

            async fn set_status(
                &self,
                id: AccountId,
                status: AccountStatus,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows =
                    Self::exec(&mut tx, sqlx::query("UPDATE accounts SET status = $2, updated_at = $3 WHERE id = $1")
                        .bind(id.0)
                        .bind(status.as_str())
                        .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                if status == AccountStatus::Disabled {
                    for sql in [
                        "DELETE FROM sessions WHERE account_id = $1",
                        "DELETE FROM invites WHERE account_id = $1",
                    ] {
                        Self::exec(&mut tx, sqlx::query(sql).bind(id.0)).await?;
                    }
                }
                Self::commit(tx, audit).await
            }

            async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id LIMIT $1 OFFSET $2"
                );
                let items = sqlx::query_as::<_, AccountRow>(AssertSqlSafe(sql))
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Account::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total = self.count_accounts().await?;
                Ok(Page { items, total, offset: page.offset, limit: page.limit })
            }

            async fn count_active_owners(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM accounts WHERE role = 'owner' AND status = 'active'",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }
        }

        #[async_trait]
        impl SessionStore for $name {
            async fn create_session(
                &self,
                token_hash: &str,
                account: AccountId,
                created_at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("INSERT INTO sessions (token_hash, account_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(account.0)
                .bind(millis(created_at))
                .bind(millis(expires_at))).await?;
                Self::exec(&mut tx, sqlx::query("UPDATE accounts SET last_sign_in_at = $2 WHERE id = $1")
                    .bind(account.0)
                    .bind(millis(created_at))).await?;
                Self::commit(tx, audit).await
            }

            async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
                let row: Option<(uuid::Uuid, i64)> = sqlx::query_as(
                    "SELECT account_id, expires_at FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(row.map(|(account, expires)| SessionRecord {
                    account_id: AccountId(account),
                    expires_at: super::rows::time(expires),
                }))
            }

            async fn delete_session(
                &self,
                token_hash: &str,
                audit: Option<&NewAuditEntry>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)).await?;
                if let Some(audit) = audit {
                    Self::audit(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(internal)
            }

            async fn delete_other_sessions(&self, account: AccountId, keep_hash: &str) -> Result<()> {
                self.run(sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2")
                    .bind(account.0)
                    .bind(keep_hash)).await?;
                Ok(())
            }

            async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
                self.run(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(millis(now))).await
            }
        }

        #[async_trait]
        impl SetupStore for $name {
            async fn add_setup_token(&self, token_hash: &str, created_at: DateTime<Utc>) -> Result<()> {
                self.run(sqlx::query("INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)")
                    .bind(token_hash)
                    .bind(millis(created_at))).await?;
                Ok(())
            }

            async fn setup_token_exists(&self, token_hash: &str, since: DateTime<Utc>) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND created_at >= $2",
                )
                .bind(token_hash)
                .bind(millis(since))
                .fetch_one(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(n > 0)
            }

            async fn clear_setup_tokens(&self) -> Result<()> {
                self.run(sqlx::query("DELETE FROM setup_tokens")).await?;
                Ok(())
            }
        }

        #[async_trait]
        impl InviteStore for $name {
            async fn put_invite(
                &self,
                token_hash: &str,
                account: AccountId,
                expires_at: DateTime<Utc>,
            ) -> Result<()> {
                self.run(sqlx::query("INSERT INTO invites (token_hash, account_id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash, \
                     expires_at = excluded.expires_at")
                .bind(token_hash)
                .bind(account.0)
                .bind(millis(expires_at))).await?;
                Ok(())
            }

            async fn invite(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<AccountId>> {
                let id: Option<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT account_id FROM invites WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(millis(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(id.map(AccountId))
            }

            async fn delete_invites(&self, account: AccountId) -> Result<()> {
                self.run(sqlx::query("DELETE FROM invites WHERE account_id = $1")
                    .bind(account.0)).await?;
                Ok(())
            }
        }

        #[async_trait]
        impl ThrottleStore for $name {
            async fn record_failure(
                &self,
                scope: ThrottleScope,
                key: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                self.run(sqlx::query("INSERT INTO sign_in_failures (scope, key, at) VALUES ($1, $2, $3)")
                    .bind(scope.as_str())
                    .bind(key)
                    .bind(millis(at))).await?;
                Ok(())
            }

            async fn failures_since(
                &self,
                scope: ThrottleScope,
                key: &str,
                since: DateTime<Utc>,
            ) -> Result<FailureStats> {
                let (n, oldest): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(at) FROM sign_in_failures \
                     WHERE scope = $1 AND key = $2 AND at >= $3",
                )
                .bind(scope.as_str())
                .bind(key)
                .bind(millis(since))
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(FailureStats {
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                    oldest: oldest.map(super::rows::time),
                })
            }

            async fn clear_failures(&self, scope: ThrottleScope, key: &str) -> Result<()> {
                self.run(sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1 AND key = $2")
                    .bind(scope.as_str())
                    .bind(key)).await?;
                Ok(())
            }

            async fn withdraw_failure(
                &self,
                scope: ThrottleScope,
                key: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                self.run(sqlx::query(
                    "DELETE FROM sign_in_failures WHERE id = (SELECT MAX(id) FROM sign_in_failures \
                     WHERE scope = $1 AND key = $2 AND at = $3)",
                )
                .bind(scope.as_str())
                .bind(key)
                .bind(millis(at))).await?;
                Ok(())
            }

            async fn purge_failures_before(&self, before: DateTime<Utc>) -> Result<u64> {
                self.run(sqlx::query("DELETE FROM sign_in_failures WHERE at < $1")
                    .bind(millis(before))).await
            }
        }

        #[async_trait]
        impl ProjectStore for $name {
            async fn insert_project(&self, project: &Project, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("INSERT INTO projects (id, name, source_kind, description, archived, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(project.id.0)
                .bind(&project.name)
                .bind(project.source_kind.as_str())
                .bind(&project.description)
                .bind(project.archived)
                .bind(millis(project.created_at))
                .bind(millis(project.updated_at))).await?;
                Self::commit(tx, audit).await
            }

            async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
                let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1");
                self.by_id::<ProjectRow, Project>(sql, id.0).await
            }

            async fn list_projects(
                &self,
                filter: ProjectFilter,
                visible_to: Option<AccountId>,
                page: PageRequest,
            ) -> Result<Page<Project>> {
                let mut conditions = vec!["TRUE"];
                if !filter.include_archived {
                    conditions.push("archived = FALSE");
                }
                if visible_to.is_some() {
                    conditions
                        .push("id IN (SELECT project_id FROM project_support WHERE account_id = $1)");
                }
                let where_clause = conditions.join(" AND ");
                let first_page_param = if visible_to.is_some() { 2 } else { 1 };
                let sql = format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects WHERE {where_clause} \
                     ORDER BY created_at DESC, id LIMIT ${first_page_param} OFFSET ${}",
                    first_page_param + 1
                );
                let mut query = sqlx::query_as::<_, ProjectRow>(AssertSqlSafe(sql));
                let count_sql = format!("SELECT COUNT(*) FROM projects WHERE {where_clause}");
                let mut count_query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql));
                if let Some(account) = visible_to {
                    query = query.bind(account.0);
                    count_query = count_query.bind(account.0);
                }
                let items = query
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Project::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total = count_query.fetch_one(&self.pool).await.map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn update_project(
                &self,
                id: ProjectId,
                draft: &ProjectDraft,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE projects SET name = $2, source_kind = $3, description = $4, \
                     updated_at = $5 WHERE id = $1")
                .bind(id.0)
                .bind(&draft.name)
                .bind(draft.source_kind.as_str())
                .bind(&draft.description)
                .bind(millis(at))).await?;
                not_found_unless_one(rows, "project")?;
                Self::commit(tx, audit).await
            }

            async fn set_archived(
                &self,
                id: ProjectId,
                archived: bool,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows =
                    Self::exec(&mut tx, sqlx::query("UPDATE projects SET archived = $2, updated_at = $3 WHERE id = $1")
                        .bind(id.0)
                        .bind(archived)
                        .bind(millis(at))).await?;
                not_found_unless_one(rows, "project")?;
                Self::commit(tx, audit).await
            }

            async fn assign_support(
                &self,
                project: ProjectId,
                account: AccountId,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("INSERT INTO project_support (project_id, account_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING")
                .bind(project.0)
                .bind(account.0)).await?;
                if rows > 0 {
                    Self::audit(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(internal)
            }

            async fn unassign_support(
                &self,
                project: ProjectId,
                account: AccountId,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("DELETE FROM project_support WHERE project_id = $1 AND account_id = $2")
                .bind(project.0)
                .bind(account.0)).await?;
                if rows > 0 {
                    Self::audit(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(internal)
            }

            async fn project_support(&self, project: ProjectId) -> Result<Vec<Account>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN \
                     (SELECT account_id FROM project_support WHERE project_id = $1) \
                     ORDER BY display_name, id"
                );
                sqlx::query_as::<_, AccountRow>(AssertSqlSafe(sql))
                    .bind(project.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Account::try_from)
                    .collect()
            }

            async fn is_assigned(&self, project: ProjectId, account: AccountId) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM project_support WHERE project_id = $1 AND account_id = $2",
                )
                .bind(project.0)
                .bind(account.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(n > 0)
            }
        }

        #[async_trait]
        impl ApiTokenStore for $name {
            async fn insert_api_token(&self, token: &NewApiToken, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("INSERT INTO api_tokens (id, name, hint, secret_hash, role, created_by, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(token.id.0)
                .bind(&token.name)
                .bind(&token.hint)
                .bind(&token.secret_hash)
                .bind(token.role.as_str())
                .bind(token.created_by.0)
                .bind(millis(token.created_at))).await?;
                Self::commit(tx, audit).await
            }

            async fn api_token_grant(&self, secret_hash: &str) -> Result<Option<TokenGrant>> {
                let sql = format!("{TOKEN_SELECT} WHERE t.secret_hash = $1");
                sqlx::query_as::<_, GrantRow>(AssertSqlSafe(sql))
                    .bind(secret_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(GrantRow::into_grant)
                    .transpose()
            }

            async fn touch_api_token(&self, id: ApiTokenId, at: DateTime<Utc>) -> Result<()> {
                self.run(sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                    .bind(id.0)
                    .bind(millis(at))).await?;
                Ok(())
            }

            async fn list_api_tokens(&self, page: PageRequest) -> Result<Page<ApiToken>> {
                let sql = format!(
                    "{TOKEN_SELECT} ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC, t.id \
                     LIMIT $1 OFFSET $2"
                );
                let items = sqlx::query_as::<_, GrantRow>(AssertSqlSafe(sql))
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(ApiToken::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn api_token(&self, id: ApiTokenId) -> Result<Option<ApiToken>> {
                let sql = format!("{TOKEN_SELECT} WHERE t.id = $1");
                self.by_id::<GrantRow, ApiToken>(sql, id.0).await
            }

            async fn revoke_api_token(
                &self,
                id: ApiTokenId,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.0)
                .bind(millis(at))).await?;
                if rows > 0 {
                    Self::audit(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(internal)
            }
        }

        #[async_trait]
        impl AuditStore for $name {
            async fn append_audit(&self, entry: &NewAuditEntry) -> Result<()> {
                let mut conn = self.pool.acquire().await.map_err(internal)?;
                Self::audit(&mut conn, entry).await
            }

            async fn audit_page(&self, query: AuditQuery) -> Result<AuditPage> {
                // Placeholders are numbered in bind order; only present filters are bound,
                // so each variant of the query can use the (project_id, seq) index.
                let mut conditions = Vec::new();
                let mut n = 0;
                if query.before.is_some() {
                    n += 1;
                    conditions.push(format!("l.seq < ${n}"));
                }
                if query.project.is_some() {
                    n += 1;
                    conditions.push(format!("l.project_id = ${n}"));
                }
                let where_clause = if conditions.is_empty() {
                    String::new()
                } else {
                    format!("WHERE {}", conditions.join(" AND "))
                };
                let sql = format!(
                    "SELECT l.seq, l.at, l.actor_id, a.email AS actor_email, l.channel, l.action, \
                     l.object_kind, l.object_id, l.project_id, l.address, l.detail \
                     FROM audit_log l LEFT JOIN accounts a ON a.id = l.actor_id \
                     {where_clause} ORDER BY l.seq DESC LIMIT ${}",
                    n + 1
                );
                let mut q = sqlx::query_as::<_, AuditRow>(AssertSqlSafe(sql));
                if let Some(before) = query.before {
                    q = q.bind(before);
                }
                if let Some(project) = query.project {
                    q = q.bind(project.0);
                }
                // One extra row tells whether an older page exists.
                let rows = q
                    .bind(i64::from(query.limit) + 1)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?;
                let has_more = rows.len() > query.limit as usize;
                let entries = rows
                    .into_iter()
                    .take(query.limit as usize)
                    .map(AuditEntry::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let next_before = if has_more { entries.last().map(|e| e.seq) } else { None };
                Ok(AuditPage { entries, next_before })
            }
        }

        #[async_trait]
        impl UploadStore for $name {
            async fn insert_upload(&self, upload: &NewUpload, audit: &NewAuditEntry) -> Result<Upload> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO uploads (id, project_id, file_name, size_bytes, sha256, status, \
                         created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'stored', $6, $7)",
                    )
                    .bind(upload.id.0)
                    .bind(upload.project_id.0)
                    .bind(&upload.file_name)
                    .bind(i64::try_from(upload.size_bytes).unwrap_or(i64::MAX))
                    .bind(&upload.sha256)
                    .bind(upload.created_by.0)
                    .bind(millis(upload.created_at)),
                )
                .await?;
                Self::commit(tx, audit).await?;
                self.upload(upload.id)
                    .await?
                    .ok_or_else(|| DomainError::Internal("upload vanished after insert".into()))
            }

            async fn upload(&self, id: UploadId) -> Result<Option<Upload>> {
                let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1");
                self.by_id::<UploadRow, Upload>(sql, id.0).await
            }

            async fn list_uploads(&self, project: ProjectId, page: PageRequest) -> Result<Page<Upload>> {
                let sql = format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE project_id = $1 \
                     ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
                );
                let items = sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(project.0)
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Upload::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE project_id = $1")
                    .bind(project.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn upload_by_sha(&self, project: ProjectId, sha256: &str) -> Result<Option<Upload>> {
                let sql = format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE project_id = $1 AND sha256 = $2 \
                     ORDER BY created_at LIMIT 1"
                );
                sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(project.0)
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(Upload::try_from)
                    .transpose()
            }

            async fn uploads_with_status(&self, status: UploadStatus) -> Result<Vec<Upload>> {
                let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE status = $1 ORDER BY created_at");
                sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(status.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Upload::try_from)
                    .collect()
            }

            async fn start_parse(
                &self,
                id: UploadId,
                format: &str,
                source: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE uploads SET status = 'parsing', format = $2, source = $3, \
                         bytes_read = 0, rows_ok = 0, rows_failed = 0, records_new = 0, \
                         records_changed = 0, records_unchanged = 0, records_missing = 0, \
                         error = NULL, parse_started_at = $4, parse_finished_at = NULL \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(format)
                    .bind(source)
                    .bind(millis(at)),
                )
                .await?;
                not_found_unless_one(rows, "upload")?;
                Self::exec(&mut tx, sqlx::query("DELETE FROM record_errors WHERE upload_id = $1").bind(id.0))
                    .await?;
                tx.commit().await.map_err(internal)
            }

            async fn save_batch(
                &self,
                upload: &Upload,
                records: Vec<SealedRecord>,
                errors: &[StoredError],
                progress: ParseProgress,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.bulk.begin().await.map_err(internal)?;
                // Many rows per statement: one statement per record costs a round trip
                // to the database each, which dominated reading a large export. Each
                // chunk's records move into its statement (a value bound by reference
                // is copied by SQLite's driver) and are freed once it has run.
                let mut rows = records.into_iter();
                loop {
                    let chunk: Vec<SealedRecord> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    // New users get this upload as first, last and changed; known users
                    // get it as last, and as changed only when their content differs.
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO records (project_id, source_id, digest, data, first_upload_id, \
                         last_upload_id, changed_upload_id, updated_at) ",
                    );
                    insert.push_values(chunk, |mut row, record| {
                        row.push_bind(upload.project_id.0)
                            .push_bind(record.source_id)
                            .push_bind(record.digest)
                            .push_bind(record.data)
                            .push_bind(upload.id.0)
                            .push_bind(upload.id.0)
                            .push_bind(upload.id.0)
                            .push_bind(millis(at));
                    });
                    insert.push(
                        " ON CONFLICT (project_id, source_id) DO UPDATE SET \
                         last_upload_id = excluded.last_upload_id, \
                         changed_upload_id = CASE WHEN records.digest = excluded.digest \
                             THEN records.changed_upload_id ELSE excluded.changed_upload_id END, \
                         data = excluded.data, digest = excluded.digest, updated_at = excluded.updated_at",
                    );
                    Self::exec(&mut tx, insert.build()).await?;
                }
                for chunk in errors.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO record_errors (upload_id, seq, location, field, reason) ",
                    );
                    insert.push_values(chunk, |mut row, error| {
                        row.push_bind(upload.id.0)
                            .push_bind(i64::try_from(error.seq).unwrap_or(i64::MAX))
                            .push_bind(error.location.clone())
                            .push_bind(error.field.clone())
                            .push_bind(error.reason.clone());
                    });
                    insert.push(" ON CONFLICT (upload_id, seq) DO NOTHING");
                    Self::exec(&mut tx, insert.build()).await?;
                }
                let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE uploads SET bytes_read = $2, rows_ok = $3, rows_failed = $4 WHERE id = $1")
                        .bind(upload.id.0)
                        .bind(as_i64(progress.bytes_read))
                        .bind(as_i64(progress.rows_ok))
                        .bind(as_i64(progress.rows_failed)),
                )
                .await?;
                tx.commit().await.map_err(internal)
            }

            async fn finish_parse(
                &self,
                id: UploadId,
                status: UploadStatus,
                error: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<Upload> {
                let upload = self
                    .upload(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("upload".into()))?;
                upload.status.advance(status)?;
                let counts: (i64, i64, i64, i64) = sqlx::query_as(
                    "SELECT \
                     COALESCE(SUM(CASE WHEN first_upload_id = $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN changed_upload_id = $2 AND first_upload_id <> $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN last_upload_id = $2 AND changed_upload_id <> $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN last_upload_id <> $2 THEN 1 ELSE 0 END), 0) \
                     FROM records WHERE project_id = $1",
                )
                .bind(upload.project_id.0)
                .bind(id.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                self.run(
                    sqlx::query(
                        "UPDATE uploads SET status = $2, error = $3, parse_finished_at = $4, \
                         records_new = $5, records_changed = $6, records_unchanged = $7, \
                         records_missing = $8 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(status.as_str())
                    .bind(error)
                    .bind(millis(at))
                    .bind(counts.0)
                    .bind(counts.1)
                    .bind(counts.2)
                    .bind(counts.3),
                )
                .await?;
                self.upload(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("upload".into()))
            }

            async fn record_errors(&self, upload: UploadId, page: PageRequest) -> Result<Page<StoredError>> {
                let items = sqlx::query_as::<_, ErrorRow>(
                    "SELECT seq, location, field, reason FROM record_errors WHERE upload_id = $1 \
                     ORDER BY seq LIMIT $2 OFFSET $3",
                )
                .bind(upload.0)
                .bind(limit(page))
                .bind(offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .into_iter()
                .map(StoredError::from)
                .collect();
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record_errors WHERE upload_id = $1")
                    .bind(upload.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn put_project_secret(
                &self,
                project: ProjectId,
                kind: &str,
                sealed: &[u8],
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO project_secrets (project_id, kind, sealed, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, kind) DO UPDATE SET \
                         sealed = excluded.sealed, updated_at = excluded.updated_at",
                    )
                    .bind(project.0)
                    .bind(kind)
                    .bind(sealed)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn project_secret(&self, project: ProjectId, kind: &str) -> Result<Option<Vec<u8>>> {
                sqlx::query_scalar::<_, Vec<u8>>(
                    "SELECT sealed FROM project_secrets WHERE project_id = $1 AND kind = $2",
                )
                .bind(project.0)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)
            }
        }
    };
}

sql_store!(
    /// The embedded default: one SQLite file in the data folder, one Ferry instance.
    SqliteStore,
    sqlx::Sqlite,
    sqlx::SqliteConnection
);
sql_store!(
    /// PostgreSQL: for large migrations and several Ferry instances sharing one database.
    PostgresStore,
    sqlx::Postgres,
    sqlx::PgConnection
);
