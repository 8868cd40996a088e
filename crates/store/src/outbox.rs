//! The webhook outbox: deliveries written before they are attempted, handed out strictly in
//! order per (queue key, url).
//!
//! Ordering rests on `seq`. It is taken from the single-row `outbox_seq` counter inside the
//! inserting transaction, so it increases with every insert and survives restarts (even when
//! the outbox was emptied). Because the counter row is updated first, a second inserting
//! transaction waits on that row (PostgreSQL row lock, SQLite write lock) until the first one
//! commits: `seq` order is commit order, so a reader can never see seq 6 of a queue and only
//! later seq 5. The in-process mutex only keeps our own inserts from contending for that lock.
//!
//! [`Store::outbox_due`] returns only the head (lowest `seq`) of each queue; a row leaves the
//! outbox when delivered or given up, which is what lets the next one of its queue through.

use crate::{NewOutboxEntry, OutboxEntry, Store, StoreError};

/// SQL condition: row `o` is the head of its (queue_key, url) queue. A macro so that the
/// queries using it stay `&'static str` (sqlx refuses dynamic SQL strings).
macro_rules! is_head {
    () => {
        "NOT EXISTS (SELECT 1 FROM webhook_outbox p \
         WHERE p.queue_key = o.queue_key AND p.url = o.url AND p.seq < o.seq)"
    };
}

impl Store {
    /// Adds deliveries in one transaction, in slice order. An entry whose `(id, url)` is
    /// already in the outbox is skipped. Returns how many rows were inserted.
    pub async fn outbox_enqueue(&self, entries: &[NewOutboxEntry]) -> Result<u64, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        const BUMP: &str =
            "UPDATE outbox_seq SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq";
        const INSERT: &str = "INSERT INTO webhook_outbox \
             (seq, id, queue_key, url, body, attempts, next_attempt_at_ms, created_at_ms, last_error) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, NULL) \
             ON CONFLICT (id, url) DO NOTHING";
        let count = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let _serialised = self.inner.enqueue_lock.lock().await;
        with_pool!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let last: i64 = sqlx::query_scalar(BUMP)
                    .bind(count)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut seq = last - count;
                let mut inserted = 0;
                for entry in entries {
                    seq += 1;
                    inserted += sqlx::query(INSERT)
                        .bind(seq)
                        .bind(&entry.id)
                        .bind(&entry.queue_key)
                        .bind(&entry.url)
                        .bind(&entry.body)
                        .bind(entry.next_attempt_at_ms)
                        .bind(entry.created_at_ms)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(inserted)
            }
            .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Up to `limit` entries that are due at `now_ms` and are the head (lowest `seq`) of
    /// their (queue_key, url) queue, lowest `seq` first. An entry behind a head is never
    /// returned, whether or not the head is due.
    pub async fn outbox_due(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        const SQL: &str = concat!(
            "SELECT o.seq, o.id, o.queue_key, o.url, o.body, o.attempts, o.next_attempt_at_ms, \
             o.created_at_ms, o.last_error FROM webhook_outbox o \
             WHERE o.next_attempt_at_ms <= $1 AND ",
            is_head!(),
            " ORDER BY o.seq LIMIT $2"
        );
        with_pool!(self, |pool| {
            sqlx::query_as::<_, OutboxEntry>(SQL)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// The earliest `next_attempt_at_ms` after `now_ms` among queue heads: when the next
    /// retry falls due, if nothing else happens. `None` when no head waits.
    pub async fn outbox_next_attempt_after(&self, now_ms: i64) -> Result<Option<i64>, StoreError> {
        const SQL: &str = concat!(
            "SELECT MIN(o.next_attempt_at_ms) FROM webhook_outbox o \
             WHERE o.next_attempt_at_ms > $1 AND ",
            is_head!()
        );
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(SQL)
                .bind(now_ms)
                .fetch_one(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Removes a delivered entry. Returns false if it was not there.
    pub async fn outbox_delivered(&self, seq: i64) -> Result<bool, StoreError> {
        self.outbox_remove(seq).await
    }

    /// Removes an entry that will not be delivered (given up). Returns false if it was not
    /// there.
    pub async fn outbox_discard(&self, seq: i64) -> Result<bool, StoreError> {
        self.outbox_remove(seq).await
    }

    async fn outbox_remove(&self, seq: i64) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM webhook_outbox WHERE seq = $1";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(seq)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Records a failed attempt: `attempts + 1`, the error, and when to try again. Returns
    /// false if the entry was not there.
    pub async fn outbox_retry(
        &self,
        seq: i64,
        next_attempt_at_ms: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE webhook_outbox \
             SET attempts = attempts + 1, next_attempt_at_ms = $2, last_error = $3 WHERE seq = $1";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(seq)
                .bind(next_attempt_at_ms)
                .bind(error)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Number of entries in the outbox (due or not).
    pub async fn outbox_pending_count(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM webhook_outbox";
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(|e| self.query_error(e))
    }
}
