//! The plan's tables for both databases: a project's user types (one JSON document),
//! the impact computation with its progress and sealed report, and the reads of sealed
//! records a preview samples.

use super::{PostgresStore, SqliteStore, count};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    assess::AssessmentStatus,
    audit::NewAuditEntry,
    ids::{AccountId, ProjectId},
    mapping::{Mapping, Rule},
    ports::{GoalsStore, ImpactRow, StoredUserTypes},
    user_types::UserTypes,
};

type UserTypesRow = (String, i64, Option<String>);
type ImpactDbRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| DomainError::Internal(format!("stored {what}: {e}")))
}

fn text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| DomainError::Internal(e.to_string()))
}

/// Source ids per statement when reading records by id.
const IDS_PER_STATEMENT: usize = 500;

macro_rules! goals_store {
    ($name:ident, $db:ty) => {
        #[async_trait]
        impl GoalsStore for $name {
            async fn user_types(&self, project: ProjectId) -> Result<Option<StoredUserTypes>> {
                let row: Option<UserTypesRow> = sqlx::query_as(
                    "SELECT s.segments, s.saved_at, a.email FROM project_segments s \
                     LEFT JOIN accounts a ON a.id = s.saved_by WHERE s.project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                row.map(|(user_types, at, email)| {
                    Ok(StoredUserTypes {
                        user_types: json(&user_types, "user types")?,
                        saved_at: time(at),
                        saved_by_email: email,
                    })
                })
                .transpose()
            }

            async fn save_user_types(
                &self,
                project: ProjectId,
                user_types: &UserTypes,
                by: Option<AccountId>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO project_segments (project_id, segments, saved_by, saved_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE SET \
                         segments = excluded.segments, saved_by = excluded.saved_by, \
                         saved_at = excluded.saved_at",
                    )
                    .bind(project.0)
                    .bind(text(user_types)?)
                    .bind(by.map(|a| a.0))
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn start_impact(
                &self,
                project: ProjectId,
                records_total: u64,
                mapping: &Mapping,
                user_types: &UserTypes,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let status: Option<String> =
                    sqlx::query_scalar("SELECT status FROM mapping_impacts WHERE project_id = $1")
                        .bind(project.0)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(internal)?;
                if status.as_deref() == Some(AssessmentStatus::Running.as_str()) {
                    return Err(DomainError::Conflict(
                        "the impact is being computed already; wait for it to finish".into(),
                    ));
                }
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO mapping_impacts (project_id, status, rules, segments, \
                         records_total, records_done, started_at, finished_at, error, report) \
                         VALUES ($1, $2, $3, $4, $5, 0, $6, NULL, NULL, NULL) \
                         ON CONFLICT (project_id) DO UPDATE SET status = excluded.status, \
                         rules = excluded.rules, segments = excluded.segments, \
                         records_total = excluded.records_total, records_done = 0, \
                         started_at = excluded.started_at, finished_at = NULL, error = NULL",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Running.as_str())
                    .bind(text(&mapping.rules)?)
                    .bind(text(user_types)?)
                    .bind(records_total as i64)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn save_impact_progress(&self, project: ProjectId, records_done: u64) -> Result<()> {
                self.execute(
                    sqlx::query("UPDATE mapping_impacts SET records_done = $2 WHERE project_id = $1")
                        .bind(project.0)
                        .bind(records_done as i64),
                )
                .await
                .map(|_| ())
            }

            async fn finish_impact(
                &self,
                project: ProjectId,
                outcome: std::result::Result<&[u8], &str>,
                at: DateTime<Utc>,
            ) -> Result<()> {
                // A failed computation keeps the last report: its rules are stored
                // beside it, so what it describes stays clear.
                let statement = match outcome {
                    Ok(report) => sqlx::query(
                        "UPDATE mapping_impacts SET status = $2, finished_at = $3, report = $4, \
                         records_done = records_total WHERE project_id = $1",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Ready.as_str())
                    .bind(millis(at))
                    .bind(report.to_vec()),
                    Err(reason) => sqlx::query(
                        "UPDATE mapping_impacts SET status = $2, finished_at = $3, error = $4, \
                         report = NULL WHERE project_id = $1",
                    )
                    .bind(project.0)
                    .bind(AssessmentStatus::Failed.as_str())
                    .bind(millis(at))
                    .bind(reason.to_string()),
                };
                self.execute(statement).await.map(|_| ())
            }

            async fn impact(&self, project: ProjectId) -> Result<Option<ImpactRow>> {
                let row: Option<ImpactDbRow> = sqlx::query_as(
                    "SELECT status, rules, segments, records_total, records_done, started_at, \
                     finished_at, error, report FROM mapping_impacts WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                row.map(
                    |(status, rules, user_types, total, done, started, finished, error, report)| {
                        let rules: Vec<Rule> = json(&rules, "impact rules")?;
                        Ok(ImpactRow {
                            status: AssessmentStatus::parse(&status).ok_or_else(|| {
                                DomainError::Internal(format!("unknown impact status {status:?}"))
                            })?,
                            mapping: Mapping { rules },
                            user_types: json(&user_types, "impact user types")?,
                            records_total: count(total),
                            records_done: count(done),
                            started_at: time(started),
                            finished_at: finished.map(time),
                            error,
                            sealed_report: report,
                        })
                    },
                )
                .transpose()
            }

            async fn running_impacts(&self) -> Result<Vec<ProjectId>> {
                let ids: Vec<uuid::Uuid> =
                    sqlx::query_scalar("SELECT project_id FROM mapping_impacts WHERE status = $1")
                        .bind(AssessmentStatus::Running.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(ids.into_iter().map(ProjectId).collect())
            }

            async fn sealed_records(
                &self,
                project: ProjectId,
                ids: &[String],
            ) -> Result<Vec<(String, Vec<u8>)>> {
                let mut found = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(IDS_PER_STATEMENT) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT r.source_id, COALESCE(c.data, r.data) FROM records r \
                         LEFT JOIN record_corrections c ON c.project_id = r.project_id \
                         AND c.source_id = r.source_id WHERE r.project_id = ",
                    );
                    query.push_bind(project.0).push(" AND r.source_id IN (");
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    query.push(")");
                    let rows: Vec<(String, Vec<u8>)> = query
                        .build_query_as()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?;
                    found.extend(rows);
                }
                // In the order asked for.
                let place: std::collections::HashMap<&str, usize> =
                    ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
                found.sort_by_key(|(id, _)| place.get(id.as_str()).copied());
                Ok(found)
            }

            async fn sealed_records_by_digest(
                &self,
                project: ProjectId,
                from: &str,
                to: &str,
                limit: u32,
            ) -> Result<Vec<(String, Vec<u8>)>> {
                sqlx::query_as(
                    "SELECT r.source_id, COALESCE(c.data, r.data) FROM records r \
                     LEFT JOIN record_corrections c ON c.project_id = r.project_id \
                     AND c.source_id = r.source_id WHERE r.project_id = $1 \
                     AND r.digest >= $2 AND r.digest < $3 LIMIT $4",
                )
                .bind(project.0)
                .bind(from)
                .bind(to)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)
            }
        }
    };
}

goals_store!(SqliteStore, sqlx::Sqlite);
goals_store!(PostgresStore, sqlx::Postgres);
