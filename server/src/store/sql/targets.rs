//! The target connections' table for both databases: settings as JSON, secrets as
//! sealed bytes, the last connection test as JSON.

use super::{PostgresStore, SqliteStore};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::ProjectId,
    ports::TargetStore,
    scim::{
        discovery::ConnectionReport,
        target::{StoredTarget, TargetRole, TargetSettings},
    },
};

type Row = (uuid::Uuid, String, String, Vec<u8>, i64, Option<String>);

const COLUMNS: &str = "project_id, role, settings, sealed_secrets, updated_at, last_test";

fn stored(row: Row) -> Result<StoredTarget> {
    let (project, role, settings, sealed_secrets, updated_at, last_test) = row;
    let broken = |what: &str, e: serde_json::Error| {
        DomainError::Internal(format!("stored target {what} unreadable: {e}"))
    };
    Ok(StoredTarget {
        project_id: ProjectId(project),
        role: TargetRole::parse(&role)?,
        settings: serde_json::from_str(&settings).map_err(|e| broken("settings", e))?,
        sealed_secrets,
        updated_at: time(updated_at),
        last_test: last_test
            .map(|t| serde_json::from_str(&t).map_err(|e| broken("test report", e)))
            .transpose()?,
    })
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| DomainError::Internal(e.to_string()))
}

macro_rules! target_store {
    ($name:ident) => {
        #[async_trait]
        impl TargetStore for $name {
            async fn put_target(
                &self,
                project: ProjectId,
                role: TargetRole,
                settings: &TargetSettings,
                sealed_secrets: &[u8],
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO targets (project_id, role, settings, sealed_secrets, \
                         updated_at, last_test) VALUES ($1, $2, $3, $4, $5, NULL) \
                         ON CONFLICT (project_id, role) DO UPDATE SET \
                         settings = excluded.settings, sealed_secrets = excluded.sealed_secrets, \
                         updated_at = excluded.updated_at, last_test = NULL",
                    )
                    .bind(project.0)
                    .bind(role.as_str())
                    .bind(json(settings)?)
                    .bind(sealed_secrets)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn target(
                &self,
                project: ProjectId,
                role: TargetRole,
            ) -> Result<Option<StoredTarget>> {
                let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM targets WHERE project_id = $1 AND role = $2"
                )))
                .bind(project.0)
                .bind(role.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                row.map(stored).transpose()
            }

            async fn targets(&self, project: ProjectId) -> Result<Vec<StoredTarget>> {
                let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM targets WHERE project_id = $1 ORDER BY role"
                )))
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                rows.into_iter().map(stored).collect()
            }

            async fn delete_target(
                &self,
                project: ProjectId,
                role: TargetRole,
                audit: &NewAuditEntry,
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                let deleted = Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM targets WHERE project_id = $1 AND role = $2")
                        .bind(project.0)
                        .bind(role.as_str()),
                )
                .await?;
                if deleted == 0 {
                    return Ok(false);
                }
                Self::commit(tx, audit).await?;
                Ok(true)
            }

            async fn save_connection_report(
                &self,
                project: ProjectId,
                role: TargetRole,
                report: &ConnectionReport,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let updated = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE targets SET last_test = $3 WHERE project_id = $1 AND role = $2",
                    )
                    .bind(project.0)
                    .bind(role.as_str())
                    .bind(json(report)?),
                )
                .await?;
                if updated == 0 {
                    return Err(DomainError::NotFound("target".into()));
                }
                Self::commit(tx, audit).await
            }
        }
    };
}

target_store!(SqliteStore);
target_store!(PostgresStore);
