//! A room on the shard: its LiveKit `Room` info, members and the close timer that
//! implements `empty_timeout` (nobody ever joined) and `departure_timeout` (the last
//! participant left).

use std::time::{Duration, Instant};

use livekit_protocol as proto;

use crate::ParticipantId;

/// A room.
#[derive(Debug)]
pub struct Room {
    /// `RM_` sid.
    pub sid: String,
    /// Name.
    pub name: String,
    /// Seconds before an unused room closes.
    pub empty_timeout: u32,
    /// Seconds after the last departure before the room closes.
    pub departure_timeout: u32,
    /// 0 = unlimited.
    pub max_participants: u32,
    /// Metadata.
    pub metadata: String,
    /// Creation time, unix ms.
    pub created_at_ms: i64,
    /// Members in join order.
    pub members: Vec<ParticipantId>,
    /// When the room closes if nobody (re)joins.
    pub closes_at: Option<Instant>,
    /// Someone joined at least once.
    pub ever_joined: bool,
}

impl Room {
    /// LiveKit `Room` message.
    pub fn info(&self, num_participants: u32, num_publishers: u32) -> proto::Room {
        proto::Room {
            sid: self.sid.clone(),
            name: self.name.clone(),
            empty_timeout: self.empty_timeout,
            departure_timeout: self.departure_timeout,
            max_participants: self.max_participants,
            creation_time: self.created_at_ms / 1000,
            creation_time_ms: self.created_at_ms,
            metadata: self.metadata.clone(),
            num_participants,
            num_publishers,
            ..Default::default()
        }
    }

    /// Arms the close timer after the last participant left (or at creation).
    pub fn arm_close(&mut self, now: Instant) {
        let secs = if self.ever_joined {
            self.departure_timeout
        } else {
            self.empty_timeout
        };
        self.closes_at = Some(now + Duration::from_secs(secs as u64));
    }
}
