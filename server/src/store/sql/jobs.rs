//! The job and job-record tables for both databases: jobs created with their records,
//! state changes compared and set, and the worker's side — claiming records under a
//! lease (expired leases reclaimed; `FOR UPDATE SKIP LOCKED` on PostgreSQL so two
//! instances never take the same record), heartbeats, settling and releasing. Each
//! change moves the job's counts with its records in one transaction.

use super::{PostgresStore, SqliteStore, count};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{AccountId, JobId, ProjectId},
    jobs::{
        Claimed, Job, JobKind, JobState, NewJob, PauseReason, RecordCounts, RecordState, Settled,
    },
    ports::JobStore,
};

#[derive(sqlx::FromRow)]
struct JobRow {
    id: uuid::Uuid,
    project_id: uuid::Uuid,
    kind: String,
    state: String,
    target_role: String,
    mapping_version: Option<i64>,
    parent_id: Option<uuid::Uuid>,
    settings: String,
    pause_reason: Option<String>,
    total: i64,
    pending: i64,
    in_flight: i64,
    created: i64,
    updated: i64,
    skipped: i64,
    failed: i64,
    created_by: Option<uuid::Uuid>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = DomainError;
    fn try_from(r: JobRow) -> Result<Job> {
        let unknown = |what: &str, value: &str| {
            DomainError::Internal(format!("stored job {what} {value:?} is unknown"))
        };
        Ok(Job {
            id: JobId(r.id),
            project_id: ProjectId(r.project_id),
            kind: JobKind::parse(&r.kind).ok_or_else(|| unknown("kind", &r.kind))?,
            state: JobState::parse(&r.state).ok_or_else(|| unknown("state", &r.state))?,
            target_role: r.target_role,
            mapping_version: r.mapping_version.and_then(|v| u32::try_from(v).ok()),
            parent: r.parent_id.map(JobId),
            settings: r.settings,
            pause_reason: r
                .pause_reason
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .map_err(|e| DomainError::Internal(format!("stored pause reason: {e}")))?,
            total: count(r.total),
            counts: RecordCounts {
                pending: count(r.pending),
                in_flight: count(r.in_flight),
                created: count(r.created),
                updated: count(r.updated),
                skipped: count(r.skipped),
                failed: count(r.failed),
            },
            created_by: r.created_by.map(AccountId),
            created_at: time(r.created_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
        })
    }
}

const SELECT: &str = "SELECT id, project_id, kind, state, target_role, mapping_version, \
    parent_id, settings, pause_reason, total, pending, in_flight, created, updated, skipped, \
    failed, created_by, created_at, started_at, finished_at FROM jobs WHERE id = $1";

/// Records inserted per statement: four values each.
const RECORDS_PER_STATEMENT: usize = 500;

macro_rules! job_store {
    ($name:ident, $db:ty, $skip_locked:literal) => {
        impl $name {
            /// Moves the job's counts by the records that changed state.
            async fn shift_counts(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: JobId,
                from: RecordState,
                to: RecordState,
                n: u64,
            ) -> Result<()> {
                if n == 0 {
                    return Ok(());
                }
                // Column names come from the closed set of record states.
                let sql = format!(
                    "UPDATE jobs SET {from} = {from} - $2, {to} = {to} + $2 WHERE id = $1",
                    from = from.as_str(),
                    to = to.as_str()
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id.0)
                    .bind(n as i64)
                    .execute(&mut *conn)
                    .await
                    .map_err(internal)?;
                Ok(())
            }
        }

        #[async_trait]
        impl JobStore for $name {
            async fn create_job(
                &self,
                job: &NewJob,
                source_ids: &[String],
                audit: &NewAuditEntry,
            ) -> Result<Job> {
                let mut tx = self.begin().await?;
                let total = source_ids.len() as i64;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO jobs (id, project_id, kind, state, target_role, \
                         mapping_version, parent_id, settings, pause_reason, total, pending, \
                         in_flight, created, updated, skipped, failed, created_by, created_at, \
                         started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, \
                         $9, $9, 0, 0, 0, 0, 0, $10, $11, NULL, NULL)",
                    )
                    .bind(job.id.0)
                    .bind(job.project_id.0)
                    .bind(job.kind.as_str())
                    .bind(JobState::Draft.as_str())
                    .bind(job.target_role.clone())
                    .bind(job.mapping_version.map(i64::from))
                    .bind(job.parent.map(|p| p.0))
                    .bind(job.settings.clone())
                    .bind(total)
                    .bind(job.created_by.map(|a| a.0))
                    .bind(millis(job.created_at)),
                )
                .await?;
                for (chunk_at, chunk) in source_ids.chunks(RECORDS_PER_STATEMENT).enumerate() {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO job_records (job_id, seq, source_id, state) ",
                    );
                    let first = chunk_at * RECORDS_PER_STATEMENT;
                    insert.push_values(chunk.iter().enumerate(), |mut row, (i, source_id)| {
                        row.push_bind(job.id.0)
                            .push_bind((first + i) as i64)
                            .push_bind(source_id.clone())
                            .push_bind(RecordState::Pending.as_str());
                    });
                    insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(crate::store::rows::db_error(
                            "a record appears twice in the job",
                        ))?;
                }
                Self::commit(tx, audit).await?;
                self.job(job.id)
                    .await?
                    .ok_or_else(|| DomainError::Internal("the created job vanished".into()))
            }

            async fn job(&self, id: JobId) -> Result<Option<Job>> {
                sqlx::query_as::<_, JobRow>(SELECT)
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(Job::try_from)
                    .transpose()
            }

            async fn set_job_state(
                &self,
                id: JobId,
                from: JobState,
                to: JobState,
                reason: Option<&PauseReason>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<Job> {
                let reason = reason
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let started = (to == JobState::Running).then(|| millis(at));
                let finished = to.is_final().then(|| millis(at));
                let mut tx = self.begin().await?;
                let changed = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE jobs SET state = $3, pause_reason = $4, \
                         started_at = COALESCE(started_at, $5), \
                         finished_at = COALESCE(finished_at, $6) \
                         WHERE id = $1 AND state = $2",
                    )
                    .bind(id.0)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(reason)
                    .bind(started)
                    .bind(finished),
                )
                .await?;
                if changed == 0 {
                    return Err(DomainError::Conflict(format!(
                        "the job is no longer {}; reload it",
                        from.as_str()
                    )));
                }
                Self::commit(tx, audit).await?;
                self.job(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("job".into()))
            }

            async fn claim(
                &self,
                id: JobId,
                owner: &str,
                limit: u32,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> Result<Vec<Claimed>> {
                let mut tx = self.begin().await?;
                // Records whose worker stopped renewing its lease go back to pending
                // first, then are claimed like any other.
                let reclaimed = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE job_records SET state = $2, lease_owner = NULL, lease_until = NULL \
                         WHERE job_id = $1 AND state = $3 AND lease_until < $4",
                    )
                    .bind(id.0)
                    .bind(RecordState::Pending.as_str())
                    .bind(RecordState::InFlight.as_str())
                    .bind(millis(now)),
                )
                .await?;
                Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::Pending, reclaimed)
                    .await?;
                let rows: Vec<(i64, String, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE job_records SET state = $2, lease_owner = $3, lease_until = $4, \
                     attempts = attempts + 1 WHERE job_id = $1 AND seq IN (SELECT seq FROM \
                     job_records WHERE job_id = $1 AND state = $5 ORDER BY seq LIMIT $6{}) \
                     RETURNING seq, source_id, attempts",
                    $skip_locked
                )))
                .bind(id.0)
                .bind(RecordState::InFlight.as_str())
                .bind(owner)
                .bind(millis(lease_until))
                .bind(RecordState::Pending.as_str())
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(internal)?;
                Self::shift_counts(
                    &mut tx,
                    id,
                    RecordState::Pending,
                    RecordState::InFlight,
                    rows.len() as u64,
                )
                .await?;
                tx.commit().await.map_err(internal)?;
                let mut claimed: Vec<Claimed> = rows
                    .into_iter()
                    .map(|(seq, source_id, attempts)| Claimed {
                        seq: count(seq),
                        source_id,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                    })
                    .collect();
                claimed.sort_by_key(|c| c.seq);
                Ok(claimed)
            }

            async fn heartbeat(
                &self,
                id: JobId,
                owner: &str,
                lease_until: DateTime<Utc>,
            ) -> Result<u64> {
                self.run(
                    sqlx::query(
                        "UPDATE job_records SET lease_until = $4 \
                         WHERE job_id = $1 AND state = $2 AND lease_owner = $3",
                    )
                    .bind(id.0)
                    .bind(RecordState::InFlight.as_str())
                    .bind(owner)
                    .bind(millis(lease_until)),
                )
                .await
            }

            async fn settle(
                &self,
                id: JobId,
                owner: &str,
                outcomes: &[Settled],
                at: DateTime<Utc>,
            ) -> Result<u64> {
                if let Some(bad) = outcomes.iter().find(|o| !o.state.is_settled()) {
                    return Err(DomainError::Internal(format!(
                        "record {} cannot settle as {}",
                        bad.seq,
                        bad.state.as_str()
                    )));
                }
                let mut tx = self.begin().await?;
                let mut by_state = [0u64; 6];
                for outcome in outcomes {
                    let changed = Self::exec(
                        &mut tx,
                        sqlx::query(
                            "UPDATE job_records SET state = $4, scim_id = $5, error_class = $6, \
                             error_detail = $7, settled_at = $8, lease_owner = NULL, \
                             lease_until = NULL WHERE job_id = $1 AND seq = $2 \
                             AND state = $3 AND lease_owner = $9",
                        )
                        .bind(id.0)
                        .bind(outcome.seq as i64)
                        .bind(RecordState::InFlight.as_str())
                        .bind(outcome.state.as_str())
                        .bind(outcome.scim_id.clone())
                        .bind(outcome.error_class.clone())
                        .bind(outcome.error_detail.clone())
                        .bind(millis(at))
                        .bind(owner),
                    )
                    .await?;
                    if let Some(slot) = RecordState::ALL.iter().position(|s| *s == outcome.state) {
                        by_state[slot] += changed;
                    }
                }
                for (slot, n) in by_state.iter().enumerate() {
                    Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::ALL[slot], *n)
                        .await?;
                }
                tx.commit().await.map_err(internal)?;
                Ok(by_state.iter().sum())
            }

            async fn release(&self, id: JobId, owner: &str) -> Result<u64> {
                let mut tx = self.begin().await?;
                let released = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE job_records SET state = $2, lease_owner = NULL, lease_until = NULL \
                         WHERE job_id = $1 AND state = $3 AND lease_owner = $4",
                    )
                    .bind(id.0)
                    .bind(RecordState::Pending.as_str())
                    .bind(RecordState::InFlight.as_str())
                    .bind(owner),
                )
                .await?;
                Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::Pending, released)
                    .await?;
                tx.commit().await.map_err(internal)?;
                Ok(released)
            }
        }
    };
}

job_store!(SqliteStore, sqlx::Sqlite, "");
job_store!(PostgresStore, sqlx::Postgres, " FOR UPDATE SKIP LOCKED");
