//! Lifecycle events from the shards, turned into operator history (the store) and LiveKit
//! webhooks (the durable outbox), one at a time in arrival order.
//!
//! A room lives on one shard and each shard sends its events in order over one channel,
//! so per-room order is kept from the shard to the outbox; the notifier keeps it from the
//! outbox to the receiver. A failed history write is logged and does not block webhooks.

use std::time::{SystemTime, UNIX_EPOCH};

use livekit_protocol as proto;
use sfu_core::RoomEvent;
use switchyard_store::{ParticipantSession, RoomRecord, Store, TrackRecord};
use switchyard_webhook::Notifier;
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, warn};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn reason_name(p: &proto::ParticipantInfo) -> Option<String> {
    proto::DisconnectReason::try_from(p.disconnect_reason)
        .ok()
        .map(|r| r.as_str_name().to_owned())
}

fn session(room: &proto::Room, p: &proto::ParticipantInfo) -> ParticipantSession {
    ParticipantSession {
        sid: p.sid.clone(),
        room_sid: room.sid.clone(),
        room_name: room.name.clone(),
        identity: p.identity.clone(),
        name: p.name.clone(),
        joined_at_ms: if p.joined_at_ms > 0 {
            p.joined_at_ms
        } else {
            now_ms()
        },
        left_at_ms: None,
        disconnect_reason: None,
    }
}

async fn record(store: &Store, ev: &RoomEvent) -> Result<(), switchyard_store::StoreError> {
    let now = now_ms();
    match ev {
        RoomEvent::RoomStarted { room } => {
            let r = RoomRecord {
                sid: room.sid.clone(),
                name: room.name.clone(),
                created_at_ms: if room.creation_time_ms > 0 {
                    room.creation_time_ms
                } else {
                    now
                },
                closed_at_ms: None,
                metadata: room.metadata.clone(),
            };
            store.record_room_started(&r).await
        }
        RoomEvent::RoomFinished { room } => {
            store.record_room_closed(&room.sid, now).await.map(|_| ())
        }
        RoomEvent::ParticipantJoined { room, participant } => {
            store
                .record_participant_joined(&session(room, participant))
                .await
        }
        RoomEvent::ParticipantLeft { room, participant }
        | RoomEvent::ParticipantConnectionAborted { room, participant } => {
            // A participant that never became active has no session row yet.
            if matches!(ev, RoomEvent::ParticipantConnectionAborted { .. }) {
                store
                    .record_participant_joined(&session(room, participant))
                    .await?;
            }
            let reason = reason_name(participant);
            store
                .record_participant_left(&participant.sid, now, reason.as_deref())
                .await
                .map(|_| ())
        }
        RoomEvent::TrackPublished {
            room,
            participant,
            track,
        } => {
            let t = TrackRecord {
                sid: track.sid.clone(),
                room_sid: room.sid.clone(),
                participant_sid: participant.sid.clone(),
                kind: proto::TrackType::try_from(track.r#type)
                    .map(|k| k.as_str_name().to_owned())
                    .unwrap_or_default(),
                source: proto::TrackSource::try_from(track.source)
                    .map(|k| k.as_str_name().to_owned())
                    .unwrap_or_default(),
                mime_type: track.mime_type.clone(),
                published_at_ms: now,
                unpublished_at_ms: None,
            };
            store.record_track_published(&t).await
        }
        RoomEvent::TrackUnpublished { track, .. } => store
            .record_track_unpublished(&track.sid, now)
            .await
            .map(|_| ()),
    }
}

/// Consumes events until every shard is gone.
pub fn spawn(
    store: Store,
    notifier: Option<Notifier>,
    mut rx: mpsc::UnboundedReceiver<RoomEvent>,
) -> JoinHandle<Option<Notifier>> {
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            debug!(event = ev.name(), room = %ev.room().name, "room event");
            if let Err(e) = record(&store, &ev).await {
                warn!(error = %e, event = ev.name(), "cannot record history");
            }
            if let Some(n) = &notifier
                && let Err(e) = n.notify(vec![ev.to_webhook()]).await
            {
                warn!(error = %e, event = ev.name(), "cannot queue webhook");
            }
        }
        notifier
    })
}
