//! The assessment's tables for both databases: the report (sealed) with its progress,
//! the findings of the quality checks, and administrators' attribute classes.

use super::{PostgresStore, SqliteStore, count, limit, offset};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    assess::{AssessmentStatus, Check, Finding, classify::DataClass},
    audit::NewAuditEntry,
    ids::{ProjectId, UploadId},
    pagination::{Page, PageRequest},
    ports::{AssessmentRow, AssessmentStore},
};

type Row = (
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);
type FindingRow = (String, Option<String>, String);

/// Findings per statement: five values each, well within both databases' limits.
const FINDINGS_PER_STATEMENT: usize = 500;

macro_rules! assessment_store {
    ($name:ident, $db:ty) => {
        #[async_trait]
        impl AssessmentStore for $name {
            async fn start_assessment(
                &self,
                project: ProjectId,
                records_total: u64,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let running: Option<String> = sqlx::query_scalar(
                    "SELECT status FROM assessments WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
                if running.as_deref() == Some(AssessmentStatus::Running.as_str()) {
                    return Err(DomainError::Conflict(
                        "the assessment is running already".into(),
                    ));
                }
                Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM assessment_findings WHERE project_id = $1")
                        .bind(project.0),
                )
                .await?;
                // The last report stays until the new one replaces it.
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO assessments (project_id, status, records_total, records_done, \
                         started_at, finished_at, error, report) VALUES ($1, $2, $3, 0, $4, NULL, NULL, NULL) \
                         ON CONFLICT (project_id) DO UPDATE SET status = excluded.status, \
                         records_total = excluded.records_total, records_done = 0, \
                         started_at = excluded.started_at, finished_at = NULL, error = NULL",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Running.as_str())
                    .bind(records_total as i64)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn save_assessment_progress(
                &self,
                project: ProjectId,
                records_done: u64,
                findings: &[(u64, Finding)],
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                for chunk in findings.chunks(FINDINGS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO assessment_findings (project_id, check_kind, seq, source_id, field, note) ",
                    );
                    insert.push_values(chunk, |mut row, (seq, finding)| {
                        row.push_bind(project.0)
                            .push_bind(finding.check.as_str())
                            .push_bind(*seq as i64)
                            .push_bind(finding.source_id.clone())
                            .push_bind(finding.field.clone())
                            .push_bind(finding.note.clone());
                    });
                    insert.push(" ON CONFLICT (project_id, check_kind, seq) DO NOTHING");
                    insert.build().execute(&mut *tx).await.map_err(internal)?;
                }
                Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE assessments SET records_done = $2 WHERE project_id = $1")
                        .bind(project.0)
                        .bind(records_done as i64),
                )
                .await?;
                tx.commit().await.map_err(internal)
            }

            async fn finish_assessment(
                &self,
                project: ProjectId,
                outcome: std::result::Result<&[u8], &str>,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let statement = match outcome {
                    Ok(report) => sqlx::query(
                        "UPDATE assessments SET status = $2, finished_at = $3, report = $4, \
                         records_done = records_total WHERE project_id = $1",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Ready.as_str())
                    .bind(millis(at))
                    .bind(report.to_vec()),
                    Err(reason) => sqlx::query(
                        "UPDATE assessments SET status = $2, finished_at = $3, error = $4 \
                         WHERE project_id = $1",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Failed.as_str())
                    .bind(millis(at))
                    .bind(reason.to_string()),
                };
                self.execute(statement).await.map(|_| ())
            }

            async fn assessment(&self, project: ProjectId) -> Result<Option<AssessmentRow>> {
                let row: Option<Row> = sqlx::query_as(
                    "SELECT status, records_total, records_done, started_at, finished_at, error, report \
                     FROM assessments WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                row.map(|(status, total, done, started, finished, error, report)| {
                    Ok(AssessmentRow {
                        status: AssessmentStatus::parse(&status).ok_or_else(|| {
                            DomainError::Internal(format!("unknown assessment status {status:?}"))
                        })?,
                        records_total: count(total),
                        records_done: count(done),
                        started_at: time(started),
                        finished_at: finished.map(time),
                        error,
                        sealed_report: report,
                    })
                })
                .transpose()
            }

            async fn running_assessments(&self) -> Result<Vec<ProjectId>> {
                let ids: Vec<uuid::Uuid> =
                    sqlx::query_scalar("SELECT project_id FROM assessments WHERE status = $1")
                        .bind(AssessmentStatus::Running.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(ids.into_iter().map(ProjectId).collect())
            }

            async fn findings(
                &self,
                project: ProjectId,
                check: Check,
                page: PageRequest,
            ) -> Result<Page<Finding>> {
                let rows: Vec<FindingRow> = sqlx::query_as(
                    "SELECT source_id, field, note FROM assessment_findings \
                     WHERE project_id = $1 AND check_kind = $2 ORDER BY seq LIMIT $3 OFFSET $4",
                )
                .bind(project.0)
                .bind(check.as_str())
                .bind(limit(page))
                .bind(offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM assessment_findings WHERE project_id = $1 AND check_kind = $2",
                )
                .bind(project.0)
                .bind(check.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                let items = rows
                    .into_iter()
                    .map(|(source_id, field, note)| Finding {
                        check,
                        source_id,
                        field,
                        note,
                    })
                    .collect();
                Ok(Page {
                    items,
                    total: count(total),
                    offset: page.offset,
                    limit: page.limit,
                })
            }

            async fn set_attribute_class(
                &self,
                project: ProjectId,
                path: &str,
                class: Option<DataClass>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let statement = match class {
                    Some(class) => sqlx::query(
                        "INSERT INTO attribute_classes (project_id, path, class, set_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, path) DO UPDATE SET \
                         class = excluded.class, set_at = excluded.set_at",
                    )
                    .bind(project.0)
                    .bind(path.to_string())
                    .bind(class.as_str())
                    .bind(millis(at)),
                    None => sqlx::query(
                        "DELETE FROM attribute_classes WHERE project_id = $1 AND path = $2",
                    )
                    .bind(project.0)
                    .bind(path.to_string()),
                };
                Self::exec(&mut tx, statement).await?;
                Self::commit(tx, audit).await
            }

            async fn attribute_classes(
                &self,
                project: ProjectId,
            ) -> Result<Vec<(String, DataClass)>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT path, class FROM attribute_classes WHERE project_id = $1 ORDER BY path",
                )
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                rows.into_iter()
                    .map(|(path, class)| {
                        let class = DataClass::parse(&class).ok_or_else(|| {
                            DomainError::Internal(format!("unknown attribute class {class:?}"))
                        })?;
                        Ok((path, class))
                    })
                    .collect()
            }

            async fn count_records(&self, project: ProjectId) -> Result<u64> {
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE project_id = $1")
                        .bind(project.0)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(count(total))
            }

            async fn records_with_upload(
                &self,
                project: ProjectId,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<(String, UploadId, Vec<u8>)>> {
                let rows: Vec<(String, uuid::Uuid, Vec<u8>)> = sqlx::query_as(
                    "SELECT source_id, last_upload_id, data FROM records \
                     WHERE project_id = $1 AND source_id > $2 ORDER BY source_id LIMIT $3",
                )
                .bind(project.0)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(rows
                    .into_iter()
                    .map(|(id, upload, data)| (id, UploadId(upload), data))
                    .collect())
            }
        }
    };
}

assessment_store!(SqliteStore, sqlx::Sqlite);
assessment_store!(PostgresStore, sqlx::Postgres);
