//! The two stores, SQLite and PostgreSQL, chosen by the database URL's scheme, with
//! their migrations applied at start.

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
                .page_size(8192);
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
