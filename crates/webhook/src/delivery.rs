//! The delivery task: sends due outbox rows, one at a time per (queue key, url).
//!
//! Order comes from the store: [`Store::outbox_due`] only ever returns the head of a queue,
//! and a head leaves the outbox only when it was answered with a 2xx (or given up). So the
//! next event of a room cannot be sent before the previous one was accepted, across retries
//! and restarts alike. Different queues run in parallel, up to `max_in_flight` requests; a
//! head already in flight is skipped when it shows up again in `outbox_due`.
//!
//! The task sleeps until the earliest of: a `notify` (new rows), a request finishing (its
//! queue's next row may be due), the next scheduled retry, or an idle re-check.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use switchyard_store::OutboxEntry;
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};

use crate::notifier::Shared;
use crate::sign;

/// The `Content-Type` LiveKit sends.
pub const CONTENT_TYPE_WEBHOOK: &str = "application/webhook+json";
/// Re-check the outbox at least this often, in case a wake-up was missed (e.g. rows written
/// by another process).
const IDLE_RECHECK: Duration = Duration::from_secs(30);
/// Wait after a failed outbox query.
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Runs until `stop` carries a grace period (or the task is aborted).
pub(crate) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<Option<Duration>>) {
    let max_in_flight = shared.config.max_in_flight.max(1);
    // Row seq of every request in flight, by task.
    let mut in_flight: HashMap<Id, i64> = HashMap::new();
    let mut tasks: JoinSet<()> = JoinSet::new();
    let pending = shared.store.outbox_pending_count().await.unwrap_or(0);
    if pending > 0 {
        tracing::info!(pending, "resuming webhook deliveries from the outbox");
    }
    loop {
        let now = now_ms();
        let mut wake_at = now.saturating_add(IDLE_RECHECK.as_millis() as i64);
        if in_flight.len() < max_in_flight {
            match start_due(&shared, now, max_in_flight, &mut in_flight, &mut tasks).await {
                Ok(Some(next)) => wake_at = wake_at.min(next),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webhook outbox query failed");
                    wake_at = now.saturating_add(STORE_ERROR_BACKOFF.as_millis() as i64);
                }
            }
        }
        let sleep = Duration::from_millis(u64::try_from(wake_at - now_ms()).unwrap_or(0));
        tokio::select! {
            _ = shared.wake.notified() => {}
            Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let id = match &done {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Err(e) = done {
                    tracing::error!(error = %e, "webhook delivery task failed");
                }
                in_flight.remove(&id);
            }
            _ = tokio::time::sleep(sleep) => {}
            _ = stop.changed() => break,
        }
    }
    let grace = (*stop.borrow()).unwrap_or_default();
    if !tasks.is_empty() {
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::info!(
                abandoned = tasks.len(),
                "webhook deliveries still in flight at shutdown; they stay in the outbox"
            );
        }
    }
}

/// Starts a request for each due queue head not already in flight, up to `max_in_flight`.
/// Returns when the next waiting head falls due.
async fn start_due(
    shared: &Arc<Shared>,
    now: i64,
    max_in_flight: usize,
    in_flight: &mut HashMap<Id, i64>,
    tasks: &mut JoinSet<()>,
) -> Result<Option<i64>, switchyard_store::StoreError> {
    // Heads in flight are due too and come back in the list: ask for enough to fill every
    // free slot even if all of them are among the first rows.
    let limit = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    let due = shared.store.outbox_due(now, limit).await?;
    for entry in due {
        if in_flight.len() >= max_in_flight {
            break;
        }
        if in_flight.values().any(|&seq| seq == entry.seq) {
            continue;
        }
        let seq = entry.seq;
        let handle = tasks.spawn(deliver(shared.clone(), entry));
        in_flight.insert(handle.id(), seq);
    }
    shared.store.outbox_next_attempt_after(now).await
}

/// One attempt: POST the row, then delete it (2xx), reschedule it, or give it up.
async fn deliver(shared: Arc<Shared>, entry: OutboxEntry) {
    let config = &shared.config;
    let result = post(&shared.client, &entry, &config.api_key, &config.api_secret).await;
    let store = &shared.store;
    let attempt = entry.attempts + 1;
    let outcome = match result {
        Ok(()) => {
            tracing::debug!(id = %entry.id, url = %entry.url, queue = %entry.queue_key, attempt, "webhook delivered");
            store.outbox_delivered(entry.seq).await
        }
        Err(error) => {
            let now = now_ms();
            let age = Duration::from_millis(u64::try_from(now - entry.created_at_ms).unwrap_or(0));
            if config.retry.expired(age) {
                tracing::warn!(
                    id = %entry.id, url = %entry.url, queue = %entry.queue_key, attempts = attempt,
                    %error, "giving up on webhook after {}s", age.as_secs()
                );
                store.outbox_discard(entry.seq).await
            } else {
                let wait = config
                    .retry
                    .backoff(u32::try_from(attempt).unwrap_or(u32::MAX));
                tracing::debug!(
                    id = %entry.id, url = %entry.url, queue = %entry.queue_key, attempt,
                    %error, retry_in_ms = wait.as_millis() as u64, "webhook delivery failed"
                );
                let next = now.saturating_add(wait.as_millis() as i64);
                store.outbox_retry(entry.seq, next, &error).await
            }
        }
    };
    if let Err(e) = outcome {
        // The row stays as it was and is attempted again: at worst a duplicate with the same
        // event id.
        tracing::warn!(id = %entry.id, url = %entry.url, error = %e, "cannot update webhook outbox");
    }
}

/// POSTs `entry` and maps anything but a 2xx answer to an error text.
async fn post(
    client: &reqwest::Client,
    entry: &OutboxEntry,
    api_key: &str,
    api_secret: &str,
) -> Result<(), String> {
    let now_unix = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let token = sign(&entry.body, api_key, api_secret, now_unix);
    let response = client
        .post(&entry.url)
        .header(AUTHORIZATION, token)
        .header(CONTENT_TYPE, CONTENT_TYPE_WEBHOOK)
        .header(USER_AGENT, "LiveKit")
        .body(entry.body.clone())
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// `e` and its sources, `: `-separated (reqwest's own message rarely says what went wrong).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
