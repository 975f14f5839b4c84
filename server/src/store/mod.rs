//! The two stores, SQLite and PostgreSQL, chosen by the database URL's scheme, with
//! their migrations applied at start.

mod group_commit;
mod rows;
mod sql;

pub use sql::{PostgresStore, SqliteStore};

use domain::ports::Store;
use sqlx::{
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{str::FromStr, sync::Arc, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme {0:?}; use sqlite:// or postgres://")]
    Scheme(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("cannot copy the write-ahead log into the database: {0}")]
    Checkpoint(#[source] sqlx::Error),
}

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(StoreError::Scheme(other.to_string())),
        }
    }
}

/// Opens the database named by `url`, migrates it and returns the store.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    match Backend::of(url)? {
        Backend::Sqlite => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(StoreError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // The driver's thread hands rows over through a channel this deep;
                // at the default (50) a claim's or a batch fetch's few hundred rows
                // cost a thread wake-up each.
                .row_buffer_size(1024)
                // 8 KiB pages (new databases only): a batch rewrites the index pages it
                // touches, and fewer, larger writes cost the kernel less; measured
                // with `ferry bench-ingest`.
                .page_size(8192)
                // The server copies the log into the database every 25 ms
                // (`checkpoints`): a commit that finds it past this size copies it
                // itself, the backstop for processes without that task. At SQLite's
                // 1,000 pages such commits came every few hundred password logins
                // and each took milliseconds.
                .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("../migrations/sqlite")
                .run(&pool)
                .await
                .map_err(StoreError::Migrate)?;
            // Records are keyed by source ids in no particular order, so saving a
            // large export touches index pages all over the file: a 32 MiB page cache
            // (the default is 2 MiB) keeps most of them in memory. 64 MiB read a
            // million users no faster (`ferry bench-ingest`) and held 35 MiB more.
            // Only the one connection that saves batches gets it: each connection has
            // its own cache, and eight would hold a quarter of a gigabyte.
            let bulk = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.pragma("cache_size", "-32768"))
                .await
                .map_err(StoreError::Connect)?;
            Ok(Arc::new(SqliteStore::with_bulk_pool(pool, bulk)))
        }
        Backend::Postgres => {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(StoreError::Connect)?;
            sqlx::migrate!("../migrations/postgres")
                .run(&pool)
                .await
                .map_err(StoreError::Migrate)?;
            // The verification service's logins are many small statements: on a few
            // connections of their own they queue in Ferry rather than in sixteen
            // server processes taking turns on the cores. At 16 logins at once,
            // measured side by side: 6,405 and 6,956 a second with a 99th percentile
            // of 4.4 and 4.1 ms on four of their own, against 5,019 and 7.4 ms on the
            // shared sixteen (six of their own: 6,299 and 4.7 ms).
            let service = PgPoolOptions::new()
                .max_connections(SERVICE_CONNECTIONS)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(StoreError::Connect)?;
            Ok(Arc::new(
                PostgresStore::new(pool).with_service_pool(service),
            ))
        }
    }
}

/// The verification service's connections on PostgreSQL.
const SERVICE_CONNECTIONS: u32 = 4;

/// The write-ahead log's size (in pages) at which a commit checkpoints it itself.
const WAL_BACKSTOP_PAGES: &str = "16384";

/// How often SQLite's write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// Copies SQLite's write-ahead log into the database file every 25 ms, on a connection
/// of its own, until `stop`. Left to SQLite, the commit that finds the log past 1,000
/// pages copies it and waits for the disk: a password login's write then took
/// milliseconds instead of a fraction of one, and every login queued behind it. A
/// passive checkpoint never waits for writers or readers (what a reader still uses is
/// copied next time). When writes pause, the next commit finds the log copied and
/// starts it over; under steady writes that happens at the backstop
/// ([`WAL_BACKSTOP_PAGES`]), whose commit then finds nearly all of it copied (with
/// checkpoints every 100 ms instead, the 99th percentile of a login at 16 at once was
/// 5.3–5.7 ms against 3.9–4.4 ms, measured side by side). Nothing to do on PostgreSQL.
pub async fn checkpoints(
    url: String,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), StoreError> {
    use sqlx::ConnectOptions;
    if Backend::of(&url)? != Backend::Sqlite {
        return Ok(());
    }
    tokio::pin!(stop);
    let mut connection = SqliteConnectOptions::from_str(&url)
        .map_err(StoreError::Connect)?
        .connect()
        .await
        .map_err(StoreError::Connect)?;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Busy (another checkpoint under way) is no failure: the next tick
                // copies what this one did not.
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut connection)
                    .await
                    .map_err(StoreError::Checkpoint)?;
            }
            () = &mut stop => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task copies the log into the database file (SQLite's own checkpoint would
    /// wait for 16,384 pages), and ends when told to.
    #[tokio::test]
    async fn the_checkpoint_task_copies_the_log_and_stops_when_told() {
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ferry.db").display());
        connect(&url).await.unwrap();
        let mut connection = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE pages (n INTEGER PRIMARY KEY, fill BLOB)")
            .execute(&mut connection)
            .await
            .unwrap();
        for n in 0..200 {
            sqlx::query("INSERT INTO pages VALUES ($1, zeroblob(4000))")
                .bind(n)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        // (busy, frames in the log, frames copied), asked without copying anything.
        let state = || async {
            let mut c = SqliteConnectOptions::from_str(&url)
                .unwrap()
                .connect()
                .await
                .unwrap();
            let got: (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(NOOP)")
                .fetch_one(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
            got
        };
        let (_, frames, copied) = state().await;
        assert!(
            frames > 100 && copied < frames,
            "{frames} frames, {copied} copied"
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(checkpoints(url.clone(), async move {
            let _ = stopped.await;
        }));
        // Waits for the task's turn (the first comes at once), on a busy machine too.
        let mut copied_all = false;
        for _ in 0..200 {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            let (_, frames, copied) = state().await;
            if copied == frames {
                copied_all = true;
                break;
            }
        }
        assert!(copied_all, "the log was not copied");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(
            Backend::of("sqlite://data/ferry.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(Backend::of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            Backend::of("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of("mysql://x").is_err());
    }
}
