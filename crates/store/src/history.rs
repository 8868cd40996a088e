//! Room, participant-session and track history, for operators.
//!
//! Written as things happen (`record_*`) and read back by room (`list_*`). Writes are
//! idempotent upserts/updates so that a repeated or late event never fails the caller; no
//! foreign keys, because the events that fill these tables may arrive in any order.

use crate::{ParticipantSession, RoomRecord, Store, StoreError, TrackRecord};

impl Store {
    /// Records a room lifetime. Repeating it for the same sid updates name and metadata.
    pub async fn record_room_started(&self, room: &RoomRecord) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO rooms (sid, name, created_at_ms, closed_at_ms, metadata) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sid) DO UPDATE SET name = excluded.name, metadata = excluded.metadata";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&room.sid)
                .bind(&room.name)
                .bind(room.created_at_ms)
                .bind(room.closed_at_ms)
                .bind(&room.metadata)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Marks a room closed. Returns false when no open room has that sid.
    pub async fn record_room_closed(
        &self,
        sid: &str,
        closed_at_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE rooms SET closed_at_ms = $2 WHERE sid = $1 AND closed_at_ms IS NULL";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(sid)
                .bind(closed_at_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Records a participant session. Repeating it for the same sid updates the name.
    pub async fn record_participant_joined(
        &self,
        session: &ParticipantSession,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO participant_sessions \
             (sid, room_sid, room_name, identity, name, joined_at_ms, left_at_ms, disconnect_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (sid) DO UPDATE SET name = excluded.name";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&session.sid)
                .bind(&session.room_sid)
                .bind(&session.room_name)
                .bind(&session.identity)
                .bind(&session.name)
                .bind(session.joined_at_ms)
                .bind(session.left_at_ms)
                .bind(&session.disconnect_reason)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Ends a participant session. Returns false when no open session has that sid.
    pub async fn record_participant_left(
        &self,
        sid: &str,
        left_at_ms: i64,
        disconnect_reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE participant_sessions SET left_at_ms = $2, disconnect_reason = $3 \
             WHERE sid = $1 AND left_at_ms IS NULL";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(sid)
                .bind(left_at_ms)
                .bind(disconnect_reason)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Records a published track. Repeating it for the same sid changes nothing.
    pub async fn record_track_published(&self, track: &TrackRecord) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO tracks \
             (sid, room_sid, participant_sid, kind, source, mime_type, published_at_ms, unpublished_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (sid) DO NOTHING";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&track.sid)
                .bind(&track.room_sid)
                .bind(&track.participant_sid)
                .bind(&track.kind)
                .bind(&track.source)
                .bind(&track.mime_type)
                .bind(track.published_at_ms)
                .bind(track.unpublished_at_ms)
                .execute(pool)
                .await
                .map(drop)
        })
        .map_err(|e| self.query_error(e))
    }

    /// Marks a track unpublished. Returns false when no published track has that sid.
    pub async fn record_track_unpublished(
        &self,
        sid: &str,
        unpublished_at_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE tracks SET unpublished_at_ms = $2 \
             WHERE sid = $1 AND unpublished_at_ms IS NULL";
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(sid)
                .bind(unpublished_at_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(|e| self.query_error(e))
    }

    /// The `limit` most recently created room lifetimes, newest first.
    pub async fn list_rooms_history(&self, limit: u32) -> Result<Vec<RoomRecord>, StoreError> {
        const SQL: &str = "SELECT sid, name, created_at_ms, closed_at_ms, metadata FROM rooms \
             ORDER BY created_at_ms DESC, sid DESC LIMIT $1";
        with_pool!(self, |pool| {
            sqlx::query_as::<_, RoomRecord>(SQL)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Every participant session of every lifetime of the room named `room_name`, in join
    /// order.
    pub async fn list_sessions(
        &self,
        room_name: &str,
    ) -> Result<Vec<ParticipantSession>, StoreError> {
        const SQL: &str = "SELECT sid, room_sid, room_name, identity, name, joined_at_ms, \
             left_at_ms, disconnect_reason FROM participant_sessions \
             WHERE room_name = $1 ORDER BY joined_at_ms, sid";
        with_pool!(self, |pool| {
            sqlx::query_as::<_, ParticipantSession>(SQL)
                .bind(room_name)
                .fetch_all(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }

    /// Every track published in the room lifetime `room_sid`, in publish order.
    pub async fn list_tracks(&self, room_sid: &str) -> Result<Vec<TrackRecord>, StoreError> {
        const SQL: &str = "SELECT sid, room_sid, participant_sid, kind, source, mime_type, \
             published_at_ms, unpublished_at_ms FROM tracks \
             WHERE room_sid = $1 ORDER BY published_at_ms, sid";
        with_pool!(self, |pool| {
            sqlx::query_as::<_, TrackRecord>(SQL)
                .bind(room_sid)
                .fetch_all(pool)
                .await
        })
        .map_err(|e| self.query_error(e))
    }
}
