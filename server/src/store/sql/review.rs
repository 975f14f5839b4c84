//! The review queue's tables for both databases: a finished run's outcomes folded into
//! one row per failed user (latest outcome wins, repeatable), the queue read by filter
//! in legacy-id order (keyset pages) and grouped, actions on many rows with their
//! history and audit in one transaction, corrections beside the imported records, and
//! the grant to see personal data unmasked.

use super::{PostgresStore, SqliteStore, count};
use crate::store::rows::{internal, millis, time};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    DomainError, Result,
    audit::NewAuditEntry,
    ids::{AccountId, ProjectId, RunId},
    ports::ReviewStore,
    review::{
        Attempt, CorrectionInfo, GroupBy, NewReviewEvent, Outcome, QueueItem, QueuedFailure,
        ReviewAction, ReviewEvent, ReviewState, ReviewSummary, ReviewTask, StoredFilter, TaskState,
        View,
    },
    runs::RecordState,
};

/// Rows per statement: at most 12 values each.
const ROWS_PER_STATEMENT: usize = 200;

const ITEM_SELECT: &str = "SELECT ri.source_id, ri.outcome, ri.outcome_at, ri.job_id, \
     ri.target_role, ri.error_class, ri.scim_type, ri.fault, ri.pattern, ri.error_detail, \
     ri.user_type, ri.state, ri.assignee, a.display_name AS assignee_name, ri.skip_reason, \
     EXISTS (SELECT 1 FROM record_corrections c WHERE c.project_id = ri.project_id \
     AND c.source_id = ri.source_id) AS corrected, ri.first_failed_at, ri.updated_at \
     FROM review_items ri LEFT JOIN accounts a ON a.id = ri.assignee";

#[derive(sqlx::FromRow)]
struct ItemRow {
    source_id: String,
    outcome: String,
    outcome_at: i64,
    job_id: uuid::Uuid,
    target_role: String,
    error_class: String,
    scim_type: Option<String>,
    fault: Option<String>,
    pattern: String,
    error_detail: String,
    user_type: Option<String>,
    state: String,
    assignee: Option<uuid::Uuid>,
    assignee_name: Option<String>,
    skip_reason: Option<String>,
    corrected: bool,
    first_failed_at: i64,
    updated_at: i64,
}

impl TryFrom<ItemRow> for QueueItem {
    type Error = DomainError;
    fn try_from(r: ItemRow) -> Result<QueueItem> {
        let unknown =
            |what: &str, v: &str| DomainError::Internal(format!("stored review {what} {v:?}"));
        Ok(QueueItem {
            outcome: Outcome::parse(&r.outcome).ok_or_else(|| unknown("outcome", &r.outcome))?,
            state: ReviewState::parse(&r.state).ok_or_else(|| unknown("state", &r.state))?,
            source_id: r.source_id,
            outcome_at: time(r.outcome_at),
            run_id: RunId(r.job_id),
            target_role: r.target_role,
            error_class: r.error_class,
            scim_type: r.scim_type,
            fault: r.fault,
            pattern: r.pattern,
            detail: r.error_detail,
            user_type: r.user_type,
            assignee: r.assignee.map(AccountId),
            assignee_name: r.assignee_name,
            skip_reason: r.skip_reason,
            corrected: r.corrected,
            first_failed_at: time(r.first_failed_at),
            updated_at: time(r.updated_at),
        })
    }
}

type AttemptRow = (
    uuid::Uuid,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i32,
    Option<i64>,
);

type CorrectionRow = (
    Vec<u8>,
    String,
    Option<uuid::Uuid>,
    Option<String>,
    i64,
    Option<String>,
    String,
);

const TASK_SELECT: &str = "SELECT id, project_id, action, detail, filter, total, done, cursor, \
     state, error, created_by, created_at, finished_at FROM review_tasks";

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: uuid::Uuid,
    project_id: uuid::Uuid,
    action: String,
    detail: String,
    filter: String,
    total: i64,
    done: i64,
    cursor: Option<String>,
    state: String,
    error: Option<String>,
    created_by: Option<uuid::Uuid>,
    created_at: i64,
    finished_at: Option<i64>,
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| DomainError::Internal(e.to_string()))
}

impl TryFrom<TaskRow> for ReviewTask {
    type Error = DomainError;
    fn try_from(r: TaskRow) -> Result<ReviewTask> {
        let stored = |what: &str, e: String| {
            DomainError::Internal(format!("stored review task {what}: {e}"))
        };
        Ok(ReviewTask {
            id: r.id,
            project_id: ProjectId(r.project_id),
            action: serde_json::from_str(&r.action).map_err(|e| stored("action", e.to_string()))?,
            detail: r.detail,
            filter: serde_json::from_str(&r.filter).map_err(|e| stored("filter", e.to_string()))?,
            total: count(r.total),
            done: count(r.done),
            cursor: r.cursor,
            state: TaskState::parse(&r.state).ok_or_else(|| stored("state", r.state.clone()))?,
            error: r.error,
            created_by: r.created_by.map(AccountId),
            created_at: time(r.created_at),
            finished_at: r.finished_at.map(time),
        })
    }
}

/// A run as the history names it: the first block of its id, as the run pages show it.
fn short(run: RunId) -> String {
    run.0.simple().to_string()[..8].to_string()
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with the wildcards escaped.
fn contains(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `$group_plain`: how the grouped column is written when a filter already narrows
/// the rows by an equality. On SQLite a unary `+` keeps the planner from walking the
/// grouped column's index over every row (561 ms grouping one class's 375,000 users
/// by pattern, against 136 ms through the class's index); PostgreSQL has no unary plus
/// on text and plans this well by itself.
macro_rules! review_store {
    ($name:ident, $db:ty, group_plain = $group_plain:literal) => {
        impl $name {
            /// ` WHERE …` of a filter over `review_items ri`.
            fn push_filter(
                query: &mut sqlx::QueryBuilder<$db>,
                project: ProjectId,
                filter: &StoredFilter,
            ) {
                query.push(" WHERE ri.project_id = ").push_bind(project.0);
                let waiting = ReviewState::WAITING.map(ReviewState::as_str);
                match filter.view {
                    View::Waiting => {
                        query
                            .push(" AND ri.outcome = ")
                            .push_bind(Outcome::Failed.as_str())
                            .push(" AND ri.state IN (");
                        let mut list = query.separated(", ");
                        for state in waiting {
                            list.push_bind(state);
                        }
                        query.push(")");
                    }
                    View::State(ReviewState::Skipped) => {
                        query
                            .push(" AND ri.state = ")
                            .push_bind(ReviewState::Skipped.as_str());
                    }
                    View::State(state) => {
                        query
                            .push(" AND ri.outcome = ")
                            .push_bind(Outcome::Failed.as_str())
                            .push(" AND ri.state = ")
                            .push_bind(state.as_str());
                    }
                    View::Migrated => {
                        query
                            .push(" AND ri.outcome = ")
                            .push_bind(Outcome::Migrated.as_str());
                    }
                    View::All => {}
                }
                if let Some(digests) = &filter.digests {
                    query
                        .push(
                            " AND ri.source_id IN (SELECT k.source_id FROM review_keys k \
                             WHERE k.project_id = ",
                        )
                        .push_bind(project.0)
                        .push(" AND k.digest IN (");
                    let mut list = query.separated(", ");
                    for d in digests {
                        list.push_bind(d.clone());
                    }
                    query.push("))");
                }
                for (column, value) in [
                    ("error_class", &filter.error_class),
                    ("fault", &filter.fault),
                    ("scim_type", &filter.scim_type),
                    ("user_type", &filter.user_type),
                ] {
                    if let Some(value) = value {
                        query
                            .push(format!(" AND ri.{column} = "))
                            .push_bind(value.clone());
                    }
                }
                if let Some(run) = filter.run {
                    query.push(" AND ri.job_id = ").push_bind(run.0);
                }
                match filter.assignee {
                    None => {}
                    Some(None) => {
                        query.push(" AND ri.assignee IS NULL");
                    }
                    Some(Some(member)) => {
                        query.push(" AND ri.assignee = ").push_bind(member.0);
                    }
                }
                if let Some(text) = &filter.text {
                    query
                        .push(if filter.text_in_pattern {
                            " AND LOWER(ri.pattern) LIKE "
                        } else {
                            " AND LOWER(ri.error_detail) LIKE "
                        })
                        .push_bind(contains(text))
                        .push(" ESCAPE '\\'");
                }
            }

            async fn add_events(
                conn: &mut <$db as sqlx::Database>::Connection,
                project: ProjectId,
                ids: &[String],
                actor: Option<AccountId>,
                at: DateTime<Utc>,
                kind: &str,
                detail: &str,
            ) -> Result<()> {
                for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO review_events (project_id, source_id, at, actor_id, kind, detail) ",
                    );
                    insert.push_values(chunk, |mut row, id| {
                        row.push_bind(project.0)
                            .push_bind(id.clone())
                            .push_bind(millis(at))
                            .push_bind(actor.map(|a| a.0))
                            .push_bind(kind.to_string())
                            .push_bind(detail.to_string());
                    });
                    insert.build().execute(&mut *conn).await.map_err(internal)?;
                }
                Ok(())
            }

            async fn add_keys(
                conn: &mut <$db as sqlx::Database>::Connection,
                project: ProjectId,
                keys: &[(&str, &str)],
            ) -> Result<()> {
                for chunk in keys.chunks(ROWS_PER_STATEMENT * 2) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO review_keys (project_id, digest, source_id) ",
                    );
                    insert.push_values(chunk, |mut row, (digest, id)| {
                        row.push_bind(project.0)
                            .push_bind(digest.to_string())
                            .push_bind(id.to_string());
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().execute(&mut *conn).await.map_err(internal)?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl ReviewStore for $name {
            async fn queue_outcomes(
                &self,
                project: ProjectId,
                run: RunId,
                target_role: &str,
                failed: &[QueuedFailure],
                succeeded: &[(String, DateTime<Utc>)],
            ) -> Result<()> {
                let mut tx = self.begin_bulk().await?;
                let open = ReviewState::Open.as_str();
                for chunk in failed.chunks(ROWS_PER_STATEMENT) {
                    let mut upsert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO review_items (project_id, source_id, outcome, outcome_at, \
                         job_id, target_role, error_class, scim_type, fault, pattern, \
                         error_detail, user_type, state, first_failed_at, updated_at) ",
                    );
                    upsert.push_values(chunk, |mut row, f| {
                        row.push_bind(project.0)
                            .push_bind(f.source_id.clone())
                            .push_bind(Outcome::Failed.as_str())
                            .push_bind(millis(f.at))
                            .push_bind(run.0)
                            .push_bind(target_role.to_string())
                            .push_bind(f.error_class.clone())
                            .push_bind(f.scim_type.clone())
                            .push_bind(domain::review::fault(&f.error_class, &f.detail))
                            .push_bind(domain::review::pattern(&f.detail))
                            .push_bind(f.detail.clone())
                            .push_bind(f.user_type.clone())
                            .push_bind(open)
                            .push_bind(millis(f.at))
                            .push_bind(millis(f.at));
                    });
                    // A failed again user that was resolved (or migrated) is open again;
                    // one waiting keeps its state, assignee and skip decision. A test
                    // run's failure does not undo a migration to production.
                    upsert
                        .push(
                            " ON CONFLICT (project_id, source_id) DO UPDATE SET \
                             outcome = excluded.outcome, outcome_at = excluded.outcome_at, \
                             job_id = excluded.job_id, target_role = excluded.target_role, \
                             error_class = excluded.error_class, scim_type = excluded.scim_type, \
                             fault = excluded.fault, pattern = excluded.pattern, \
                             error_detail = excluded.error_detail, user_type = excluded.user_type, \
                             state = CASE WHEN review_items.state = 'resolved' \
                             OR review_items.outcome = 'migrated' THEN excluded.state \
                             ELSE review_items.state END, updated_at = excluded.updated_at \
                             WHERE review_items.outcome_at < excluded.outcome_at \
                             AND NOT (review_items.outcome = 'migrated' \
                             AND review_items.target_role = 'production' \
                             AND excluded.target_role = 'test') RETURNING source_id",
                        );
                    let changed: Vec<String> = upsert
                        .build_query_scalar()
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(internal)?;
                    let keys: Vec<(&str, &str)> = chunk
                        .iter()
                        .flat_map(|f| f.digests.iter().map(|d| (d.as_str(), f.source_id.as_str())))
                        .collect();
                    Self::add_keys(&mut tx, project, &keys).await?;
                    // One history entry per class in the chunk (mostly one).
                    let mut by_class: std::collections::BTreeMap<&str, Vec<String>> =
                        Default::default();
                    for f in chunk.iter().filter(|f| changed.contains(&f.source_id)) {
                        by_class
                            .entry(f.error_class.as_str())
                            .or_default()
                            .push(f.source_id.clone());
                    }
                    for (class, ids) in by_class {
                        let at = chunk.iter().map(|f| f.at).max().unwrap_or_default();
                        Self::add_events(
                            &mut tx,
                            project,
                            &ids,
                            None,
                            at,
                            "failed",
                            &format!(
                                "failed in run {}: {}",
                                short(run),
                                domain::review::class_label(class)
                            ),
                        )
                        .await?;
                    }
                }
                for chunk in succeeded.chunks(ROWS_PER_STATEMENT) {
                    let mut update =
                        sqlx::QueryBuilder::<$db>::new("WITH v (v_id, v_at) AS (");
                    update.push_values(chunk, |mut row, (id, at)| {
                        row.push_bind(id.clone()).push_bind(millis(*at));
                    });
                    update
                        .push(
                            ") UPDATE review_items SET outcome = 'migrated', outcome_at = v_at, \
                             state = CASE WHEN state = 'skipped' THEN state ELSE 'resolved' END, \
                             updated_at = v_at, job_id = ",
                        )
                        .push_bind(run.0)
                        .push(", target_role = ")
                        .push_bind(target_role.to_string())
                        .push(" FROM v WHERE project_id = ")
                        .push_bind(project.0)
                        .push(" AND source_id = v_id AND outcome_at < v_at AND (")
                        .push_bind(target_role.to_string())
                        .push(" = 'production' OR target_role = 'test') RETURNING source_id");
                    let changed: Vec<String> = update
                        .build_query_scalar()
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(internal)?;
                    if !changed.is_empty() {
                        let at = chunk.iter().map(|(_, at)| *at).max().unwrap_or_default();
                        Self::add_events(
                            &mut tx,
                            project,
                            &changed,
                            None,
                            at,
                            "migrated",
                            &format!("migrated by run {} ({target_role} target)", short(run)),
                        )
                        .await?;
                    }
                }
                tx.commit().await.map_err(internal)
            }

            async fn queue(
                &self,
                project: ProjectId,
                filter: &StoredFilter,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<QueueItem>> {
                let mut query = sqlx::QueryBuilder::<$db>::new(ITEM_SELECT);
                Self::push_filter(&mut query, project, filter);
                if let Some(after) = after {
                    query.push(" AND ri.source_id > ").push_bind(after.to_string());
                }
                query
                    .push(" ORDER BY ri.source_id LIMIT ")
                    .push_bind(i64::from(limit));
                query
                    .build_query_as::<ItemRow>()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?
                    .into_iter()
                    .map(QueueItem::try_from)
                    .collect()
            }

            async fn queue_count(
                &self,
                project: ProjectId,
                filter: &StoredFilter,
                cap: Option<u64>,
            ) -> Result<u64> {
                // A view alone is read from the tally.
                let plain = StoredFilter {
                    view: filter.view,
                    text_in_pattern: filter.text_in_pattern,
                    ..Default::default()
                };
                if *filter == plain {
                    let tally: Vec<(String, String, i64)> = sqlx::query_as(
                        "SELECT outcome, state, n FROM review_tally WHERE project_id = $1",
                    )
                    .bind(project.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?;
                    let n: i64 = tally
                        .into_iter()
                        .filter(|(outcome, state, _)| match filter.view {
                            View::Waiting => {
                                outcome == "failed"
                                    && ReviewState::WAITING.iter().any(|s| s.as_str() == state)
                            }
                            View::State(ReviewState::Skipped) => state == "skipped",
                            View::State(s) => outcome == "failed" && state == s.as_str(),
                            View::Migrated => outcome == "migrated",
                            View::All => true,
                        })
                        .map(|(_, _, n)| n)
                        .sum();
                    // Known exactly at no cost: never capped.
                    return Ok(count(n));
                }
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM review_items ri",
                );
                Self::push_filter(&mut query, project, filter);
                if let Some(cap) = cap {
                    query.push(" LIMIT ").push_bind(cap as i64);
                }
                query.push(") counted");
                let n: i64 = query
                    .build_query_scalar()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(count(n))
            }

            async fn queue_groups(
                &self,
                project: ProjectId,
                filter: &StoredFilter,
                by: GroupBy,
                limit: u32,
            ) -> Result<Vec<(Option<String>, u64)>> {
                let column = by.column();
                let narrowed = filter.digests.is_some()
                    || filter.error_class.is_some()
                    || filter.fault.is_some()
                    || filter.scim_type.is_some()
                    || filter.user_type.is_some()
                    || filter.run.is_some()
                    || filter.assignee.is_some();
                let grouped = if narrowed {
                    format!(concat!($group_plain, "ri.{}"), column)
                } else {
                    format!("ri.{column}")
                };
                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT ri.{column}, COUNT(*) AS n FROM review_items ri"
                ));
                Self::push_filter(&mut query, project, filter);
                query
                    .push(format!(" GROUP BY {grouped} ORDER BY n DESC, ri.{column} LIMIT "))
                    .push_bind(i64::from(limit));
                Ok(match by {
                    GroupBy::Run | GroupBy::Assignee => query
                        .build_query_as::<(Option<uuid::Uuid>, i64)>()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?
                        .into_iter()
                        .map(|(k, n)| (k.map(|k| k.to_string()), count(n)))
                        .collect(),
                    _ => query
                        .build_query_as::<(Option<String>, i64)>()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?
                        .into_iter()
                        .map(|(k, n)| (k, count(n)))
                        .collect(),
                })
            }

            async fn queue_item(
                &self,
                project: ProjectId,
                source_id: &str,
            ) -> Result<Option<QueueItem>> {
                sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
                    "{ITEM_SELECT} WHERE ri.project_id = $1 AND ri.source_id = $2"
                )))
                .bind(project.0)
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?
                .map(QueueItem::try_from)
                .transpose()
            }

            async fn queue_summary(&self, project: ProjectId) -> Result<ReviewSummary> {
                let tally: Vec<(String, String, bool, i64)> = sqlx::query_as(
                    "SELECT outcome, state, unassigned, n FROM review_tally WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                let (mut waiting, mut unassigned, mut resolved, mut skipped) = (0, 0, 0, 0);
                for (outcome, state, nobody, n) in tally {
                    let n = count(n);
                    let waits = outcome == "failed"
                        && ReviewState::WAITING.iter().any(|s| s.as_str() == state);
                    if waits {
                        waiting += n;
                        if nobody {
                            unassigned += n;
                        }
                    } else if state == "skipped" {
                        skipped += n;
                    } else if outcome == "failed" && state == "resolved" {
                        resolved += n;
                    }
                }
                // The oldest waiting user: one index look-up per waiting state.
                let mut oldest: Option<i64> = None;
                for state in ReviewState::WAITING {
                    let first: Option<i64> = sqlx::query_scalar(
                        "SELECT MIN(first_failed_at) FROM review_items WHERE project_id = $1 \
                         AND outcome = 'failed' AND state = $2",
                    )
                    .bind(project.0)
                    .bind(state.as_str())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?;
                    oldest = match (oldest, first) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                let users: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM records WHERE project_id = $1")
                        .bind(project.0)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(internal)?;
                let standing: Option<(i64, i64)> = sqlx::query_as(
                    "SELECT migrated, password_users FROM review_standing WHERE project_id = $1",
                )
                .bind(project.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                let (migrated, password_users) = standing.unwrap_or_default();
                let (users, migrated) = (count(users), count(migrated));
                Ok(ReviewSummary {
                    users,
                    migrated,
                    password_users: count(password_users),
                    waiting,
                    unassigned,
                    resolved,
                    skipped,
                    not_attempted: users.saturating_sub(migrated + waiting + resolved + skipped),
                    oldest_waiting_since: oldest.map(time),
                })
            }

            async fn refresh_migrated(&self, project: ProjectId, at: DateTime<Utc>) -> Result<u64> {
                // Users a run against production created, updated or found, less those a
                // rollback deleted after their latest success, and those a reconciliation
                // found different or gone since (they wait in review: counted once).
                // The same users whose latest type moves a password are counted beside them.
                let (migrated, password_users): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), SUM(moves_password) FROM (SELECT jr.source_id, \
                     MAX(CASE WHEN jr.password_strategy IN ('silent_migration', 'forced_reset') \
                     THEN 1 ELSE 0 END) AS moves_password FROM job_records jr \
                     JOIN jobs j ON j.id = jr.job_id WHERE j.project_id = $1 \
                     AND j.target_role = 'production' \
                     AND j.kind NOT IN ('rollback', 'reconcile') \
                     AND jr.scim_id IS NOT NULL AND jr.state IN ($2, $3, $4) \
                     GROUP BY jr.source_id HAVING MAX(jr.settled_at) > COALESCE((\
                     SELECT MAX(d.settled_at) FROM job_records d JOIN jobs dj ON dj.id = d.job_id \
                     WHERE dj.project_id = $1 AND dj.target_role = 'production' \
                     AND ((dj.kind = 'rollback' AND d.state = $5) OR (dj.kind = 'reconcile' \
                     AND d.state = 'failed' AND d.error_class IN ($6, $7))) \
                     AND d.source_id = jr.source_id), 0)) m",
                )
                .bind(project.0)
                .bind(RecordState::Created.as_str())
                .bind(RecordState::Updated.as_str())
                .bind(RecordState::Skipped.as_str())
                .bind(RecordState::Deleted.as_str())
                .bind(domain::runs::reconcile::DIFFERS)
                .bind(domain::runs::reconcile::MISSING)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                self.execute(
                    sqlx::query(
                        "INSERT INTO review_standing (project_id, migrated, password_users, \
                         computed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE \
                         SET migrated = excluded.migrated, \
                         password_users = excluded.password_users, \
                         computed_at = excluded.computed_at",
                    )
                    .bind(project.0)
                    .bind(migrated)
                    .bind(password_users.unwrap_or(0))
                    .bind(millis(at)),
                )
                .await?;
                Ok(count(migrated))
            }

            async fn queue_act(
                &self,
                project: ProjectId,
                ids: &[String],
                action: &ReviewAction,
                event: &NewReviewEvent,
                actor: AccountId,
                at: DateTime<Utc>,
                audit: Option<&NewAuditEntry>,
            ) -> Result<u64> {
                let mut tx = self.begin().await?;
                let mut changed_all = 0u64;
                for chunk in ids.chunks(ROWS_PER_STATEMENT * 2) {
                    let mut update = sqlx::QueryBuilder::<$db>::new("UPDATE review_items SET ");
                    match action {
                        ReviewAction::Assign { member } => {
                            update.push("assignee = ").push_bind(member.map(|m| m.0));
                        }
                        ReviewAction::SetState { state } => {
                            update
                                .push("state = ")
                                .push_bind(state.as_str())
                                .push(", skip_reason = NULL");
                        }
                        ReviewAction::Skip { reason } => {
                            update
                                .push("state = ")
                                .push_bind(ReviewState::Skipped.as_str())
                                .push(", skip_reason = ")
                                .push_bind(reason.trim().to_string());
                        }
                        ReviewAction::Comment { .. } => {
                            update.push("state = state");
                        }
                    }
                    update
                        .push(", updated_at = ")
                        .push_bind(millis(at))
                        .push(" WHERE project_id = ")
                        .push_bind(project.0)
                        .push(" AND source_id IN (");
                    let mut list = update.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    update.push(") RETURNING source_id");
                    let changed: Vec<String> = update
                        .build_query_scalar()
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(internal)?;
                    changed_all += changed.len() as u64;
                    Self::add_events(
                        &mut tx,
                        project,
                        &changed,
                        Some(actor),
                        at,
                        event.kind,
                        &event.detail,
                    )
                    .await?;
                }
                match audit {
                    Some(audit) => Self::commit(tx, audit).await?,
                    None => tx.commit().await.map_err(internal)?,
                }
                Ok(changed_all)
            }

            async fn queue_note(
                &self,
                project: ProjectId,
                ids: &[String],
                actor: AccountId,
                event: &NewReviewEvent,
                at: DateTime<Utc>,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                Self::add_events(&mut tx, project, ids, Some(actor), at, event.kind, &event.detail)
                    .await?;
                tx.commit().await.map_err(internal)
            }

            async fn queue_events(
                &self,
                project: ProjectId,
                source_id: &str,
            ) -> Result<Vec<ReviewEvent>> {
                let rows: Vec<(i64, Option<uuid::Uuid>, Option<String>, String, String)> =
                    sqlx::query_as(
                        "SELECT e.at, e.actor_id, a.display_name, e.kind, e.detail \
                         FROM review_events e LEFT JOIN accounts a ON a.id = e.actor_id \
                         WHERE e.project_id = $1 AND e.source_id = $2 ORDER BY e.id DESC LIMIT 500",
                    )
                    .bind(project.0)
                    .bind(source_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(internal)?;
                Ok(rows
                    .into_iter()
                    .map(|(at, actor, name, kind, detail)| ReviewEvent {
                        at: time(at),
                        actor: actor.map(AccountId),
                        actor_name: name,
                        kind,
                        detail,
                    })
                    .collect())
            }

            async fn attempts(&self, project: ProjectId, source_id: &str) -> Result<Vec<Attempt>> {
                let rows: Vec<AttemptRow> = sqlx::query_as(
                    "SELECT j.id, j.kind, j.target_role, jr.state, jr.error_class, jr.scim_type, \
                     jr.error_detail, jr.scim_id, jr.attempts, jr.settled_at \
                     FROM jobs j JOIN job_records jr ON jr.job_id = j.id \
                     WHERE j.project_id = $1 AND jr.source_id = $2 \
                     ORDER BY j.created_at DESC, j.id LIMIT 200",
                )
                .bind(project.0)
                .bind(source_id)
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(id, kind, role, state, class, scim_type, detail, scim_id, n, at)| Attempt {
                            run_id: RunId(id),
                            run_kind: kind,
                            target_role: role,
                            state,
                            error_class: class,
                            scim_type,
                            detail,
                            scim_id,
                            attempts: u32::try_from(n).unwrap_or(0),
                            at: at.map(time),
                        },
                    )
                    .collect())
            }

            async fn imported_record(
                &self,
                project: ProjectId,
                source_id: &str,
            ) -> Result<Option<(String, Vec<u8>)>> {
                sqlx::query_as(
                    "SELECT digest, data FROM records WHERE project_id = $1 AND source_id = $2",
                )
                .bind(project.0)
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)
            }

            async fn put_correction(
                &self,
                project: ProjectId,
                source_id: &str,
                sealed: &[u8],
                base_digest: &str,
                fields: &[String],
                digests: &[String],
                actor: AccountId,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO record_corrections (project_id, source_id, data, base_digest, \
                     fields, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (project_id, source_id) DO UPDATE SET data = excluded.data, \
                     base_digest = excluded.base_digest, fields = excluded.fields, \
                     created_by = excluded.created_by, created_at = excluded.created_at",
                )
                .bind(project.0)
                .bind(source_id)
                .bind(sealed.to_vec())
                .bind(base_digest)
                .bind(fields.join(","))
                .bind(actor.0)
                .bind(millis(at))
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                let keys: Vec<(&str, &str)> = digests.iter().map(|d| (d.as_str(), source_id)).collect();
                Self::add_keys(&mut tx, project, &keys).await?;
                Self::add_events(
                    &mut tx,
                    project,
                    &[source_id.to_string()],
                    Some(actor),
                    at,
                    "corrected",
                    &format!("corrected {}", fields.join(", ")),
                )
                .await?;
                Self::commit(tx, audit).await
            }

            async fn correction(
                &self,
                project: ProjectId,
                source_id: &str,
            ) -> Result<Option<(Vec<u8>, CorrectionInfo)>> {
                let row: Option<CorrectionRow> = sqlx::query_as(
                    "SELECT c.data, c.fields, c.created_by, a.display_name, c.created_at, \
                     r.digest, c.base_digest FROM record_corrections c \
                     LEFT JOIN accounts a ON a.id = c.created_by \
                     LEFT JOIN records r ON r.project_id = c.project_id AND r.source_id = c.source_id \
                     WHERE c.project_id = $1 AND c.source_id = $2",
                )
                .bind(project.0)
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
                Ok(row.map(|(data, fields, by, name, at, now, base)| {
                    (
                        data,
                        CorrectionInfo {
                            fields: fields
                                .split(',')
                                .filter(|f| !f.is_empty())
                                .map(str::to_string)
                                .collect(),
                            by: by.map(AccountId),
                            by_name: name,
                            at: time(at),
                            conflict: now.is_some_and(|now| now != base),
                        },
                    )
                }))
            }

            async fn personal_data_grant(&self, account: AccountId) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM personal_data_grants WHERE account_id = $1",
                )
                .bind(account.0)
                .fetch_one(&self.pool)
                .await
                .map_err(internal)?;
                Ok(n > 0)
            }

            async fn set_personal_data_grant(
                &self,
                account: AccountId,
                granted: bool,
                by: AccountId,
                at: DateTime<Utc>,
                audit: &NewAuditEntry,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                if granted {
                    sqlx::query(
                        "INSERT INTO personal_data_grants (account_id, granted_by, granted_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (account_id) DO NOTHING",
                    )
                    .bind(account.0)
                    .bind(by.0)
                    .bind(millis(at))
                    .execute(&mut *tx)
                    .await
                    .map_err(internal)?;
                } else {
                    sqlx::query("DELETE FROM personal_data_grants WHERE account_id = $1")
                        .bind(account.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(internal)?;
                }
                Self::commit(tx, audit).await
            }

            async fn create_review_task(&self, task: &ReviewTask, audit: &NewAuditEntry) -> Result<()> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO review_tasks (id, project_id, action, detail, filter, total, done, \
                     cursor, state, error, created_by, created_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, NULL)",
                )
                .bind(task.id)
                .bind(task.project_id.0)
                .bind(json_text(&task.action)?)
                .bind(&task.detail)
                .bind(json_text(&task.filter)?)
                .bind(task.total as i64)
                .bind(task.done as i64)
                .bind(task.cursor.clone())
                .bind(task.state.as_str())
                .bind(task.created_by.map(|a| a.0))
                .bind(millis(task.created_at))
                .execute(&mut *tx)
                .await
                .map_err(internal)?;
                Self::commit(tx, audit).await
            }

            async fn review_task(&self, id: uuid::Uuid) -> Result<Option<ReviewTask>> {
                sqlx::query_as::<_, TaskRow>(sqlx::AssertSqlSafe(format!("{TASK_SELECT} WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(internal)?
                    .map(ReviewTask::try_from)
                    .transpose()
            }

            async fn review_tasks(&self, project: ProjectId, limit: u32) -> Result<Vec<ReviewTask>> {
                sqlx::query_as::<_, TaskRow>(sqlx::AssertSqlSafe(format!(
                    "{TASK_SELECT} WHERE project_id = $1 ORDER BY created_at DESC LIMIT $2"
                )))
                .bind(project.0)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .into_iter()
                .map(ReviewTask::try_from)
                .collect()
            }

            async fn running_review_tasks(&self) -> Result<Vec<ReviewTask>> {
                sqlx::query_as::<_, TaskRow>(sqlx::AssertSqlSafe(format!(
                    "{TASK_SELECT} WHERE state = 'running' ORDER BY created_at"
                )))
                .fetch_all(&self.pool)
                .await
                .map_err(internal)?
                .into_iter()
                .map(ReviewTask::try_from)
                .collect()
            }

            async fn advance_review_task(&self, id: uuid::Uuid, done: u64, cursor: &str) -> Result<bool> {
                let n = self
                    .execute(
                        sqlx::query(
                            "UPDATE review_tasks SET done = $2, cursor = $3 WHERE id = $1 AND state = 'running'",
                        )
                        .bind(id)
                        .bind(done as i64)
                        .bind(cursor.to_string()),
                    )
                    .await?;
                Ok(n > 0)
            }

            async fn finish_review_task(
                &self,
                id: uuid::Uuid,
                state: TaskState,
                error: Option<&str>,
                at: DateTime<Utc>,
                audit: Option<&NewAuditEntry>,
            ) -> Result<bool> {
                let mut tx = self.begin().await?;
                let n = Self::exec(
                    &mut tx,
                    sqlx::query(
                        "UPDATE review_tasks SET state = $2, error = $3, finished_at = $4 \
                         WHERE id = $1 AND state = 'running'",
                    )
                    .bind(id)
                    .bind(state.as_str())
                    .bind(error.map(str::to_string))
                    .bind(millis(at)),
                )
                .await?;
                match audit {
                    Some(audit) if n > 0 => Self::commit(tx, audit).await?,
                    _ => tx.commit().await.map_err(internal)?,
                }
                Ok(n > 0)
            }

            async fn personal_data_grants(&self) -> Result<Vec<AccountId>> {
                let ids: Vec<uuid::Uuid> =
                    sqlx::query_scalar("SELECT account_id FROM personal_data_grants")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(internal)?;
                Ok(ids.into_iter().map(AccountId).collect())
            }
        }
    };
}

review_store!(SqliteStore, sqlx::Sqlite, group_plain = "+");
review_store!(PostgresStore, sqlx::Postgres, group_plain = "");
