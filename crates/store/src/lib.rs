//! Switchyard persistence: the durable webhook outbox and the history of rooms, participant
//! sessions and tracks, in SQLite (single node, the default) or PostgreSQL.
//!
//! The server must not lose a webhook because it restarted, and operators want to know who
//! was in which room; both need state that outlives the process. [`Store`] is a cheap-to-clone
//! handle over a connection pool; the schema is embedded and migrated at [`Store::connect`].
//!
//! Nothing here is on the media path: every method is an `async` database round trip.

#[macro_use]
mod pool;
mod error;
mod history;
mod outbox;
mod records;

use std::sync::Arc;
use std::time::Duration;

pub use error::{StoreError, redact_url};
pub use pool::Backend;
pub use records::{NewOutboxEntry, OutboxEntry, ParticipantSession, RoomRecord, TrackRecord};

use pool::Pool;

/// The default `database.url`: a SQLite file in the working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./switchyard.db?mode=rwc";

/// Handle to the database. Clones share one pool.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    /// `url` without its password, for errors and logs.
    url: String,
    /// Serialises outbox inserts of this process (see `outbox.rs`).
    enqueue_lock: tokio::sync::Mutex<()>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date.
    ///
    /// `url` is `sqlite://<path>?mode=rwc` (`mode=rwc` creates the file) or
    /// `postgres://user:password@host:port/db`. `connect_timeout` bounds the first connection
    /// and, later, every wait for a pooled connection. An unreachable or unopenable database
    /// is a [`StoreError::Connect`] naming the URL (without its password).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let pool = pool::open(url, max_connections, connect_timeout).await?;
        let url = redact_url(url);
        tracing::debug!(%url, backend = ?pool.backend(), "database opened");
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                url,
                enqueue_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.inner.pool.backend()
    }

    /// The database URL without its password.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Closes the pool: waits for checked-out connections, then closes all of them. Every
    /// clone of this store fails afterwards.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub(crate) fn query_error(&self, source: sqlx::Error) -> StoreError {
        StoreError::Query {
            url: self.inner.url.clone(),
            source,
        }
    }
}
