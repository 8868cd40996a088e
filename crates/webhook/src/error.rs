//! Webhook errors.
//!
//! Only what a caller of [`crate::Notifier`] can act on: delivery failures never surface here,
//! they are retried from the outbox and logged.

/// Why an event could not be queued or the notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The event cannot be written as protojson (an enum field holds a number that this
    /// protocol version does not define).
    #[error("cannot encode webhook event: {0}")]
    Encode(#[from] serde_json::Error),
    /// Writing to the outbox failed; the events were not queued.
    #[error("cannot queue webhook events: {0}")]
    Store(#[from] switchyard_store::StoreError),
    /// The HTTP client could not be built.
    #[error("cannot build webhook HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}
