//! The store, written once in SQL that both SQLite and PostgreSQL accept (`$N`
//! parameters, `RETURNING`, `ON CONFLICT`) and expanded by macros into two typed
//! implementations, one per driver: `sql_store!` here makes the two stores and their
//! shared helpers, and each file of `sql/` the tables of one concern (access,
//! projects, uploads, assessments, targets, mappings, plan, runs). Dialect differences
//! live in the migrations, and the few statements that differ name them (see
//! `sql/runs.rs`).
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
    "id, name, source_kind, description, archived, created_at, updated_at, purged_at";
const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.hint, t.role, t.created_by, \
     a.email AS created_by_email, t.created_at, t.last_used_at, t.revoked_at, \
     a.role AS creator_role, a.status AS creator_status \
     FROM api_tokens t LEFT JOIN accounts a ON a.id = t.created_by";
const UPLOAD_COLUMNS: &str = "id, project_id, file_name, size_bytes, sha256, status, format, \
     source, bytes_read, rows_ok, rows_failed, records_new, records_changed, records_unchanged, \
     records_missing, error, created_by, created_at, parse_started_at, parse_finished_at, \
     purged_at";
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

mod access;
mod assessments;
mod goals;
mod mappings;
mod passwords;
mod plans;
mod projects;
mod retention;
mod review;
mod runs;
mod targets;
mod uploads;

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
            /// The password service's writes, grouped across logins.
            logins: passwords::LoginWrites,
            /// The verification service's own connections, if it has them: a flood of
            /// logins then waits for these and leaves the others to the dashboard and
            /// the runs (and the reverse).
            service: Option<sqlx::Pool<$db>>,
        }

        impl $name {
            pub fn new(pool: sqlx::Pool<$db>) -> Self {
                Self { bulk: pool.clone(), pool, logins: Default::default(), service: None }
            }

            pub fn with_bulk_pool(pool: sqlx::Pool<$db>, bulk: sqlx::Pool<$db>) -> Self {
                Self { pool, bulk, logins: Default::default(), service: None }
            }

            /// Gives the verification service connections of its own.
            pub fn with_service_pool(self, service: sqlx::Pool<$db>) -> Self {
                Self { service: Some(service), ..self }
            }

            /// Where the verification service reads.
            fn service_reads(&self) -> &sqlx::Pool<$db> {
                self.service.as_ref().unwrap_or(&self.pool)
            }

            /// Where the verification service writes.
            fn service_writes(&self) -> &sqlx::Pool<$db> {
                self.service.as_ref().unwrap_or(&self.bulk)
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
            async fn execute<'q>(
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
