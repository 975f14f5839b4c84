//! Project keys, retention settings and purges for both databases. A purge is one
//! transaction: the key destroyed, the imported data deleted, what was chosen kept.

use super::{PostgresStore, SqliteStore, count};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{ProjectId, UploadId},
    ports::RetentionStore,
    retention::{Holding, PurgeOutcome, Retention, StoredKey},
};

/// What a purge deletes outright, table by table, for the project in `$1`: the
/// imported records and everything that names their users.
const PURGED: &[&str] = &[
    "DELETE FROM record_errors WHERE upload_id IN (SELECT id FROM uploads WHERE project_id = $1)",
    "DELETE FROM record_corrections WHERE project_id = $1",
    "DELETE FROM review_events WHERE project_id = $1",
    "DELETE FROM review_keys WHERE project_id = $1",
    "DELETE FROM review_items WHERE project_id = $1",
    "DELETE FROM review_tally WHERE project_id = $1",
    "DELETE FROM review_tasks WHERE project_id = $1",
    "DELETE FROM assessment_findings WHERE project_id = $1",
    "UPDATE assessments SET report = NULL WHERE project_id = $1",
    "UPDATE mapping_impacts SET report = NULL WHERE project_id = $1",
    "DELETE FROM project_secrets WHERE project_id = $1",
    "DELETE FROM targets WHERE project_id = $1",
    "DELETE FROM legacy_connections WHERE project_id = $1",
    "DELETE FROM password_contexts WHERE project_id = $1",
    "DELETE FROM password_attempts WHERE project_id = $1",
    // The verification service stops answering: its credentials are gone.
    "UPDATE password_services SET enabled = FALSE, secret_hash = NULL, secret_hint = NULL, \
     key_hash = NULL, key_hint = NULL WHERE project_id = $1",
    "UPDATE jobs SET sealed_readback = NULL WHERE project_id = $1",
];

/// The crosswalk: each source id with the target's id, per run and per password move.
const CROSSWALK: &[&str] = &[
    "DELETE FROM job_records WHERE job_id IN (SELECT id FROM jobs WHERE project_id = $1)",
    "DELETE FROM password_moves WHERE project_id = $1",
];

type KeyRow = (String, Option<Vec<u8>>);

fn stored_key(row: Option<KeyRow>) -> Result<StoredKey> {
    Ok(match row {
        None => StoredKey::None,
        Some((scheme, wrapped)) => match (scheme.as_str(), wrapped) {
            ("server", _) => StoredKey::Server,
            ("own", Some(wrapped)) => StoredKey::Own(wrapped),
            ("destroyed", _) => StoredKey::Destroyed,
            (other, _) => {
                return Err(DomainError::Internal(format!(
                    "a project key is stored as {other:?}"
                )));
            }
        },
    })
}

macro_rules! retention_store {
    ($name:ident) => {
        #[async_trait]
        impl RetentionStore for $name {
            async fn project_key(&self, project: ProjectId) -> Result<StoredKey> {
                let row: Option<KeyRow> = sqlx::query_as(
                    "SELECT scheme, wrapped FROM project_keys WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                stored_key(row)
            }

            async fn insert_project_key(
                &self,
                project: ProjectId,
                wrapped: &[u8],
                at: DateTime<Utc>,
            ) -> Result<StoredKey> {
                sqlx::query(
                    "INSERT INTO project_keys (project_id, scheme, wrapped, created_at) \
                     VALUES ($1, 'own', $2, $3) ON CONFLICT (project_id) DO NOTHING",
                )
                .bind(project.0)
                .bind(wrapped)
                .bind(millis(at))
                .execute(&self.pool)
                .await
                .map_err(internal)?;
                self.project_key(project).await
            }

            async fn retention(&self, project: ProjectId) -> Result<Retention> {
                let row: Option<(Option<i64>, bool, bool)> = sqlx::query_as(
                    "SELECT retention_days, keep_crosswalk, keep_report FROM projects \
                     WHERE id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                let (days, keep_crosswalk, keep_report) =
                    row.ok_or_else(|| DomainError::NotFound("project".into()))?;
                Ok(Retention {
                    days: days.and_then(|d| u32::try_from(d).ok()),
                    keep_crosswalk,
                    keep_report,
                })
            }

            async fn save_retention(
                &self,
                project: ProjectId,
                retention: &Retention,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE projects SET retention_days = $2, keep_crosswalk = $3, \
                         keep_report = $4 WHERE id = $1",
                    )
                    .bind(project.0)
                    .bind(retention.days.map(i64::from))
                    .bind(retention.keep_crosswalk)
                    .bind(retention.keep_report),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn real_run_finished_at(
                &self,
                project: ProjectId,
            ) -> Result<Option<DateTime<Utc>>> {
                let at: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(finished_at) FROM jobs WHERE project_id = $1 \
                     AND kind = 'real_run' AND state IN ('succeeded', 'failed')",
                )
                .bind(project.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(at.map(time))
            }

            async fn holding(&self, project: ProjectId) -> Result<Holding> {
                let (records, uploads, crosswalk): (i64, i64, i64) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM records WHERE project_id = $1), \
                     (SELECT COUNT(*) FROM uploads WHERE project_id = $1 \
                      AND purged_at IS NULL), \
                     (SELECT COUNT(*) FROM job_records r JOIN jobs j ON j.id = r.job_id \
                      WHERE j.project_id = $1 AND r.scim_id IS NOT NULL)",
                )
                .bind(project.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(Holding {
                    records: count(records),
                    uploads: count(uploads),
                    crosswalk_rows: count(crosswalk),
                })
            }

            async fn projects_due_for_purge(&self, now: DateTime<Utc>) -> Result<Vec<ProjectId>> {
                let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT p.id FROM projects p WHERE p.purged_at IS NULL \
                     AND p.retention_days IS NOT NULL \
                     AND (SELECT MAX(j.finished_at) FROM jobs j WHERE j.project_id = p.id \
                          AND j.kind = 'real_run' AND j.state IN ('succeeded', 'failed')) \
                         + p.retention_days * 86400000 <= $1",
                )
                .bind(millis(now))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(ids.into_iter().map(ProjectId).collect())
            }

            async fn purge_project(
                &self,
                project: ProjectId,
                keep_crosswalk: bool,
                kept_report: Option<Vec<u8>>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<(PurgeOutcome, Vec<UploadId>)> {
                let mut tx = self.begin().await?;
                // The key first: from this statement on, nothing sealed for the
                // project opens, whatever the deletes below leave in free pages.
                let destroyed = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE project_keys SET scheme = 'destroyed', wrapped = NULL, \
                         destroyed_at = $2 WHERE project_id = $1 AND scheme = 'own'",
                    )
                    .bind(project.0)
                    .bind(millis(at)),
                )
                .await?;
                // A project that never sealed anything has no key: none is ever made.
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO project_keys (project_id, scheme, created_at, \
                         destroyed_at) VALUES ($1, 'destroyed', $2, $2) \
                         ON CONFLICT (project_id) DO NOTHING",
                    )
                    .bind(project.0)
                    .bind(millis(at)),
                )
                .await?;
                let uploads: Vec<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT id FROM uploads WHERE project_id = $1 AND purged_at IS NULL",
                )
                .bind(project.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(internal)?;
                let records = Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM records WHERE project_id = $1").bind(project.0),
                )
                .await?;
                for statement in PURGED {
                    Self::exec(
                        &mut tx,
                        sqlx::query(sqlx::AssertSqlSafe(*statement)).bind(project.0),
                    )
                    .await?;
                }
                let mut crosswalk_rows = 0;
                if !keep_crosswalk {
                    for statement in CROSSWALK {
                        crosswalk_rows += Self::exec(
                            &mut tx,
                            sqlx::query(sqlx::AssertSqlSafe(*statement)).bind(project.0),
                        )
                        .await?;
                    }
                }
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE uploads SET purged_at = $2 WHERE project_id = $1 \
                         AND purged_at IS NULL",
                    )
                    .bind(project.0)
                    .bind(millis(at)),
                )
                .await?;
                let kept = kept_report.is_some();
                let marked = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE projects SET purged_at = $2, kept_report = $3, updated_at = $2 \
                         WHERE id = $1 AND purged_at IS NULL",
                    )
                    .bind(project.0)
                    .bind(millis(at))
                    .bind(kept_report),
                )
                .await?;
                if marked == 0 {
                    return Err(DomainError::Conflict(
                        "the project's data was purged already".into(),
                    ));
                }
                let outcome = PurgeOutcome {
                    records,
                    uploads: uploads.len() as u64,
                    crosswalk_rows,
                    key_destroyed: destroyed > 0,
                    kept_crosswalk: keep_crosswalk,
                    kept_report: kept,
                };
                let mut audit = audit.clone();
                audit.detail = outcome.describe();
                Self::commit(tx, &audit).await?;
                Ok((outcome, uploads.into_iter().map(UploadId).collect()))
            }

            async fn purge_upload(
                &self,
                project: ProjectId,
                upload: UploadId,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<u64> {
                let mut tx = self.begin().await?;
                let marked = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE uploads SET purged_at = $3 WHERE id = $2 AND project_id = $1 \
                         AND purged_at IS NULL",
                    )
                    .bind(project.0)
                    .bind(upload.0)
                    .bind(millis(at)),
                )
                .await?;
                if marked == 0 {
                    return Err(DomainError::NotFound("upload not purged yet".into()));
                }
                let records = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "DELETE FROM records WHERE project_id = $1 AND last_upload_id = $2",
                    )
                    .bind(project.0)
                    .bind(upload.0),
                )
                .await?;
                Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM record_errors WHERE upload_id = $1").bind(upload.0),
                )
                .await?;
                let mut audit = audit.clone();
                audit.detail = format!("{} ({records} records deleted)", audit.detail);
                Self::commit(tx, &audit).await?;
                Ok(records)
            }

            async fn kept_report(&self, project: ProjectId) -> Result<Option<Vec<u8>>> {
                let row: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT kept_report FROM projects WHERE id = $1")
                        .bind(project.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(row.flatten())
            }
        }
    };
}

retention_store!(SqliteStore);
retention_store!(PostgresStore);
