//! One participant's signalling WebSocket: framing, ping/pong, and relaying between the
//! client and the shard that owns its room.
//!
//! One binary WS message is one protobuf `SignalRequest`/`SignalResponse`. If a client
//! speaks protojson in text frames we answer in text frames too (LiveKit does the same).
//! Pings are answered here, without a round trip to the room.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use livekit_protocol as proto;
use prost::Message as _;
use sfu_core::ParticipantId;
use tokio::sync::mpsc;

use crate::media::{SessionEvent, ShardRequest};

/// WebSocket-level ping interval (keeps proxies from idling the connection out).
const WS_PING_INTERVAL: Duration = Duration::from_secs(10);
/// How often a fresh token is pushed (LiveKit: right after join, then every 5 minutes).
const REFRESH_INTERVAL: Duration = Duration::from_secs(300);
/// Validity of a refresh token (LiveKit uses 10 minutes).
const REFRESH_TTL: Duration = Duration::from_secs(600);

/// What is needed to mint `refresh_token`s for this session: the verified claims and the
/// secret of their API key. Clients use the newest token when they reconnect, so a session
/// outlives its original token.
pub struct Refresh {
    /// Claims of the join token.
    pub claims: crate::token::Claims,
    /// Secret of `claims.iss`.
    pub secret: String,
}

impl Refresh {
    /// Rewrites the grant from new permissions (server API UpdateParticipant).
    fn apply_permission(&mut self, p: &proto::ParticipantPermission) {
        let mut v = self.claims.video();
        v.can_publish = Some(p.can_publish);
        v.can_subscribe = Some(p.can_subscribe);
        v.can_publish_data = Some(p.can_publish_data);
        v.can_update_own_metadata = Some(p.can_update_metadata);
        v.hidden = p.hidden;
        v.can_publish_sources = p
            .can_publish_sources
            .iter()
            .filter_map(|s| proto::TrackSource::try_from(*s).ok())
            .filter_map(crate::token::source_name)
            .map(str::to_owned)
            .collect();
        self.claims.video = Some(v);
    }

    fn token(&self) -> proto::SignalResponse {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut c = self.claims.clone();
        c.nbf = Some(now);
        c.exp = now + REFRESH_TTL.as_secs();
        proto::SignalResponse {
            message: Some(proto::signal_response::Message::RefreshToken(
                crate::token::sign(&c, &self.secret),
            )),
        }
    }
}

/// Tells the shard a session ended, whichever way it ended (including a failed upgrade).
pub struct SessionGuard {
    shard: mpsc::UnboundedSender<ShardRequest>,
    participant: ParticipantId,
}

impl SessionGuard {
    /// Guards `participant` on `shard`.
    pub fn new(shard: mpsc::UnboundedSender<ShardRequest>, participant: ParticipantId) -> Self {
        Self { shard, participant }
    }

    fn forward(&self, request: proto::SignalRequest) {
        // A closed shard means the server is shutting down; nothing left to tell.
        let _ = self.shard.send(ShardRequest::Signal {
            participant: self.participant,
            request: Box::new(request),
        });
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let _ = self.shard.send(ShardRequest::SignalClosed {
            participant: self.participant,
        });
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Encodes a response in the connection's framing.
fn frame(resp: &proto::SignalResponse, json: bool) -> Message {
    if json {
        match serde_json::to_string(resp) {
            Ok(s) => Message::Text(s.into()),
            Err(_) => Message::Binary(resp.encode_to_vec().into()),
        }
    } else {
        Message::Binary(resp.encode_to_vec().into())
    }
}

/// Answers pings locally; returns the response to send, if the request was a ping.
fn answer_ping(req: &proto::SignalRequest) -> Option<proto::SignalResponse> {
    use proto::{signal_request::Message as Req, signal_response::Message as Resp};
    let msg = match req.message.as_ref()? {
        Req::Ping(_) => Resp::Pong(unix_ms()),
        Req::PingReq(p) => Resp::PongResp(proto::Pong {
            last_ping_timestamp: p.timestamp,
            timestamp: unix_ms(),
        }),
        _ => return None,
    };
    Some(proto::SignalResponse { message: Some(msg) })
}

/// Decodes a client frame; `None` for frames that carry no request.
fn decode(msg: &Message, json: &mut bool) -> Option<proto::SignalRequest> {
    match msg {
        Message::Binary(b) => proto::SignalRequest::decode(b.as_ref()).ok(),
        Message::Text(t) => {
            *json = true;
            serde_json::from_str(t.as_str()).ok()
        }
        _ => None,
    }
}

/// Runs the session until either side closes it.
pub async fn run(
    socket: WebSocket,
    guard: SessionGuard,
    mut events: mpsc::UnboundedReceiver<SessionEvent>,
    mut refresh: Option<Refresh>,
) {
    let (mut tx, mut rx) = socket.split();
    let mut json = false;
    let mut ping = tokio::time::interval(WS_PING_INTERVAL);
    ping.tick().await;
    // The first refresh goes out right after the JoinResponse (nothing may precede it).
    let mut refresh_timer = tokio::time::interval(REFRESH_INTERVAL);
    let mut joined = false;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(SessionEvent::Signal(resp)) => {
                    if tx.send(frame(&resp, json)).await.is_err() {
                        break;
                    }
                    if !joined {
                        joined = true;
                        refresh_timer.reset_immediately();
                    }
                }
                Some(SessionEvent::PermissionChanged(perm)) => {
                    if let Some(r) = refresh.as_mut() {
                        r.apply_permission(&perm);
                        if tx.send(frame(&r.token(), json)).await.is_err() {
                            break;
                        }
                    }
                }
                Some(SessionEvent::Close) | None => {
                    let _ = tx.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                    break;
                }
            },
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(m)) => {
                    let Some(req) = decode(&m, &mut json) else { continue };
                    match answer_ping(&req) {
                        Some(pong) => {
                            if tx.send(frame(&pong, json)).await.is_err() {
                                break;
                            }
                        }
                        None => guard.forward(req),
                    }
                }
            },
            _ = refresh_timer.tick(), if joined && refresh.is_some() => {
                if let Some(r) = &refresh
                    && tx.send(frame(&r.token(), json)).await.is_err()
                {
                    break;
                }
            }
            _ = ping.tick() => {
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(guard);
}

/// Answers a resume attempt (`reconnect=1`) with `Leave{STATE_MISMATCH, RECONNECT}`, which
/// makes every current SDK do a clean full rejoin.
pub async fn refuse_resume(mut socket: WebSocket) {
    let leave = proto::SignalResponse {
        message: Some(proto::signal_response::Message::Leave(
            proto::LeaveRequest {
                can_reconnect: true,
                reason: proto::DisconnectReason::StateMismatch as i32,
                action: proto::leave_request::Action::Reconnect as i32,
                regions: None,
            },
        )),
    };
    let _ = socket.send(frame(&leave, false)).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_req_is_answered_with_its_timestamp() {
        let req = proto::SignalRequest {
            message: Some(proto::signal_request::Message::PingReq(proto::Ping {
                timestamp: 42,
                rtt: 0,
            })),
        };
        match answer_ping(&req).unwrap().message.unwrap() {
            proto::signal_response::Message::PongResp(p) => {
                assert_eq!(p.last_ping_timestamp, 42);
                assert!(p.timestamp > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        let legacy = proto::SignalRequest {
            message: Some(proto::signal_request::Message::Ping(1)),
        };
        assert!(matches!(
            answer_ping(&legacy).unwrap().message,
            Some(proto::signal_response::Message::Pong(_))
        ));
    }

    #[test]
    fn garbage_frames_decode_to_nothing() {
        let mut json = false;
        assert!(decode(&Message::Binary(vec![0xff, 0xff, 0xff].into()), &mut json).is_none());
        assert!(decode(&Message::Text("{not json".into()), &mut json).is_none());
        assert!(json);
    }
}
