//! The mapping versions' table for both databases: rules as JSON, numbered per project.

use super::{PostgresStore, SqliteStore, count, limit, offset};
use crate::store::rows::{db_error, internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{AccountId, ProjectId},
    mapping::{
        Mapping, Rule,
        versions::{MappingVersion, MappingVersionSummary},
    },
    pagination::{Page, PageRequest},
    ports::MappingStore,
};

type Row = (
    uuid::Uuid,
    i64,
    String,
    String,
    Option<uuid::Uuid>,
    Option<String>,
    i64,
);

const SELECT: &str = "SELECT m.project_id, m.version, m.rules, m.note, m.created_by, \
     a.email, m.created_at FROM mapping_versions m LEFT JOIN accounts a ON a.id = m.created_by";

fn version(row: Row) -> Result<MappingVersion> {
    let (project, number, rules, note, by, email, at) = row;
    let rules: Vec<Rule> = serde_json::from_str(&rules)
        .map_err(|e| DomainError::Internal(format!("stored mapping {number} unreadable: {e}")))?;
    Ok(MappingVersion {
        project_id: ProjectId(project),
        version: u32::try_from(number).unwrap_or(u32::MAX),
        mapping: Mapping { rules },
        note,
        created_by: by.map(AccountId),
        created_by_email: email,
        created_at: time(at),
    })
}

macro_rules! mapping_store {
    ($name:ident) => {
        #[async_trait]
        impl MappingStore for $name {
            async fn save_mapping_version(
                &self,
                project: ProjectId,
                mapping: &Mapping,
                note: &str,
                by: Option<AccountId>,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<u32> {
                let rules = serde_json::to_string(&mapping.rules)
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let mut tx = self.begin().await?;
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(version) FROM mapping_versions WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
                let next = last.unwrap_or(0) + 1;
                sqlx::query(
                    "INSERT INTO mapping_versions (project_id, version, rules, note, created_by, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(project.0)
                .bind(next)
                .bind(rules)
                .bind(note)
                .bind(by.map(|a| a.0))
                .bind(millis(at))
                .execute(&mut *tx)
                .await
                .map_err(db_error(
                    "another version was saved at the same moment; reload and save again",
                ))?;
                let mut audit = audit.clone();
                audit.detail = format!("version {next}: {}", audit.detail);
                Self::commit(tx, &audit).await?;
                Ok(u32::try_from(next).unwrap_or(u32::MAX))
            }

            async fn mapping_version(
                &self,
                project: ProjectId,
                number: Option<u32>,
            ) -> Result<Option<MappingVersion>> {
                let row: Option<Row> = match number {
                    Some(n) => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "{SELECT} WHERE m.project_id = $1 AND m.version = $2"
                        )))
                        .bind(project.0)
                        .bind(i64::from(n))
                        .fetch_optional(&self.pool)
                        .await
                    }
                    None => {
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "{SELECT} WHERE m.project_id = $1 ORDER BY m.version DESC LIMIT 1"
                        )))
                        .bind(project.0)
                        .fetch_optional(&self.pool)
                        .await
                    }
                }
                .map_err(internal)?;
                row.map(version).transpose()
            }

            async fn mapping_versions(
                &self,
                project: ProjectId,
                page: PageRequest,
            ) -> Result<Page<MappingVersionSummary>> {
                let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE m.project_id = $1 ORDER BY m.version DESC LIMIT $2 OFFSET $3"
                )))
                .bind(project.0)
                .bind(limit(page))
                .bind(offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let items = rows
                    .into_iter()
                    .map(|r| version(r).map(|v| MappingVersionSummary::from(&v)))
                    .collect::<Result<Vec<_>>>()?;
                let total: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM mapping_versions WHERE project_id = $1",
                )
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
        }
    };
}

mapping_store!(SqliteStore);
mapping_store!(PostgresStore);
