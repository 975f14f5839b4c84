//! Uploads for both databases: the upload rows, reading progress, the sealed records
//! an upload writes (upserted by source id, batched), and the errors of its rows.

use super::*;

macro_rules! upload_store {
    ($name:ident, $db:ty, $conn:ty) => {
        #[async_trait]
        impl UploadStore for $name {
            async fn insert_upload(&self, upload: &NewUpload, audit: &NewAuditEntry) -> Result<Upload> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO uploads (id, project_id, file_name, size_bytes, sha256, status, \
                         created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'stored', $6, $7)",
                    )
                    .bind(upload.id.0)
                    .bind(upload.project_id.0)
                    .bind(&upload.file_name)
                    .bind(i64::try_from(upload.size_bytes).unwrap_or(i64::MAX))
                    .bind(&upload.sha256)
                    .bind(upload.created_by.0)
                    .bind(millis(upload.created_at)),
                )
                .await?;
                Self::commit(tx, audit).await?;
                self.upload(upload.id)
                    .await?
                    .ok_or_else(|| DomainError::Internal("upload vanished after insert".into()))
            }

            async fn upload(&self, id: UploadId) -> Result<Option<Upload>> {
                let sql = format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1");
                self.by_id::<UploadRow, Upload>(sql, id.0).await
            }

            async fn delete_upload(&self, id: UploadId, audit: &NewAuditEntry) -> Result<u64> {
                let mut tx = self.begin().await?;
                // Taken while reading or being read: the status checked here holds
                // until the commit (a read starting meanwhile waits for the row).
                let status: Option<String> = sqlx::query_scalar(
                    "UPDATE uploads SET status = status WHERE id = $1 RETURNING status",
                )
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(internal)?;
                match status.as_deref() {
                    None => return Err(DomainError::NotFound("upload".into())),
                    Some(s) if s == UploadStatus::Parsing.as_str() => {
                        return Err(DomainError::Conflict(
                            "the upload is being read; wait until it finishes".into(),
                        ));
                    }
                    Some(_) => {}
                }
                let shared: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM records WHERE                      (first_upload_id = $1 OR last_upload_id = $1 OR changed_upload_id = $1)                      AND NOT (first_upload_id = $1 AND last_upload_id = $1 AND changed_upload_id = $1)",
                )
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(internal)?;
                if shared > 0 {
                    return Err(DomainError::Conflict(format!(
                        "{shared} users of this upload were also in another upload, and their data \
                         is this upload's now: removing it would lose it. Upload a corrected \
                         export of the same source instead"
                    )));
                }
                // What the review kept of these users goes with them: their queue rows,
                // search digests, history and corrections.
                for table in ["review_items", "review_keys", "review_events", "record_corrections"] {
                    Self::exec(
                        &mut tx,
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM records r \
                             WHERE r.project_id = {table}.project_id AND r.source_id = {table}.source_id \
                             AND r.first_upload_id = $1 AND r.last_upload_id = $1 \
                             AND r.changed_upload_id = $1)"
                        )))
                        .bind(id.0),
                    )
                    .await?;
                }
                let removed = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "DELETE FROM records WHERE first_upload_id = $1 AND last_upload_id = $1 \
                         AND changed_upload_id = $1",
                    )
                    .bind(id.0),
                )
                .await?;
                Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM record_errors WHERE upload_id = $1").bind(id.0),
                )
                .await?;
                Self::exec(
                    &mut tx,
                    sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id.0),
                )
                .await?;
                Self::commit(tx, audit).await?;
                Ok(removed)
            }

            async fn list_uploads(&self, project: ProjectId, page: PageRequest) -> Result<Page<Upload>> {
                let sql = format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE project_id = $1 \
                     ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
                );
                let items = sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(project.0)
                    .bind(limit(page))
                    .bind(offset(page))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Upload::try_from)
                    .collect::<Result<Vec<_>>>()?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE project_id = $1")
                    .bind(project.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn upload_by_sha(&self, project: ProjectId, sha256: &str) -> Result<Option<Upload>> {
                let sql = format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE project_id = $1 AND sha256 = $2 \
                     AND purged_at IS NULL ORDER BY created_at LIMIT 1"
                );
                sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(project.0)
                    .bind(sha256)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(Upload::try_from)
                    .transpose()
            }

            async fn uploads_with_status(&self, status: UploadStatus) -> Result<Vec<Upload>> {
                let sql = format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE status = $1 AND purged_at IS NULL \
                     ORDER BY created_at"
                );
                sqlx::query_as::<_, UploadRow>(AssertSqlSafe(sql))
                    .bind(status.as_str())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(Upload::try_from)
                    .collect()
            }

            async fn start_parse(
                &self,
                id: UploadId,
                format: &str,
                source: &str,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let rows = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE uploads SET status = 'parsing', format = $2, source = $3, \
                         bytes_read = 0, rows_ok = 0, rows_failed = 0, records_new = 0, \
                         records_changed = 0, records_unchanged = 0, records_missing = 0, \
                         error = NULL, parse_started_at = $4, parse_finished_at = NULL \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(format)
                    .bind(source)
                    .bind(millis(at)),
                )
                .await?;
                not_found_unless_one(rows, "upload")?;
                Self::exec(&mut tx, sqlx::query("DELETE FROM record_errors WHERE upload_id = $1").bind(id.0))
                    .await?;
                tx.commit().await.map_err(internal)
            }

            async fn save_batch(
                &self,
                upload: &Upload,
                records: Vec<SealedRecord>,
                errors: &[StoredError],
                progress: ParseProgress,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.bulk.begin().await.map_err(internal)?;
                // Many rows per statement: one statement per record costs a round trip
                // to the database each, which dominated reading a large export. Each
                // chunk's records move into its statement (a value bound by reference
                // is copied by SQLite's driver) and are freed once it has run.
                let mut rows = records.into_iter();
                loop {
                    let chunk: Vec<SealedRecord> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
                    if chunk.is_empty() {
                        break;
                    }
                    // New users get this upload as first, last and changed; known users
                    // get it as last, and as changed only when their content differs.
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO records (project_id, source_id, digest, data, first_upload_id, \
                         last_upload_id, changed_upload_id, updated_at) ",
                    );
                    insert.push_values(chunk, |mut row, record| {
                        row.push_bind(upload.project_id.0)
                            .push_bind(record.source_id)
                            .push_bind(record.digest)
                            .push_bind(record.data)
                            .push_bind(upload.id.0)
                            .push_bind(upload.id.0)
                            .push_bind(upload.id.0)
                            .push_bind(millis(at));
                    });
                    insert.push(
                        " ON CONFLICT (project_id, source_id) DO UPDATE SET \
                         last_upload_id = excluded.last_upload_id, \
                         changed_upload_id = CASE WHEN records.digest = excluded.digest \
                             THEN records.changed_upload_id ELSE excluded.changed_upload_id END, \
                         data = excluded.data, digest = excluded.digest, updated_at = excluded.updated_at",
                    );
                    Self::exec(&mut tx, insert.build()).await?;
                }
                for chunk in errors.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO record_errors (upload_id, seq, location, field, reason) ",
                    );
                    insert.push_values(chunk, |mut row, error| {
                        row.push_bind(upload.id.0)
                            .push_bind(i64::try_from(error.seq).unwrap_or(i64::MAX))
                            .push_bind(error.location.clone())
                            .push_bind(error.field.clone())
                            .push_bind(error.reason.clone());
                    });
                    insert.push(" ON CONFLICT (upload_id, seq) DO NOTHING");
                    Self::exec(&mut tx, insert.build()).await?;
                }
                let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                Self::exec(
                    &mut tx,
                    sqlx::query("UPDATE uploads SET bytes_read = $2, rows_ok = $3, rows_failed = $4 WHERE id = $1")
                        .bind(upload.id.0)
                        .bind(as_i64(progress.bytes_read))
                        .bind(as_i64(progress.rows_ok))
                        .bind(as_i64(progress.rows_failed)),
                )
                .await?;
                tx.commit().await.map_err(internal)
            }

            async fn finish_parse(
                &self,
                id: UploadId,
                status: UploadStatus,
                error: Option<&str>,
                at: DateTime<Utc>,
            ) -> Result<Upload> {
                let upload = self
                    .upload(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("upload".into()))?;
                upload.status.advance(status)?;
                let counts: (i64, i64, i64, i64) = sqlx::query_as(
                    "SELECT \
                     COALESCE(SUM(CASE WHEN first_upload_id = $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN changed_upload_id = $2 AND first_upload_id <> $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN last_upload_id = $2 AND changed_upload_id <> $2 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN last_upload_id <> $2 THEN 1 ELSE 0 END), 0) \
                     FROM records WHERE project_id = $1",
                )
                .bind(upload.project_id.0)
                .bind(id.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                self.execute(
                    sqlx::query(
                        "UPDATE uploads SET status = $2, error = $3, parse_finished_at = $4, \
                         records_new = $5, records_changed = $6, records_unchanged = $7, \
                         records_missing = $8 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(status.as_str())
                    .bind(error)
                    .bind(millis(at))
                    .bind(counts.0)
                    .bind(counts.1)
                    .bind(counts.2)
                    // A file not read says nothing of who is missing from the source.
                    .bind(if status == UploadStatus::Failed { 0 } else { counts.3 }),
                )
                .await?;
                self.upload(id)
                    .await?
                    .ok_or_else(|| DomainError::NotFound("upload".into()))
            }

            async fn record_errors(&self, upload: UploadId, page: PageRequest) -> Result<Page<StoredError>> {
                let items = sqlx::query_as::<_, ErrorRow>(
                    "SELECT seq, location, field, reason FROM record_errors WHERE upload_id = $1 \
                     ORDER BY seq LIMIT $2 OFFSET $3",
                )
                .bind(upload.0)
                .bind(limit(page))
                .bind(offset(page))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .into_iter()
                .map(StoredError::from)
                .collect();
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM record_errors WHERE upload_id = $1")
                    .bind(upload.0)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(Page { items, total: count(total), offset: page.offset, limit: page.limit })
            }

            async fn put_project_secret(
                &self,
                project: ProjectId,
                kind: &str,
                sealed: &[u8],
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::exec(
                    &mut tx,
                    sqlx::query(
                        "INSERT INTO project_secrets (project_id, kind, sealed, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, kind) DO UPDATE SET \
                         sealed = excluded.sealed, updated_at = excluded.updated_at",
                    )
                    .bind(project.0)
                    .bind(kind)
                    .bind(sealed)
                    .bind(millis(at)),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn project_secret(&self, project: ProjectId, kind: &str) -> Result<Option<Vec<u8>>> {
                sqlx::query_scalar::<_, Vec<u8>>(
                    "SELECT sealed FROM project_secrets WHERE project_id = $1 AND kind = $2",
                )
                .bind(project.0)
                .bind(kind)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)
            }
        }
    };
}

upload_store!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
upload_store!(PostgresStore, sqlx::Postgres, sqlx::PgConnection);
