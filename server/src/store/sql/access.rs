//! Getting in, for both databases: accounts, sessions, the setup token, invitations
//! and the sign-in throttle's counters.

use super::*;

macro_rules! access_store {
    ($name:ident, $db:ty, $conn:ty) => {
        #[async_trait]
        impl AccountStore for $name {
            async fn count_accounts(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(count(n))
            }

            async fn create_first_owner(
                &self,
                account: &NewAccount,
                audit: &NewAuditEntry,
            ) -> Result<Account> {
                let mut tx = self.begin().await?;
                // The conditional insert makes "only while no account exists" atomic.
                let inserted = Self::exec(&mut tx, sqlx::query("INSERT INTO accounts (id, email, display_name, role, status, password_hash, \
                     created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, $7, $7 \
                     WHERE NOT EXISTS (SELECT 1 FROM accounts)")
                .bind(account.id.0)
                .bind(&account.email)
                .bind(&account.display_name)
                .bind(account.role.as_str())
                .bind(account.status.as_str())
                .bind(&account.password_hash)
                .bind(millis(account.created_at))).await?;
                if inserted == 0 {
                    return Err(DomainError::Conflict(
                        "Ferry is already set up; sign in instead".into(),
                    ));
                }
                Self::commit(tx, audit).await?;
                self.load_account(account.id).await
            }

            async fn insert_account(
                &self,
                account: &NewAccount,
                audit: &NewAuditEntry,
            ) -> Result<Account> {
                let mut tx = self.begin().await?;
                Self::insert_account_in(&mut tx, account).await?;
                Self::commit(tx, audit).await?;
                self.load_account(account.id).await
            }

            async fn account(&self, id: AccountId) -> Result<Option<Account>> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1");
                self.by_id::<AccountRow, Account>(sql, id.0).await
            }

            async fn account_with_hash(
                &self,
                email: &str,
            ) -> Result<Option<(Account, Option<String>)>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE email = $1"
                );
                let row = sqlx::query_as::<_, AccountHashRow>(AssertSqlSafe(sql))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?;
                row.map(|r| Ok((Account::try_from(r.account)?, r.password_hash)))
                    .transpose()
            }

            async fn password_hash(&self, id: AccountId) -> Result<Option<String>> {
                let hash: Option<Option<String>> =
                    sqlx::query_scalar("SELECT password_hash FROM accounts WHERE id = $1")
                        .bind(id.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(hash.flatten())
            }

            async fn set_password(
                &self,
                id: AccountId,
                hash: &str,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE accounts SET password_hash = $2, updated_at = $3, \
                     status = CASE WHEN status = 'invited' THEN 'active' ELSE status END \
                     WHERE id = $1")
                .bind(id.0)
                .bind(hash)
                .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                Self::commit(tx, audit).await
            }

            async fn set_role(&self, id: AccountId, role: Role, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(&mut tx, sqlx::query("UPDATE accounts SET role = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(role.as_str())
                    .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                if role != Role::Support {
                    // Assignments only mean something for support staff.
                    Self::exec(&mut tx, sqlx::query("DELETE FROM project_support WHERE account_id = $1")
                        .bind(id.0)).await?;
                }
                Self::commit(tx, audit).await
            }

            async fn set_status(
                &self,
                id: AccountId,
                status: AccountStatus,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows =
                    Self::exec(&mut tx, sqlx::query("UPDATE accounts SET status = $2, updated_at = $3 WHERE id = $1")
                        .bind(id.0)
                        .bind(status.as_str())
                        .bind(millis(audit.at))).await?;
                not_found_unless_one(rows, "member")?;
                if status == AccountStatus::Disabled {
                    for sql in [
                        "DELETE FROM sessions WHERE account_id = $1",
                        "DELETE FROM invites WHERE account_id = $1",
                    ] {
                        Self::exec(&mut tx, sqlx::query(sql).bind(id.0)).await?;
                    }
                }
                Self::commit(tx, audit).await
            }

            async fn list_accounts(&self, page: PageRequest) -> Result<Page<Account>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id LIMIT $1 OFFSET $2"
                );
                let items = sqlx::query_as::<_, AccountRow>(AssertSqlSafe(sql))
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Account::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total = self.count_accounts().await?;
                Ok(Page { items, total, offset: page.offset, limit: page.limit })
            }

            async fn count_active_owners(&self) -> Result<u64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM accounts WHERE role = 'owner' AND status = 'active'",
                )
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(count(n))
            }
        }

        #[async_trait]
        impl SessionStore for $name {
            async fn create_session(
                &self,
                token_hash: &str,
                account: AccountId,
                created_at: DateTime<Utc>,
                expires_at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("INSERT INTO sessions (token_hash, account_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(account.0)
                .bind(millis(created_at))
                .bind(millis(expires_at))).await?;
                Self::exec(&mut tx, sqlx::query("UPDATE accounts SET last_sign_in_at = $2 WHERE id = $1")
                    .bind(account.0)
                    .bind(millis(created_at))).await?;
                Self::commit(tx, audit).await
            }

            async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>> {
                let row: Option<(uuid::Uuid, i64)> = sqlx::query_as(
                    "SELECT account_id, expires_at FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(row.map(|(account, expires)| SessionRecord {
                    account_id: AccountId(account),
                    expires_at: crate::store::rows::time(expires),
                }))
            }

            async fn delete_session(
                &self,
                token_hash: &str,
                audit: Option<&NewAuditEntry>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(&mut tx, sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)).await?;
                if let Some(audit) = audit {
                    Self::audit(&mut tx, audit).await?;
                }
                tx.commit().await.map_err(internal)
            }

            async fn delete_other_sessions(&self, account: AccountId, keep_hash: &str) -> Result<()> {
                self.execute(sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2")
                    .bind(account.0)
                    .bind(keep_hash)).await?;
                Ok(())
            }

            async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
                self.execute(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(millis(now))).await
            }
        }

        #[async_trait]
        impl SetupStore for $name {
            async fn add_setup_token(&self, token_hash: &str, created_at: DateTime<Utc>) -> Result<()> {
                self.execute(sqlx::query("INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)")
                    .bind(token_hash)
                    .bind(millis(created_at))).await?;
                Ok(())
            }

            async fn setup_token_exists(&self, token_hash: &str, since: DateTime<Utc>) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND created_at >= $2",
                )
                .bind(token_hash)
                .bind(millis(since))
                .fetch_one(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(n > 0)
            }

            async fn clear_setup_tokens(&self) -> Result<()> {
                self.execute(sqlx::query("DELETE FROM setup_tokens")).await?;
                Ok(())
            }
        }

        #[async_trait]
        impl InviteStore for $name {
            async fn put_invite(
                &self,
                token_hash: &str,
                account: AccountId,
                expires_at: DateTime<Utc>,
            ) -> Result<()> {
                self.execute(sqlx::query("INSERT INTO invites (token_hash, account_id, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE SET token_hash = excluded.token_hash, \
                     expires_at = excluded.expires_at")
                .bind(token_hash)
                .bind(account.0)
                .bind(millis(expires_at))).await?;
                Ok(())
            }

            async fn invite(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<AccountId>> {
                let id: Option<uuid::Uuid> = sqlx::query_scalar(
                    "SELECT account_id FROM invites WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(millis(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(id.map(AccountId))
            }

            async fn delete_invites(&self, account: AccountId) -> Result<()> {
                self.execute(sqlx::query("DELETE FROM invites WHERE account_id = $1")
                    .bind(account.0)).await?;
                Ok(())
            }
        }

        #[async_trait]
        impl ThrottleStore for $name {
            async fn record_failure(
                &self,
                scope: ThrottleScope,
                key: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                self.execute(sqlx::query("INSERT INTO sign_in_failures (scope, key, at) VALUES ($1, $2, $3)")
                    .bind(scope.as_str())
                    .bind(key)
                    .bind(millis(at))).await?;
                Ok(())
            }

            async fn failures_since(
                &self,
                scope: ThrottleScope,
                key: &str,
                since: DateTime<Utc>,
            ) -> Result<FailureStats> {
                let (n, oldest): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(at) FROM sign_in_failures \
                     WHERE scope = $1 AND key = $2 AND at >= $3",
                )
                .bind(scope.as_str())
                .bind(key)
                .bind(millis(since))
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(FailureStats {
                    count: u32::try_from(n).unwrap_or(u32::MAX),
                    oldest: oldest.map(crate::store::rows::time),
                })
            }

            async fn clear_failures(&self, scope: ThrottleScope, key: &str) -> Result<()> {
                self.execute(sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1 AND key = $2")
                    .bind(scope.as_str())
                    .bind(key)).await?;
                Ok(())
            }

            async fn withdraw_failure(
                &self,
                scope: ThrottleScope,
                key: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                self.execute(sqlx::query(
                    "DELETE FROM sign_in_failures WHERE id = (SELECT MAX(id) FROM sign_in_failures \
                     WHERE scope = $1 AND key = $2 AND at = $3)",
                )
                .bind(scope.as_str())
                .bind(key)
                .bind(millis(at))).await?;
                Ok(())
            }

            async fn purge_failures_before(&self, before: DateTime<Utc>) -> Result<u64> {
                self.execute(sqlx::query("DELETE FROM sign_in_failures WHERE at < $1")
                    .bind(millis(before))).await
            }
        }
    };
}

access_store!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
access_store!(PostgresStore, sqlx::Postgres, sqlx::PgConnection);
