//! Row types of the store: what the rest of the server writes and operators read back.
//!
//! Plain data, decoded straight from rows. Times are Unix milliseconds (`*_ms`) so that both
//! SQLite and PostgreSQL store them as one `BIGINT` without time-zone questions.

/// One room lifetime (`rooms` table). A room name can have many lifetimes, one per sid.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RoomRecord {
    /// `RM_...`.
    pub sid: String,
    pub name: String,
    pub created_at_ms: i64,
    /// `None` while the room is open.
    pub closed_at_ms: Option<i64>,
    pub metadata: String,
}

/// One participant session: one join of one identity to one room lifetime.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ParticipantSession {
    /// `PA_...`.
    pub sid: String,
    pub room_sid: String,
    pub room_name: String,
    pub identity: String,
    pub name: String,
    pub joined_at_ms: i64,
    /// `None` while the participant is in the room.
    pub left_at_ms: Option<i64>,
    /// LiveKit `DisconnectReason` name (e.g. `CLIENT_INITIATED`), when known.
    pub disconnect_reason: Option<String>,
}

/// One published track.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TrackRecord {
    /// `TR_...`.
    pub sid: String,
    pub room_sid: String,
    pub participant_sid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// LiveKit `TrackSource` name, lowercase (`camera`, `microphone`, `screen_share`, ...).
    pub source: String,
    pub mime_type: String,
    pub published_at_ms: i64,
    /// `None` while the track is published.
    pub unpublished_at_ms: Option<i64>,
}

/// A webhook delivery to add to the outbox ([`crate::Store::outbox_enqueue`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOutboxEntry {
    /// The event id (`EV_...`). One event sent to several URLs has one row per URL with the
    /// same id; `(id, url)` is unique.
    pub id: String,
    /// Ordering domain: entries with the same `queue_key` and `url` are delivered strictly in
    /// insertion order (LiveKit uses the room name).
    pub queue_key: String,
    pub url: String,
    /// The exact bytes to POST.
    pub body: String,
    /// Earliest first attempt, normally the creation time.
    pub next_attempt_at_ms: i64,
    pub created_at_ms: i64,
}

/// A stored webhook delivery, as returned by [`crate::Store::outbox_due`].
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEntry {
    /// Row key, assigned by the store; increases with every insert, also across restarts.
    pub seq: i64,
    pub id: String,
    pub queue_key: String,
    pub url: String,
    pub body: String,
    /// Failed attempts so far.
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    pub created_at_ms: i64,
    /// Error of the last failed attempt.
    pub last_error: Option<String>,
}
