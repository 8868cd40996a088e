//! LiveKit-compatible webhooks for Switchyard, delivered from a durable outbox.
//!
//! Existing LiveKit receivers (any server SDK's `WebhookReceiver`) must accept our requests
//! unchanged, so the body, signature and headers are LiveKit's byte for byte in meaning
//! ([`encode_event`], [`sign`]). Unlike LiveKit, an event is written to the database before it
//! is sent and stays there until a 2xx answer, so a receiver outage or a server restart loses
//! nothing and never reorders a room's events ([`Notifier`]).

mod delivery;
mod encode;
mod error;
mod ids;
mod notifier;
mod retry;
mod sign;

pub use delivery::CONTENT_TYPE_WEBHOOK;
pub use encode::{encode_event, queue_key};
pub use error::WebhookError;
pub use ids::new_event_id;
pub use notifier::{Notifier, NotifierConfig};
pub use retry::RetryPolicy;
pub use sign::{TOKEN_TTL_SECS, body_sha256, sign};
