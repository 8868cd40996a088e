//! The two supported backends behind one type, and opening them with migrations applied.
//!
//! We keep a concrete `SqlitePool` or `PgPool` rather than `sqlx::Any`, so each backend gets
//! its own connect options (SQLite WAL + busy timeout) and its own migration folder, while
//! the queries themselves are written once: they use only SQL that both dialects accept
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`), and [`with_pool!`] expands a query body
//! once per backend so each copy is type-checked against its own driver.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::{StoreError, redact_url};

/// Which database a [`crate::Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`, once per backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store.pool() {
            $crate::pool::Pool::Sqlite($pool) => $body,
            $crate::pool::Pool::Postgres($pool) => $body,
        }
    };
}

impl Pool {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Opens and closes one connection, to report why a database cannot be opened: the pool
/// itself retries until its timeout and then only says that it timed out.
async fn probe<C: sqlx::Connection>(
    options: &C::Options,
    shown: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    match tokio::time::timeout(timeout, C::connect_with(options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(source)) => Err(StoreError::Connect {
            url: shown.to_owned(),
            source,
        }),
        Err(_) => Err(StoreError::ConnectTimeout {
            url: shown.to_owned(),
            timeout,
        }),
    }
}

/// Opens `url` and runs the embedded migrations of its backend.
pub(crate) async fn open(
    url: &str,
    max_connections: u32,
    connect_timeout: Duration,
) -> Result<Pool, StoreError> {
    let shown = redact_url(url);
    let max_connections = max_connections.max(1);
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::InvalidUrl {
                url: shown.clone(),
                source,
            })?
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        // Every connection to an in-memory database is a database of its own: keep exactly
        // one, forever.
        let in_memory = lower.contains(":memory:") || lower.contains("mode=memory");
        let mut pool_options = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { max_connections })
            .acquire_timeout(connect_timeout);
        if in_memory {
            pool_options = pool_options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        probe::<sqlx::SqliteConnection>(&options, &shown, connect_timeout).await?;
        let pool =
            pool_options
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { url: shown, source })?;
        Ok(Pool::Sqlite(pool))
    } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
            url: shown.clone(),
            source,
        })?;
        probe::<sqlx::PgConnection>(&options, &shown, connect_timeout).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(connect_timeout)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { url: shown, source })?;
        Ok(Pool::Postgres(pool))
    } else {
        Err(StoreError::UnsupportedUrl { url: shown })
    }
}
