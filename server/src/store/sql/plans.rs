//! The plan versions' table for both databases: the document as JSON, numbered per
//! project, with who saved and who approved each.

use super::{PostgresStore, SqliteStore, count, limit, offset};
use crate::store::rows::{db_error, internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{AccountId, ProjectId},
    pagination::{Page, PageRequest},
    plan::{PlanDocument, PlanVersion, PlanVersionSummary},
    ports::PlanStore,
};

type Row = (
    i64,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
);

const SELECT: &str = "SELECT p.version, p.document, p.note, s.email, p.saved_at, a.email, \
     p.approved_at FROM plan_versions p LEFT JOIN accounts s ON s.id = p.saved_by \
     LEFT JOIN accounts a ON a.id = p.approved_by";

fn version(row: Row) -> Result<PlanVersion> {
    let (number, document, note, saved_by, saved_at, approved_by, approved_at) = row;
    let document: PlanDocument = serde_json::from_str(&document)
        .map_err(|e| DomainError::Internal(format!("stored plan {number} unreadable: {e}")))?;
    Ok(PlanVersion {
        summary: PlanVersionSummary {
            version: u32::try_from(number).unwrap_or(u32::MAX),
            note,
            saved_by_email: saved_by,
            saved_at: time(saved_at),
            approved_by_email: approved_by,
            approved_at: approved_at.map(time),
        },
        document,
    })
}

macro_rules! plan_store {
    ($name:ident) => {
        #[async_trait]
        impl PlanStore for $name {
            async fn save_plan_version(
                &self,
                project: ProjectId,
                document: &PlanDocument,
                note: &str,
                by: Option<AccountId>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<u32> {
                let json = serde_json::to_string(document)
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let mut tx = self.begin().await?;
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(version) FROM plan_versions WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
                let next = last.unwrap_or(0) + 1;
                sqlx::query(
                    "INSERT INTO plan_versions (project_id, version, document, note, saved_by, \
                     saved_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(project.0)
                .bind(next)
                .bind(json)
                .bind(note)
                .bind(by.map(|a| a.0))
                .bind(millis(at))
                .execute(&mut *tx)
                .await
                .map_err(db_error(
                    "another version of the plan was saved at the same moment; reload and \
                     save again",
                ))?;
                let mut audit = audit.clone();
                audit.detail = format!("version {next}: {}", audit.detail);
                Self::commit(tx, &audit).await?;
                Ok(u32::try_from(next).unwrap_or(u32::MAX))
            }

            async fn plan_version(
                &self,
                project: ProjectId,
                number: Option<u32>,
            ) -> Result<Option<PlanVersion>> {
                let row: Option<Row> = match number {
                    Some(n) => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "{SELECT} WHERE p.project_id = $1 AND p.version = $2"
                        )))
                        .bind(project.0)
                        .bind(i64::from(n))
                        .fetch_optional(&self.pool)
                        .await
                    }
                    None => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "{SELECT} WHERE p.project_id = $1 ORDER BY p.version DESC LIMIT 1"
                        )))
                        .bind(project.0)
                        .fetch_optional(&self.pool)
                        .await
                    }
                }
                .map_err(internal)?;
                row.map(version).transpose()
            }

            async fn plan_versions(
                &self,
                project: ProjectId,
                page: PageRequest,
            ) -> Result<Page<PlanVersionSummary>> {
                let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE p.project_id = $1 ORDER BY p.version DESC LIMIT $2 OFFSET $3"
                )))
                .bind(project.0)
                .bind(limit(page))
                .bind(offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let items = rows
                    .into_iter()
                    .map(|r| version(r).map(|v| v.summary))
                    .collect::<Result<Vec<_>>>()?;
                let total: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM plan_versions WHERE project_id = $1")
                        .bind(project.0)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(Page {
                    items,
                    total: count(total),
                    offset: page.offset,
                    limit: page.limit,
                })
            }

            async fn approve_plan_version(
                &self,
                project: ProjectId,
                version: u32,
                by: AccountId,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let n = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE plan_versions SET approved_by = $1, approved_at = $2 \
                         WHERE project_id = $3 AND version = $4 AND approved_at IS NULL",
                    )
                    .bind(by.0)
                    .bind(millis(at))
                    .bind(project.0)
                    .bind(i64::from(version)),
                )
                .await?;
                if n == 0 {
                    let exists: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM plan_versions WHERE project_id = $1 \
                         AND version = $2",
                    )
                    .bind(project.0)
                    .bind(i64::from(version))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(internal)?;
                    return Err(if exists == 0 {
                        DomainError::NotFound(format!("plan version {version}"))
                    } else {
                        DomainError::Conflict(format!("plan version {version} is approved already"))
                    });
                }
                Self::commit(tx, audit).await
            }
        }
    };
}

plan_store!(SqliteStore);
plan_store!(PostgresStore);
