//! The public face of webhooks: queue events durably, deliver them in the background.
//!
//! `notify` returns once the events are in the outbox, so a crash right after loses nothing;
//! delivery happens later in [`crate::delivery`]. One outbox row is written per (event, url),
//! all in one transaction, before anything is sent.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livekit_protocol::WebhookEvent;
use switchyard_store::{NewOutboxEntry, Store};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::{RetryPolicy, WebhookError, delivery, encode_event, new_event_id, queue_key};

/// Everything a [`Notifier`] needs besides the store.
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// `webhook.urls`: every event goes to each of them.
    pub urls: Vec<String>,
    /// `webhook.api_key`: the `iss` of the signature.
    pub api_key: String,
    /// The secret of `api_key` (from `keys`).
    pub api_secret: String,
    pub retry: RetryPolicy,
    /// At most this many requests in flight (each to a different (room, url) queue).
    pub max_in_flight: usize,
    /// Connect and total timeout of one request.
    pub request_timeout: Duration,
}

impl NotifierConfig {
    /// A config with the default retry policy, 16 requests in flight and 10 s timeouts.
    pub fn new(
        urls: Vec<String>,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> Self {
        NotifierConfig {
            urls,
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            retry: RetryPolicy::default(),
            max_in_flight: 16,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// State shared by the [`Notifier`] handle and its delivery task.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: NotifierConfig,
    pub(crate) client: reqwest::Client,
    /// Poked when new rows are in the outbox.
    pub(crate) wake: Notify,
}

/// Sends LiveKit webhooks from a durable outbox.
///
/// Built with [`Notifier::start`], which spawns the delivery task; that task resumes whatever
/// an earlier process left in the outbox. Dropping the notifier aborts the task (requests in
/// flight are abandoned and sent again by the next notifier: delivery is at least once,
/// receivers de-duplicate by event id); [`Notifier::shutdown`] lets them finish first.
pub struct Notifier {
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Duration>>,
    task: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Starts delivering from `store`'s outbox. Must be called inside a tokio runtime.
    pub fn start(store: Store, config: NotifierConfig) -> Result<Notifier, WebhookError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.request_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(WebhookError::HttpClient)?;
        let shared = Arc::new(Shared {
            store,
            config,
            client,
            wake: Notify::new(),
        });
        let (stop, stop_rx) = watch::channel(None);
        let task = tokio::spawn(delivery::run(shared.clone(), stop_rx));
        Ok(Notifier {
            shared,
            stop,
            task: Some(task),
        })
    }

    /// Queues `events` for every configured URL and wakes the delivery task.
    ///
    /// An empty `id` becomes a fresh `EV_...` id and a zero `created_at` the current Unix
    /// time. Events keep their order: events of one room (see [`crate::queue_key`]) reach
    /// each URL in the order of the `notify` calls that queued them, and in slice order
    /// within a call. Returns after the outbox transaction committed; with no URL configured
    /// it does nothing.
    pub async fn notify(&self, events: Vec<WebhookEvent>) -> Result<(), WebhookError> {
        let urls = &self.shared.config.urls;
        if urls.is_empty() || events.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
        let mut rows = Vec::with_capacity(events.len() * urls.len());
        for mut ev in events {
            if ev.id.is_empty() {
                ev.id = new_event_id();
            }
            if ev.created_at == 0 {
                ev.created_at = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            }
            let body = encode_event(&ev)?;
            let key = queue_key(&ev);
            for url in urls {
                rows.push(NewOutboxEntry {
                    id: ev.id.clone(),
                    queue_key: key.clone(),
                    url: url.clone(),
                    body: body.clone(),
                    next_attempt_at_ms: now_ms,
                    created_at_ms: now_ms,
                });
            }
        }
        self.shared.store.outbox_enqueue(&rows).await?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Stops delivering: no new request starts, requests in flight get up to `grace` to
    /// finish, then the task ends. Undelivered rows stay in the outbox for the next start.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
