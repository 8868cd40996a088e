//! LiveKit's server API over Twirp: `POST /twirp/livekit.RoomService/<Method>`.
//!
//! The Python SDK speaks protobuf, the Node SDK JSON (`application/json;charset=UTF-8`,
//! camelCase); we answer in the request's encoding. Errors are Twirp JSON with
//! `Content-Type: application/json` exactly (the Node SDK parses them only then) and
//! Twirp's status mapping. Authorisation follows LiveKit: a Bearer token whose `video`
//! grant has `roomCreate` (CreateRoom, DeleteRoom), `roomList` (ListRooms) or `roomAdmin`
//! for the request's room (everything else). Other services answer `unimplemented`.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use livekit_protocol as proto;
use prost::Message;
use serde::{Serialize, de::DeserializeOwned};
use sfu_core::{RoomApi, RoomApiError, RoomApiResponse};
use tokio::sync::oneshot;

use crate::{
    http::AppState,
    media::ShardRequest,
    token::{self, Claims},
};

/// Largest request body (LiveKit `limit.max_api_request_body_size`).
pub const MAX_BODY: usize = 10 << 20;

/// A Twirp error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwirpError {
    /// Twirp code (`not_found`, `unauthenticated`, ...).
    pub code: &'static str,
    /// Message.
    pub msg: String,
}

impl TwirpError {
    fn new(code: &'static str, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.code {
            "canceled" | "deadline_exceeded" => StatusCode::REQUEST_TIMEOUT,
            "invalid_argument" | "malformed" | "out_of_range" => StatusCode::BAD_REQUEST,
            "not_found" | "bad_route" => StatusCode::NOT_FOUND,
            "already_exists" | "aborted" => StatusCode::CONFLICT,
            "permission_denied" => StatusCode::FORBIDDEN,
            "unauthenticated" => StatusCode::UNAUTHORIZED,
            "resource_exhausted" => StatusCode::TOO_MANY_REQUESTS,
            "failed_precondition" => StatusCode::PRECONDITION_FAILED,
            "unimplemented" => StatusCode::NOT_IMPLEMENTED,
            "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<RoomApiError> for TwirpError {
    fn from(e: RoomApiError) -> Self {
        match e {
            RoomApiError::NotFound(m) => Self::new("not_found", m),
            RoomApiError::InvalidArgument(m) => Self::new("invalid_argument", m),
            RoomApiError::FailedPrecondition(m) => Self::new("failed_precondition", m),
        }
    }
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "code": self.code, "msg": self.msg, "meta": {} }).to_string();
        Response::builder()
            .status(self.status())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// Wire encoding of a request (and so of its response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, TwirpError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "application/protobuf" | "application/x-protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        other => Err(TwirpError::new(
            "bad_route",
            format!("unexpected Content-Type: {other:?}"),
        )),
    }
}

fn decode<T: Message + Default + DeserializeOwned>(
    enc: Encoding,
    body: &[u8],
) -> Result<T, TwirpError> {
    match enc {
        Encoding::Protobuf => T::decode(body).map_err(|e| {
            TwirpError::new(
                "malformed",
                format!("the protobuf request could not be decoded: {e}"),
            )
        }),
        Encoding::Json => {
            let body = if body.iter().all(u8::is_ascii_whitespace) {
                b"{}".as_slice()
            } else {
                body
            };
            serde_json::from_slice(body).map_err(|e| {
                TwirpError::new(
                    "malformed",
                    format!("the json request could not be decoded: {e}"),
                )
            })
        }
    }
}

fn encode<T: Message + Serialize>(enc: Encoding, msg: &T) -> Response {
    let (ct, body) = match enc {
        Encoding::Protobuf => ("application/protobuf", msg.encode_to_vec()),
        Encoding::Json => (
            "application/json",
            serde_json::to_vec(msg).unwrap_or_default(),
        ),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The verified claims of the request's Bearer token.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, TwirpError> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| TwirpError::new("unauthenticated", "missing authorization header"))?;
    let t = h.strip_prefix("Bearer ").ok_or_else(|| {
        TwirpError::new(
            "unauthenticated",
            "invalid authorization header. Must start with Bearer ",
        )
    })?;
    token::verify(t.trim(), &state.config.keys)
        .map_err(|e| TwirpError::new("unauthenticated", e.to_string()))
}

fn denied() -> TwirpError {
    TwirpError::new("unauthenticated", "permissions denied")
}

/// What a method needs from the caller's `video` grant.
fn authorize(claims: &Claims, req: &RoomApi) -> Result<(), TwirpError> {
    let v = claims.video();
    let ok = match req {
        RoomApi::CreateRoom(_) | RoomApi::DeleteRoom(_) => v.room_create,
        RoomApi::ListRooms(_) => v.room_list,
        other => v.room_admin && v.room == other.room(),
    };
    if ok { Ok(()) } else { Err(denied()) }
}

async fn call_shard(state: &AppState, req: RoomApi) -> Result<RoomApiResponse, TwirpError> {
    let unavailable = || TwirpError::new("unavailable", "media plane is not running");
    if let RoomApi::ListRooms(r) = &req {
        let mut rooms = Vec::new();
        for shard in state.media.all_shards() {
            let (tx, rx) = oneshot::channel();
            let request = Box::new(RoomApi::ListRooms(r.clone()));
            shard
                .send(ShardRequest::Api { request, reply: tx })
                .map_err(|_| unavailable())?;
            if let Ok(Ok(RoomApiResponse::Rooms(mut rs))) = rx.await {
                rooms.append(&mut rs);
            }
        }
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(RoomApiResponse::Rooms(rooms));
    }
    let (tx, rx) = oneshot::channel();
    let shard = state.media.shard_for(req.room());
    shard
        .send(ShardRequest::Api {
            request: Box::new(req),
            reply: tx,
        })
        .map_err(|_| unavailable())?;
    Ok(rx.await.map_err(|_| unavailable())??)
}

/// Handles `/twirp/{service}/{method}` (Twirp only accepts POST).
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path((service, method)): Path<(String, String)>,
    http_method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if http_method != axum::http::Method::POST {
        return TwirpError::new(
            "bad_route",
            format!("unsupported method {http_method} (only POST is allowed)"),
        )
        .into_response();
    }
    match dispatch(&state, &service, &method, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn dispatch(
    state: &AppState,
    service: &str,
    method: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, TwirpError> {
    match service {
        "livekit.RoomService" => {}
        "livekit.Egress" | "livekit.Ingress" | "livekit.SIP" | "livekit.AgentDispatchService" => {
            return Err(TwirpError::new(
                "unimplemented",
                format!("{service} is not implemented yet"),
            ));
        }
        _ => {
            return Err(TwirpError::new(
                "bad_route",
                format!("no handler for service {service}"),
            ));
        }
    }
    // Like LiveKit: the token is checked before the body is looked at.
    let claims = authenticate(state, headers)?;
    let enc = encoding(headers)?;
    let req = match method {
        "CreateRoom" => RoomApi::CreateRoom(Box::new(decode(enc, body)?)),
        "ListRooms" => RoomApi::ListRooms(decode(enc, body)?),
        "DeleteRoom" => RoomApi::DeleteRoom(decode(enc, body)?),
        "ListParticipants" => RoomApi::ListParticipants(decode(enc, body)?),
        "GetParticipant" => RoomApi::GetParticipant(decode(enc, body)?),
        "RemoveParticipant" => RoomApi::RemoveParticipant(decode(enc, body)?),
        "MutePublishedTrack" => RoomApi::MutePublishedTrack(decode(enc, body)?),
        "UpdateParticipant" => RoomApi::UpdateParticipant(decode(enc, body)?),
        "UpdateSubscriptions" => RoomApi::UpdateSubscriptions(decode(enc, body)?),
        "SendData" => RoomApi::SendData(decode(enc, body)?),
        "UpdateRoomMetadata" => RoomApi::UpdateRoomMetadata(decode(enc, body)?),
        "ForwardParticipant" | "MoveParticipant" | "PerformRpc" => {
            return Err(TwirpError::new(
                "unimplemented",
                format!("{method} is not implemented yet"),
            ));
        }
        _ => {
            return Err(TwirpError::new(
                "bad_route",
                format!("no handler for RoomService/{method}"),
            ));
        }
    };
    authorize(&claims, &req)?;
    if !matches!(req, RoomApi::ListRooms(_)) && req.room().is_empty() {
        return Err(TwirpError::new("invalid_argument", "room is required"));
    }
    let result = call_shard(state, req).await?;
    Ok(match (method, result) {
        (_, RoomApiResponse::Room(r)) => encode(enc, &r),
        (_, RoomApiResponse::Rooms(rooms)) => encode(enc, &proto::ListRoomsResponse { rooms }),
        (_, RoomApiResponse::Participants(participants)) => {
            encode(enc, &proto::ListParticipantsResponse { participants })
        }
        (_, RoomApiResponse::Participant(p)) => encode(enc, &p),
        (_, RoomApiResponse::Track(t)) => {
            encode(enc, &proto::MuteRoomTrackResponse { track: Some(t) })
        }
        ("DeleteRoom", RoomApiResponse::Empty) => encode(enc, &proto::DeleteRoomResponse {}),
        ("RemoveParticipant", RoomApiResponse::Empty) => {
            encode(enc, &proto::RemoveParticipantResponse {})
        }
        ("UpdateSubscriptions", RoomApiResponse::Empty) => {
            encode(enc, &proto::UpdateSubscriptionsResponse {})
        }
        ("SendData", RoomApiResponse::Empty) => encode(enc, &proto::SendDataResponse {}),
        (_, RoomApiResponse::Empty) => encode(enc, &proto::DeleteRoomResponse {}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/json;charset=UTF-8".parse().unwrap(),
        );
        assert_eq!(encoding(&h).unwrap(), Encoding::Json);
        h.insert(
            header::CONTENT_TYPE,
            "application/protobuf".parse().unwrap(),
        );
        assert_eq!(encoding(&h).unwrap(), Encoding::Protobuf);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(encoding(&h).unwrap_err().code, "bad_route");
    }

    #[test]
    fn json_accepts_both_namings_and_unknown_fields() {
        let a: proto::CreateRoomRequest = decode(
            Encoding::Json,
            br#"{"name":"r","emptyTimeout":10,"whatever":1}"#,
        )
        .unwrap();
        let b: proto::CreateRoomRequest =
            decode(Encoding::Json, br#"{"name":"r","empty_timeout":10}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.empty_timeout, 10);
        let e = decode::<proto::CreateRoomRequest>(Encoding::Json, b"{not json").unwrap_err();
        assert_eq!(e.code, "malformed");
        let e = decode::<proto::CreateRoomRequest>(Encoding::Protobuf, &[0xff, 0xff]).unwrap_err();
        assert_eq!(e.code, "malformed");
    }

    #[test]
    fn grants_per_method() {
        let claims = |v: token::VideoGrant| Claims {
            video: Some(v),
            ..Default::default()
        };
        let create = RoomApi::CreateRoom(Box::new(proto::CreateRoomRequest {
            name: "r".into(),
            ..Default::default()
        }));
        assert!(
            authorize(
                &claims(token::VideoGrant {
                    room_create: true,
                    ..Default::default()
                }),
                &create
            )
            .is_ok()
        );
        assert!(
            authorize(
                &claims(token::VideoGrant {
                    room_admin: true,
                    ..Default::default()
                }),
                &create
            )
            .is_err()
        );
        let list = RoomApi::ListParticipants(proto::ListParticipantsRequest { room: "r".into() });
        let admin_r = token::VideoGrant {
            room_admin: true,
            room: "r".into(),
            ..Default::default()
        };
        assert!(authorize(&claims(admin_r), &list).is_ok());
        let admin_other = token::VideoGrant {
            room_admin: true,
            room: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            authorize(&claims(admin_other), &list).unwrap_err().code,
            "unauthenticated"
        );
    }

    #[test]
    fn error_status_mapping() {
        assert_eq!(
            TwirpError::new("not_found", "").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            TwirpError::new("unimplemented", "").status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            TwirpError::new("malformed", "").status(),
            StatusCode::BAD_REQUEST
        );
        let r = TwirpError::new("unauthenticated", "x").into_response();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }
}
