//! The run and run-record tables for both databases: runs created with their records,
//! state changes compared and set, and the worker's side — claiming records under a
//! lease (expired leases reclaimed; `FOR UPDATE SKIP LOCKED` on PostgreSQL so two
//! instances never take the same record), heartbeats, settling and releasing. Each
//! change moves the run's counts with its records in one transaction.

use super::{PostgresStore, SqliteStore, count};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{AccountId, ProjectId, RunId},
    pagination::{Page, PageRequest},
    ports::{ClassCount, RecordFilter, RunRecord, RunRecords, RunStore},
    runs::{
        Claimed, NewRun, PauseReason, RecordCounts, RecordState, Run, RunKind, RunState, Settled,
    },
};

#[derive(sqlx::FromRow)]
struct RunRow {
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
    deleted: i64,
    created_by: Option<uuid::Uuid>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl TryFrom<RunRow> for Run {
    type Error = DomainError;
    fn try_from(r: RunRow) -> Result<Run> {
        let unknown = |what: &str, value: &str| {
            DomainError::Internal(format!("stored run {what} {value:?} is unknown"))
        };
        Ok(Run {
            id: RunId(r.id),
            project_id: ProjectId(r.project_id),
            kind: RunKind::parse(&r.kind).ok_or_else(|| unknown("kind", &r.kind))?,
            state: RunState::parse(&r.state).ok_or_else(|| unknown("state", &r.state))?,
            target_role: r.target_role,
            mapping_version: r.mapping_version.and_then(|v| u32::try_from(v).ok()),
            parent: r.parent_id.map(RunId),
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
                deleted: count(r.deleted),
            },
            created_by: r.created_by.map(AccountId),
            created_at: time(r.created_at),
            started_at: r.started_at.map(time),
            finished_at: r.finished_at.map(time),
        })
    }
}

const COLUMNS: &str = "SELECT id, project_id, kind, state, target_role, mapping_version, \
    parent_id, settings, pause_reason, total, pending, in_flight, created, updated, skipped, \
    failed, deleted, created_by, created_at, started_at, finished_at FROM jobs";

#[derive(sqlx::FromRow)]
struct RecordRow {
    seq: i64,
    source_id: String,
    state: String,
    attempts: i32,
    scim_id: Option<String>,
    error_class: Option<String>,
    error_detail: Option<String>,
    scim_type: Option<String>,
    settled_at: Option<i64>,
}

impl TryFrom<RecordRow> for RunRecord {
    type Error = DomainError;
    fn try_from(r: RecordRow) -> Result<RunRecord> {
        Ok(RunRecord {
            seq: count(r.seq),
            source_id: r.source_id,
            state: RecordState::parse(&r.state).ok_or_else(|| {
                DomainError::Internal(format!("stored record state {:?} is unknown", r.state))
            })?,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            scim_id: r.scim_id,
            error_class: r.error_class,
            error_detail: r.error_detail,
            scim_type: r.scim_type,
            settled_at: r.settled_at.map(time),
        })
    }
}

/// Outcomes settled per statement: five values each, well under SQLite's limit on
/// bound values. Once settles find their rows by primary key, 100 to 1,000 per
/// statement cost the same per record (11.7–13.1 µs, 100,000 records in batches of
/// 1,000), so the statement stays small.
const SETTLED_PER_STATEMENT: usize = 200;

/// Runs from this many records on refresh the planner's statistics once written; on
/// smaller ones a misestimate costs little.
const ANALYZE_FROM: u64 = 1_000;

/// Records inserted per statement: four values each.
const RECORDS_PER_STATEMENT: usize = 500;

/// Settle and unclaim name their records by sequence number and check each one is
/// still in flight under its owner. On SQLite that check must not pick the
/// `(run_id, state, seq)` index to find the rows: the unary `+` leaves them to the
/// primary key. Through the state index a settle cost ~38 µs a record against ~9 µs
/// through the primary key (measured on 100,000 records, batches of 1,000); PostgreSQL
/// has no unary plus on text and chooses the primary key by itself.
///
/// `$statistics` refreshes the planner's statistics after a large run is written.
/// PostgreSQL plans the claim from them: statistics taken before the run's records
/// existed estimate one row for the run, and the claim's join then walks every record
/// of the run for each record picked (6.3 s for one claim of 1,000 out of 20,000;
/// 25 ms once analysed). SQLite keeps no statistics unless asked and plans the same
/// way without them.
macro_rules! run_store {
    (
        $name:ident,
        $db:ty,
        skip_locked = $skip_locked:literal,
        by_row = $by_row:literal,
        statistics = $statistics:expr $(,)?
    ) => {
        impl $name {
            /// `UPDATE run_records SET {set}` over those of `seqs` that are `owner`'s
            /// and in flight (a chunk: one statement).
            fn update_owned(
                set: &str,
                id: RunId,
                owner: &str,
                seqs: &[u64],
            ) -> sqlx::QueryBuilder<$db> {
                let mut update =
                    sqlx::QueryBuilder::<$db>::new(format!("UPDATE job_records SET {set} WHERE job_id = "));
                update
                    .push_bind(id.0)
                    .push(concat!(" AND ", $by_row, "state = "))
                    .push_bind(RecordState::InFlight.as_str())
                    .push(" AND lease_owner = ")
                    .push_bind(owner)
                    .push(" AND seq IN (");
                let mut list = update.separated(", ");
                for seq in seqs {
                    list.push_bind(*seq as i64);
                }
                update.push(")");
                update
            }

            /// Moves the run's counts by the records that changed state.
            async fn shift_counts(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: RunId,
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
        impl RunStore for $name {
            async fn create_run(
                &self,
                run: &NewRun,
                records: RunRecords<'_>,
                audit: &NewAuditEntry,
            ) -> Result<Run> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO jobs (id, project_id, kind, state, target_role, \
                         mapping_version, parent_id, settings, pause_reason, total, pending, \
                         in_flight, created, updated, skipped, failed, deleted, created_by, \
                         created_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, \
                         $7, $8, NULL, 0, 0, 0, 0, 0, 0, 0, 0, $9, $10, NULL, NULL)",
                    )
                    .bind(run.id.0)
                    .bind(run.project_id.0)
                    .bind(run.kind.as_str())
                    .bind(RunState::Draft.as_str())
                    .bind(run.target_role.clone())
                    .bind(run.mapping_version.map(i64::from))
                    .bind(run.parent.map(|p| p.0))
                    .bind(run.settings.clone())
                    .bind(run.created_by.map(|a| a.0))
                    .bind(millis(run.created_at)),
                )
                .await?;
                let pending = RecordState::Pending.as_str();
                let total = match records {
                    RunRecords::Ids(source_ids) => {
                        for (chunk_at, chunk) in
                            source_ids.chunks(RECORDS_PER_STATEMENT).enumerate()
                        {
                            let mut insert = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO job_records (job_id, seq, source_id, state) ",
                            );
                            let first = chunk_at * RECORDS_PER_STATEMENT;
                            insert.push_values(chunk.iter().enumerate(), |mut row, (i, id)| {
                                row.push_bind(run.id.0)
                                    .push_bind((first + i) as i64)
                                    .push_bind(id.clone())
                                    .push_bind(pending);
                            });
                            insert.build().execute(&mut *tx).await.map_err(
                                crate::store::rows::db_error("a record appears twice in the run"),
                            )?;
                        }
                        source_ids.len() as u64
                    }
                    // Numbered in source-id order, straight from the table: a million
                    // ids never pass through memory.
                    // Users support staff decided to skip stay out.
                    RunRecords::Project => Self::exec(
                        &mut tx,
                        sqlx::query(
                            "INSERT INTO job_records (job_id, seq, source_id, state) \
                             SELECT $1, ROW_NUMBER() OVER (ORDER BY source_id) - 1, source_id, $3 \
                             FROM records r WHERE project_id = $2 AND NOT EXISTS (\
                             SELECT 1 FROM review_items ri WHERE ri.project_id = r.project_id \
                             AND ri.source_id = r.source_id AND ri.state = $4)",
                        )
                        .bind(run.id.0)
                        .bind(run.project_id.0)
                        .bind(pending)
                        .bind(domain::review::ReviewState::Skipped.as_str()),
                    )
                    .await?,
                    RunRecords::Reviewed(chosen) => {
                        for (chunk_at, chunk) in chosen.chunks(RECORDS_PER_STATEMENT).enumerate() {
                            let mut insert = sqlx::QueryBuilder::<$db>::new(
                                "INSERT INTO job_records (job_id, seq, source_id, state, sent) ",
                            );
                            let first = chunk_at * RECORDS_PER_STATEMENT;
                            insert.push_values(chunk.iter().enumerate(), |mut row, (i, (id, reached))| {
                                row.push_bind(run.id.0)
                                    .push_bind((first + i) as i64)
                                    .push_bind(id.clone())
                                    .push_bind(pending)
                                    .push_bind(*reached);
                            });
                            insert.build().execute(&mut *tx).await.map_err(
                                crate::store::rows::db_error("a record appears twice in the run"),
                            )?;
                        }
                        chosen.len() as u64
                    }
                    RunRecords::WaitingForReset {
                        long_tail_before,
                        limit,
                    } => Self::exec(
                        &mut tx,
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO job_records (job_id, seq, source_id, state, scim_id, \
                             user_type, password_strategy) SELECT $3, \
                             ROW_NUMBER() OVER (ORDER BY source_id) - 1, source_id, $4, scim_id, \
                             user_type, password_strategy FROM (SELECT * FROM ({}) waiting \
                             ORDER BY source_id LIMIT $5) chosen",
                            super::passwords::WAITING_FOR_RESET
                        )))
                        .bind(run.project_id.0)
                        .bind(super::passwords::cut_off(long_tail_before))
                        .bind(run.id.0)
                        .bind(pending)
                        .bind(i64::from(limit)),
                    )
                    .await?,
                    RunRecords::InTarget { sample } => Self::exec(
                        &mut tx,
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO job_records (job_id, seq, source_id, state, scim_id, \
                             user_type, password_strategy, member_of) SELECT $2, \
                             ROW_NUMBER() OVER (ORDER BY source_id) - 1, source_id, $3, scim_id, \
                             user_type, password_strategy, member_of FROM (SELECT * FROM ({}) t \
                             ORDER BY {} LIMIT $4) chosen",
                            super::passwords::IN_TARGET,
                            // A sample is drawn at random; every user in the order of ids.
                            if sample.is_some() { "random()" } else { "source_id" },
                        )))
                        .bind(run.project_id.0)
                        .bind(run.id.0)
                        .bind(pending)
                        .bind(sample.map_or(i64::MAX, i64::from)),
                    )
                    .await?,
                    RunRecords::Delta { upload, missing } => Self::exec(
                        &mut tx,
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO job_records (job_id, seq, source_id, state, scim_id, delta) \
                             SELECT $2, ROW_NUMBER() OVER (ORDER BY source_id) - 1, source_id, $3, \
                             scim_id, decision FROM (\
                             SELECT r.source_id, t.scim_id, CASE WHEN t.scim_id IS NULL \
                             THEN 'create' ELSE 'update' END AS decision \
                             FROM records r LEFT JOIN ({in_target}) t ON t.source_id = r.source_id \
                             WHERE r.project_id = $1 AND r.last_upload_id = $4 \
                             AND (r.first_upload_id = $4 OR r.changed_upload_id = $4 \
                             OR t.scim_id IS NULL) \
                             UNION ALL \
                             SELECT t.source_id, t.scim_id, $5 AS decision FROM ({in_target}) t \
                             JOIN records r ON r.project_id = $1 AND r.source_id = t.source_id \
                             WHERE r.last_upload_id <> $4) chosen",
                            in_target = super::passwords::IN_TARGET,
                        )))
                        .bind(run.project_id.0)
                        .bind(run.id.0)
                        .bind(pending)
                        .bind(upload.0)
                        .bind(missing.as_str()),
                    )
                    .await?,
                    // What the delta run created (deleted again) and what it changed
                    // with how to undo it.
                    RunRecords::UndoOf(parent) => Self::exec(
                        &mut tx,
                        sqlx::query(
                            "INSERT INTO job_records (job_id, seq, source_id, state, scim_id, \
                             delta, undo) SELECT $1, ROW_NUMBER() OVER (ORDER BY seq) - 1, \
                             source_id, $3, scim_id, delta, undo FROM job_records \
                             WHERE job_id = $2 AND (state = 'created' \
                             OR (undo IS NOT NULL AND state IN ('updated', 'deleted')))",
                        )
                        .bind(run.id.0)
                        .bind(parent.0)
                        .bind(pending),
                    )
                    .await?,
                    RunRecords::FailedOf(parent) | RunRecords::CreatedOf(parent) => {
                        let (state, scim_id) = match records {
                            RunRecords::FailedOf(_) => (RecordState::Failed, "NULL"),
                            _ => (RecordState::Created, "scim_id"),
                        };
                        Self::exec(
                            &mut tx,
                            sqlx::query(sqlx::AssertSqlSafe(format!(
                                "INSERT INTO job_records (job_id, seq, source_id, state, scim_id) \
                                 SELECT $1, ROW_NUMBER() OVER (ORDER BY seq) - 1, source_id, $3, \
                                 {scim_id} FROM job_records WHERE job_id = $2 AND state = $4"
                            )))
                            .bind(run.id.0)
                            .bind(parent.0)
                            .bind(pending)
                            .bind(state.as_str()),
                        )
                        .await?
                    }
                };
                Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE jobs SET total = $2, pending = $2 WHERE id = $1")
                        .bind(run.id.0)
                        .bind(total as i64),
                )
                .await?;
                Self::commit(tx, audit).await?;
                // The run is written whatever happens here: statistics only speed up
                // its claims, so a failure (a lost connection, say) is logged.
                if let Some(refresh) = $statistics
                    && total >= ANALYZE_FROM
                    && let Err(err) = sqlx::query(refresh).execute(&self.pool).await
                {
                    tracing::warn!(run = %run.id.0, error = %err, "the run's statistics were not refreshed");
                }
                self.run(run.id)
                    .await?
                    .ok_or_else(|| DomainError::Internal("the created run vanished".into()))
            }

            async fn runs(&self, project: ProjectId, page: PageRequest) -> Result<Page<Run>> {
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE project_id = $1")
                    .bind(project.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                let rows = sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} WHERE project_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
                )))
                .bind(project.0)
                .bind(i64::from(page.limit))
                .bind(page.offset as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(Page {
                    items: rows.into_iter().map(Run::try_from).collect::<Result<_>>()?,
                    total: count(total),
                    offset: page.offset,
                    limit: page.limit,
                })
            }

            async fn active_runs(&self) -> Result<Vec<Run>> {
                sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!(
                    "{COLUMNS} WHERE state IN ($1, $2, $3) ORDER BY created_at"
                )))
                .bind(RunState::Scheduled.as_str())
                .bind(RunState::Running.as_str())
                .bind(RunState::Paused.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .into_iter()
                .map(Run::try_from)
                .collect()
            }

            async fn set_run_settings(
                &self,
                id: RunId,
                state: RunState,
                settings: &str,
                audit: &NewAuditEntry,
            ) -> Result<Run> {
                let mut tx = self.begin().await?;
                let changed = Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE jobs SET settings = $3 WHERE id = $1 AND state = $2")
                        .bind(id.0)
                        .bind(state.as_str())
                        .bind(settings.to_string()),
                )
                .await?;
                if changed == 0 {
                    return Err(DomainError::Conflict(format!(
                        "the run is no longer {}; reload it",
                        state.as_str()
                    )));
                }
                Self::commit(tx, audit).await?;
                self.run(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("run".into()))
            }

            async fn run_records(
                &self,
                id: RunId,
                filter: &RecordFilter,
                after: Option<u64>,
                limit: u32,
            ) -> Result<Vec<RunRecord>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT seq, source_id, state, attempts, scim_id, error_class, error_detail, \
                     scim_type, settled_at FROM job_records WHERE job_id = ",
                );
                query.push_bind(id.0);
                if let Some(state) = filter.state {
                    query.push(" AND state = ").push_bind(state.as_str());
                }
                if let Some(class) = &filter.error_class {
                    query.push(" AND error_class = ").push_bind(class.clone());
                }
                if let Some(after) = after {
                    query.push(" AND seq > ").push_bind(after as i64);
                }
                query.push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
                query
                    .build_query_as::<RecordRow>()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(RunRecord::try_from)
                    .collect()
            }

            async fn memberships(
                &self,
                id: RunId,
                after: Option<u64>,
                limit: u32,
            ) -> Result<Vec<(u64, String, String)>> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(
                    "SELECT seq, scim_id, member_of FROM job_records WHERE job_id = $1 \
                     AND seq > $2 AND scim_id IS NOT NULL AND member_of IS NOT NULL \
                     AND state IN ($3, $4, $5) ORDER BY seq LIMIT $6",
                )
                .bind(id.0)
                .bind(after.map_or(-1, |a| a as i64))
                .bind(RecordState::Created.as_str())
                .bind(RecordState::Updated.as_str())
                .bind(RecordState::Skipped.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, scim, groups)| (count(seq), scim, groups))
                    .collect())
            }

            async fn error_classes(&self, id: RunId) -> Result<Vec<ClassCount>> {
                let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
                    "SELECT state, error_class, COUNT(*), MIN(error_detail) FROM job_records \
                     WHERE job_id = $1 AND error_class IS NOT NULL \
                     GROUP BY state, error_class ORDER BY COUNT(*) DESC, error_class",
                )
                .bind(id.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                rows.into_iter()
                    .map(|(state, error_class, n, example)| {
                        Ok(ClassCount {
                            state: RecordState::parse(&state).ok_or_else(|| {
                                DomainError::Internal(format!("stored record state {state:?}"))
                            })?,
                            error_class,
                            count: count(n),
                            example,
                        })
                    })
                    .collect()
            }

            async fn claim_finish(
                &self,
                id: RunId,
                owner: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool> {
                let taken = self
                    .execute(
                        sqlx::query(
                            "UPDATE jobs SET finisher = $2, finisher_until = $4 WHERE id = $1 \
                             AND (finisher IS NULL OR finisher = $2 OR finisher_until < $3)",
                        )
                        .bind(id.0)
                        .bind(owner)
                        .bind(millis(now))
                        .bind(millis(until)),
                    )
                    .await?;
                Ok(taken == 1)
            }

            async fn save_finish(
                &self,
                id: RunId,
                summary: &str,
                sealed_readback: Option<&[u8]>,
            ) -> Result<()> {
                self.execute(
                    sqlx::query(
                        "UPDATE jobs SET summary = $2, \
                         sealed_readback = COALESCE($3, sealed_readback) WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(summary.to_string())
                    .bind(sealed_readback.map(<[u8]>::to_vec)),
                )
                .await?;
                Ok(())
            }

            async fn run_finish(&self, id: RunId) -> Result<(Option<String>, Option<Vec<u8>>)> {
                Ok(sqlx::query_as::<_, (Option<String>, Option<Vec<u8>>)>(
                    "SELECT summary, sealed_readback FROM jobs WHERE id = $1",
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?
                .unwrap_or((None, None)))
            }

            async fn known_scim_ids(&self, project: ProjectId) -> Result<Vec<String>> {
                sqlx::query_scalar(
                    "SELECT DISTINCT jr.scim_id FROM job_records jr JOIN jobs j ON j.id = jr.job_id \
                     WHERE j.project_id = $1 AND j.target_role = 'production' \
                     AND jr.scim_id IS NOT NULL",
                )
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)
            }

            async fn delta_records(
                &self,
                run: RunId,
                seqs: &[u64],
            ) -> Result<Vec<(u64, String, Option<Vec<u8>>)>> {
                let mut out = Vec::with_capacity(seqs.len());
                for chunk in seqs.chunks(SETTLED_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT seq, delta, undo FROM job_records WHERE job_id = ",
                    );
                    query.push_bind(run.0).push(" AND delta IS NOT NULL AND seq IN (");
                    let mut list = query.separated(", ");
                    for seq in chunk {
                        list.push_bind(*seq as i64);
                    }
                    query.push(")");
                    let rows: Vec<(i64, String, Option<Vec<u8>>)> = query
                        .build_query_as()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?;
                    out.extend(rows.into_iter().map(|(seq, d, u)| (count(seq), d, u)));
                }
                Ok(out)
            }

            async fn groups_differ(&self, run: RunId, found: &[(u64, String)]) -> Result<u64> {
                let mut tx = self.begin_bulk().await?;
                let mut changed = 0;
                for (seq, detail) in found {
                    changed += Self::exec(
                        &mut tx,
                        sqlx::query(
                            "UPDATE job_records SET state = $3, error_class = $4, \
                             error_detail = $5 WHERE job_id = $1 AND seq = $2 AND state = $6",
                        )
                        .bind(run.0)
                        .bind(*seq as i64)
                        .bind(RecordState::Failed.as_str())
                        .bind(domain::runs::reconcile::GROUPS)
                        .bind(detail)
                        .bind(RecordState::Skipped.as_str()),
                    )
                    .await?;
                }
                Self::shift_counts(&mut tx, run, RecordState::Skipped, RecordState::Failed, changed)
                    .await?;
                tx.commit().await.map_err(internal)?;
                Ok(changed)
            }

            async fn keep_undo(&self, run: RunId, undo: &[(u64, Vec<u8>)]) -> Result<()> {
                let mut tx = self.begin_bulk().await?;
                for chunk in undo.chunks(SETTLED_PER_STATEMENT) {
                    let mut update =
                        sqlx::QueryBuilder::<$db>::new("UPDATE job_records SET undo = CASE seq");
                    for (seq, sealed) in chunk {
                        update.push(" WHEN ").push_bind(*seq as i64);
                        update.push(" THEN ").push_bind(sealed.clone());
                    }
                    update.push(" END WHERE job_id = ").push_bind(run.0).push(" AND seq IN (");
                    let mut list = update.separated(", ");
                    for (seq, _) in chunk {
                        list.push_bind(*seq as i64);
                    }
                    update.push(")");
                    update.build().execute(&mut *tx).await.map_err(internal)?;
                }
                tx.commit().await.map_err(internal)
            }

            async fn run(&self, id: RunId) -> Result<Option<Run>> {
                sqlx::query_as::<_, RunRow>(sqlx::AssertSqlSafe(format!("{COLUMNS} WHERE id = $1")))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(Run::try_from)
                    .transpose()
            }

            async fn set_run_state(
                &self,
                id: RunId,
                from: RunState,
                to: RunState,
                reason: Option<&PauseReason>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<Run> {
                let reason = reason
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let started = (to == RunState::Running).then(|| millis(at));
                let finished = to.is_final().then(|| millis(at));
                let mut tx = self.begin().await?;
                // The database keeps one active run per project (a partial unique
                // index): of two starts at once, the second is refused here.
                let changed = sqlx::query(
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
                .bind(finished)
                .execute(&mut *tx)
                .await
                .map_err(crate::store::rows::db_error(
                    "another run of this project is scheduled, running or paused: wait for \
                     it to end or cancel it first",
                ))?
                .rows_affected();
                if changed == 0 {
                    return Err(DomainError::Conflict(format!(
                        "the run is no longer {}; reload it",
                        from.as_str()
                    )));
                }
                Self::commit(tx, audit).await?;
                self.run(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("run".into()))
            }

            async fn claim(
                &self,
                id: RunId,
                owner: &str,
                limit: u32,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
            ) -> Result<Vec<Claimed>> {
                let mut tx = self.begin_bulk().await?;
                // Records whose worker stopped renewing its lease go back to pending
                // first, then are claimed like any other.
                // Rows another transaction holds (a late settle, a renewal) are left for
                // the next claim: waiting for them could close a cycle of locks.
                let reclaimed = Self::exec(
                    &mut tx,
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "WITH lapsed (l_seq) AS (SELECT seq FROM job_records WHERE job_id = $1 \
                         AND state = $3 AND lease_until < $4{}) \
                         UPDATE job_records SET state = $2, lease_owner = NULL, lease_until = NULL \
                         FROM lapsed WHERE job_id = $1 AND seq = l_seq",
                        $skip_locked
                    )))
                    .bind(id.0)
                    .bind(RecordState::Pending.as_str())
                    .bind(RecordState::InFlight.as_str())
                    .bind(millis(now)),
                )
                .await?;
                Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::Pending, reclaimed)
                    .await?;
                let rows: Vec<(i64, String, i32, Option<String>, bool, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    // The pick is a CTE so that it runs once: as a subquery PostgreSQL
                    // may run it again per row, each time skipping what a concurrent
                    // claimer locked meanwhile, and claim far more than asked.
                    "WITH picked (p_seq) AS (SELECT seq FROM job_records WHERE job_id = $1 \
                     AND state = $5 ORDER BY seq LIMIT $6{}) \
                     UPDATE job_records SET state = $2, lease_owner = $3, lease_until = $4, \
                     attempts = attempts + 1 FROM picked WHERE job_id = $1 AND seq = p_seq \
                     RETURNING seq, source_id, attempts, scim_id, sent, sent_at",
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
                    .map(|(seq, source_id, attempts, scim_id, sent, sent_at)| Claimed {
                        seq: count(seq),
                        source_id,
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        scim_id,
                        sent,
                        sent_at: sent_at.map(time),
                    })
                    .collect();
                claimed.sort_by_key(|c| c.seq);
                Ok(claimed)
            }

            async fn heartbeat(
                &self,
                id: RunId,
                owner: &str,
                lease_until: DateTime<Utc>,
            ) -> Result<u64> {
                // Never waits: a record another transaction holds is being settled or
                // given back, and the next renewal finds it if it is still in flight.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "WITH mine (m_seq) AS (SELECT seq FROM job_records WHERE job_id = $1 \
                     AND state = $2 AND lease_owner = $3{}) \
                     UPDATE job_records SET lease_until = $4 FROM mine \
                     WHERE job_id = $1 AND seq = m_seq",
                    $skip_locked
                )))
                .bind(id.0)
                .bind(RecordState::InFlight.as_str())
                .bind(owner)
                .bind(millis(lease_until))
                .execute(&self.bulk)
                .await
                .map_err(internal)
                .map(|r| r.rows_affected())
            }

            async fn settle(
                &self,
                id: RunId,
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
                let mut tx = self.begin_bulk().await?;
                let mut by_state = [0u64; RecordState::ALL.len()];
                // One statement per state and chunk (a batch mostly ends in one state):
                // a batch settles in a few round trips, and the rows each statement
                // changed are that state's count, with no row sent back.
                for (slot, state) in RecordState::ALL.iter().enumerate() {
                    let ending: Vec<&Settled> =
                        outcomes.iter().filter(|o| o.state == *state).collect();
                    for chunk in ending.chunks(SETTLED_PER_STATEMENT) {
                        let mut update = sqlx::QueryBuilder::<$db>::new(
                            "WITH v (v_seq, v_scim_id, v_class, v_detail, v_type, v_groups, v_user_type, \
                             v_strategy) AS (",
                        );
                        update.push_values(chunk, |mut row, o| {
                            row.push_bind(o.seq as i64)
                                .push_bind(o.scim_id.clone())
                                .push_bind(o.error_class.clone())
                                .push_bind(o.error_detail.clone())
                                .push_bind(o.scim_type.clone())
                                .push_bind(o.groups.clone())
                                .push_bind(o.moved.as_ref().map(|p| p.user_type.clone()))
                                .push_bind(o.moved.as_ref().map(|p| p.password.as_str()));
                        });
                        update
                            .push(") UPDATE job_records SET state = ")
                            .push_bind(state.as_str())
                            .push(
                                ", scim_id = v_scim_id, error_class = v_class, \
                                 error_detail = v_detail, scim_type = v_type, \
                                 member_of = COALESCE(v_groups, member_of), \
                                 user_type = COALESCE(v_user_type, user_type), \
                                 password_strategy = COALESCE(v_strategy, password_strategy), \
                                 lease_until = NULL, settled_at = ",
                            )
                            .push_bind(millis(at))
                            .push(" FROM v WHERE job_id = ")
                            .push_bind(id.0)
                            .push(concat!(" AND seq = v_seq AND ", $by_row, "state = "))
                            .push_bind(RecordState::InFlight.as_str())
                            .push(" AND lease_owner = ")
                            .push_bind(owner);
                        by_state[slot] += update
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(internal)?
                            .rows_affected();
                        // A user a rollback deleted takes its moved password with it: a
                        // user created again later has a new id and its password to move.
                        let gone: Vec<&String> =
                            chunk.iter().filter_map(|o| o.scim_id.as_ref()).collect();
                        if *state == RecordState::Deleted && !gone.is_empty() {
                            let mut forget = sqlx::QueryBuilder::<$db>::new(
                                "DELETE FROM password_moves WHERE project_id = \
                                 (SELECT project_id FROM jobs WHERE id = ",
                            );
                            forget.push_bind(id.0).push(") AND scim_id IN (");
                            let mut list = forget.separated(", ");
                            for scim_id in gone {
                                list.push_bind(scim_id.clone());
                            }
                            forget.push(")");
                            forget.build().execute(&mut *tx).await.map_err(internal)?;
                        }
                    }
                }
                for (slot, n) in by_state.iter().enumerate() {
                    Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::ALL[slot], *n)
                        .await?;
                }
                tx.commit().await.map_err(internal)?;
                Ok(by_state.iter().sum())
            }

            async fn lapse_leases(
                &self,
                prefix: &str,
                current: &str,
                now: DateTime<Utc>,
            ) -> Result<u64> {
                let lapsed = millis(now) - 1;
                let records = self
                    .execute(
                        sqlx::query(
                            "UPDATE job_records SET lease_until = $1 WHERE state = $2 \
                             AND substr(lease_owner, 1, $3) = $4 \
                             AND substr(lease_owner, 1, $5) <> $6",
                        )
                        .bind(lapsed)
                        .bind(RecordState::InFlight.as_str())
                        .bind(prefix.len() as i32)
                        .bind(prefix)
                        .bind(current.len() as i32)
                        .bind(current),
                    )
                    .await?;
                self.execute(
                    sqlx::query(
                        "UPDATE jobs SET finisher_until = $1 WHERE finisher IS NOT NULL \
                         AND substr(finisher, 1, $2) = $3 AND substr(finisher, 1, $4) <> $5",
                    )
                    .bind(lapsed)
                    .bind(prefix.len() as i32)
                    .bind(prefix)
                    .bind(current.len() as i32)
                    .bind(current),
                )
                .await?;
                Ok(records)
            }

            async fn release(&self, id: RunId, owner: &str) -> Result<u64> {
                let mut tx = self.begin_bulk().await?;
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

            async fn unclaim(&self, id: RunId, owner: &str, seqs: &[u64]) -> Result<u64> {
                let mut tx = self.begin_bulk().await?;
                let mut unclaimed = 0;
                // Never sent: the claim does not count as an attempt, nor the record as sent.
                let set = format!(
                    "state = '{}', lease_owner = NULL, lease_until = NULL, \
                     attempts = attempts - 1, sent = FALSE, sent_at = NULL",
                    RecordState::Pending.as_str()
                );
                for chunk in seqs.chunks(SETTLED_PER_STATEMENT) {
                    unclaimed += Self::update_owned(&set, id, owner, chunk)
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?
                        .rows_affected();
                }
                Self::shift_counts(&mut tx, id, RecordState::InFlight, RecordState::Pending, unclaimed)
                    .await?;
                tx.commit().await.map_err(internal)?;
                Ok(unclaimed)
            }

            async fn mark_sent(
                &self,
                id: RunId,
                owner: &str,
                seqs: &[u64],
                at: DateTime<Utc>,
            ) -> Result<u64> {
                let mut marked = 0;
                // A number, formatted: nothing from outside reaches the statement.
                let set = format!("sent = TRUE, sent_at = COALESCE(sent_at, {})", millis(at));
                for chunk in seqs.chunks(SETTLED_PER_STATEMENT) {
                    marked += Self::update_owned(&set, id, owner, chunk)
                        .build()
                        .execute(&self.bulk)
                        .await
                        .map_err(internal)?
                        .rows_affected();
                }
                Ok(marked)
            }
        }
    };
}

run_store!(
    SqliteStore,
    sqlx::Sqlite,
    skip_locked = "",
    by_row = "+",
    statistics = None::<&'static str>,
);
run_store!(
    PostgresStore,
    sqlx::Postgres,
    skip_locked = " FOR UPDATE SKIP LOCKED",
    by_row = "",
    statistics = Some("ANALYZE job_records"),
);
