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
                // The server copies the log into the database every tenth of a second
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
            Ok(Arc::new(PostgresStore::new(pool)))
        }
    }
}

/// The write-ahead log's size (in pages) at which a commit checkpoints it itself.
const WAL_BACKSTOP_PAGES: &str = "16384";

/// How often SQLite's write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies SQLite's write-ahead log into the database file every tenth of a second, on a
/// connection of its own, until `stop`. Left to SQLite, the commit that finds the log
/// past 1,000 pages copies it and waits for the disk: a password login's write then
/// took milliseconds instead of a fraction of one, and every login queued behind it.
/// A passive checkpoint never waits for writers or readers (what a reader still uses is
/// copied next time), so the commits after it find the log copied and start it over.
/// SQLite's own checkpoint stays as the backstop, at [`WAL_BACKSTOP_PAGES`]. Nothing
/// to do on PostgreSQL.
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
