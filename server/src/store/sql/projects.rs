//! Projects (with their support grants), API tokens and the audit log, for both
//! databases.

use super::*;

macro_rules! project_store {
    ($name:ident, $db:ty, $conn:ty) => {
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
                self.execute(sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
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
    };
}

project_store!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
project_store!(PostgresStore, sqlx::Postgres, sqlx::PgConnection);
