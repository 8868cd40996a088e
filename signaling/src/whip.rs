//! WHIP (RFC 9725) ingest and WHEP playback over HTTP, into the same rooms LiveKit clients
//! use.
//!
//! `POST /whip/v1` and `POST /whep/v1` take an SDP offer and a LiveKit access token (room
//! and identity come from it; `Authorization: Bearer` or `?access_token=`), and answer
//! `201 Created` with the SDP answer, the session resource in `Location`, its `ETag`, and
//! the ICE servers as `Link` headers. The resource takes `PATCH` (trickle ICE, ICE restart)
//! and `DELETE`. `/whip/{room}` and `/whep/{room}` are the same with the room in the path,
//! for tools that can only be given a URL.
//!
//! A resource id is a random capability; the table of live ones forgets an id as soon as
//! its participant leaves the room for any reason (the shard closes the session's sink).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{patch, post},
};
use rand::Rng as _;
use sfu_core::{HttpSessionError, JoinError, ParticipantId, PatchOutcome, PlaySelection};
use tokio::sync::{mpsc, oneshot};

use crate::{
    connect::{self, ConnectQuery, HttpError},
    http::AppState,
    media::{HttpSessionKind, SessionEvent, ShardRequest},
};

/// Largest SDP offer or fragment accepted.
pub const MAX_SDP: usize = 128 * 1024;

/// Where a session resource lives.
#[derive(Debug, Clone)]
struct SessionRef {
    room: String,
    participant: ParticipantId,
    whep: bool,
}

/// Live session resources by id.
#[derive(Debug, Default, Clone)]
pub struct HttpSessions(Arc<Mutex<HashMap<String, SessionRef>>>);

impl HttpSessions {
    fn get(&self, id: &str, whep: bool) -> Option<SessionRef> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|s| s.whep == whep).cloned()
    }

    fn insert(&self, id: String, s: SessionRef) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(id, s);
    }

    fn remove(&self, id: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id);
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// No live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The WHIP/WHEP routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/whip/v1", post(whip_post))
        .route("/whep/v1", post(whep_post))
        .route("/whip/{room}", post(whip_post_room))
        .route("/whep/{room}", post(whep_post_room))
        .route("/whip/v1/{id}", patch(whip_patch).delete(whip_delete))
        .route("/whep/v1/{id}", patch(whep_patch).delete(whep_delete))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_SDP))
}

fn error_status(e: &HttpSessionError) -> StatusCode {
    match e {
        HttpSessionError::BadSdp(_) | HttpSessionError::NoMedia(_) => StatusCode::BAD_REQUEST,
        HttpSessionError::NoCommonCodec => StatusCode::NOT_ACCEPTABLE,
        HttpSessionError::Join(JoinError::RoomNotFound) | HttpSessionError::NotFound => {
            StatusCode::NOT_FOUND
        }
        HttpSessionError::Join(JoinError::RoomFull) => StatusCode::FORBIDDEN,
        HttpSessionError::Join(JoinError::PeerConnection(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        HttpSessionError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        HttpSessionError::IceRestart(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn refuse(e: HttpSessionError) -> Response {
    HttpError::new(error_status(&e), e.to_string()).into_response()
}

fn unavailable() -> Response {
    HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "media plane is not running",
    )
    .into_response()
}

/// `Content-Type` without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// `Link` header values for the ICE servers (RFC 9725 section 4.6).
fn link_headers(servers: &[livekit_protocol::IceServer]) -> Vec<String> {
    let mut out = Vec::new();
    for s in servers {
        for url in &s.urls {
            let mut v = format!("<{url}>; rel=\"ice-server\"");
            if !s.username.is_empty() {
                v.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    s.username, s.credential
                ));
            }
            out.push(v);
        }
    }
    out
}

async fn whip_post(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    create(&s, &h, &uri, None, false, body).await
}

async fn whep_post(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    create(&s, &h, &uri, None, true, body).await
}

async fn whip_post_room(
    State(s): State<Arc<AppState>>,
    Path(room): Path<String>,
    h: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    create(&s, &h, &uri, Some(room), false, body).await
}

async fn whep_post_room(
    State(s): State<Arc<AppState>>,
    Path(room): Path<String>,
    h: HeaderMap,
    uri: Uri,
    body: String,
) -> Response {
    create(&s, &h, &uri, Some(room), true, body).await
}

/// What to play, from the WHEP query (`participant`, `tracks`).
fn selection(query: &ConnectQuery) -> PlaySelection {
    let get = |k: &str| query.params.get(k).filter(|v| !v.is_empty()).cloned();
    PlaySelection {
        participant: get("participant"),
        track_sids: get("tracks")
            .map(|t| {
                t.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// POST: verify the token and the grant, then let the room's shard set the session up.
async fn create(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    path_room: Option<String>,
    whep: bool,
    offer: String,
) -> Response {
    let query = ConnectQuery::parse(uri.query());
    let params = match connect::validate(
        headers,
        &query,
        &state.config.keys,
        state.config.auto_create,
    ) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some(room) = path_room
        && room != params.room
    {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            format!("token is for room {:?}, not {room:?}", params.room),
        )
        .into_response();
    }
    let perm = &params.permission;
    if whep && !perm.can_subscribe {
        return HttpError::new(
            StatusCode::FORBIDDEN,
            "does not have permission to subscribe",
        )
        .into_response();
    }
    if !whep && !perm.can_publish {
        return HttpError::new(StatusCode::FORBIDDEN, "does not have permission to publish")
            .into_response();
    }
    if media_type(headers) != "application/sdp" {
        return HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/sdp",
        )
        .into_response();
    }
    let kind = if whep {
        HttpSessionKind::Whep(selection(&query))
    } else {
        HttpSessionKind::Whip
    };
    let room = params.room.clone();
    let ice_servers = state.config.ice.servers_for(&params.identity);
    let shard = state.media.shard_for(&room);
    let (sink, mut events) = mpsc::unbounded_channel();
    let (tx, rx) = oneshot::channel();
    let req = ShardRequest::HttpSession {
        kind,
        params: Box::new(params),
        offer,
        sink,
        reply: tx,
    };
    if shard.send(req).is_err() {
        return unavailable();
    }
    let answer = match rx.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return refuse(e),
        Err(_) => return unavailable(),
    };
    let id: String = {
        let mut rng = rand::rng();
        (0..24)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
            .collect()
    };
    state.http_sessions.insert(
        id.clone(),
        SessionRef {
            room,
            participant: answer.participant,
            whep,
        },
    );
    // Forget the resource when its participant is gone (DELETE, server API, failure).
    let sessions = state.http_sessions.clone();
    let forget = id.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if matches!(ev, SessionEvent::Close) {
                break;
            }
        }
        sessions.remove(&forget);
    });
    let location = format!("/{}/v1/{id}", if whep { "whep" } else { "whip" });
    let mut resp = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::CONTENT_TYPE, "application/sdp")
        .header(header::LOCATION, location)
        .header(header::ETAG, answer.etag)
        .header("Accept-Patch", "application/trickle-ice-sdpfrag");
    for link in link_headers(&ice_servers) {
        resp = resp.header(header::LINK, link);
    }
    resp.body(Body::from(answer.sdp))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn not_found() -> Response {
    HttpError::new(StatusCode::NOT_FOUND, "no such session").into_response()
}

async fn whip_patch(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    patch_session(&s, &id, false, &h, body).await
}

async fn whep_patch(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: String,
) -> Response {
    patch_session(&s, &id, true, &h, body).await
}

async fn whip_delete(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    delete_session(&s, &id, false).await
}

async fn whep_delete(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    delete_session(&s, &id, true).await
}

/// PATCH: trickle (204) or ICE restart (200 with our new credentials).
async fn patch_session(
    state: &AppState,
    id: &str,
    whep: bool,
    headers: &HeaderMap,
    body: String,
) -> Response {
    let Some(r) = state.http_sessions.get(id, whep) else {
        return not_found();
    };
    if media_type(headers) != "application/trickle-ice-sdpfrag" {
        return HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/trickle-ice-sdpfrag",
        )
        .into_response();
    }
    let if_match = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (tx, rx) = oneshot::channel();
    let req = ShardRequest::HttpSessionPatch {
        participant: r.participant,
        sdpfrag: body,
        if_match,
        reply: tx,
    };
    if state.media.shard_for(&r.room).send(req).is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(Ok(PatchOutcome::Trickled)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(PatchOutcome::Restarted { sdpfrag, etag })) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/trickle-ice-sdpfrag")
            .header(header::ETAG, etag)
            .body(Body::from(sdpfrag))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        Ok(Err(e)) => {
            if e == HttpSessionError::NotFound {
                state.http_sessions.remove(id);
            }
            refuse(e)
        }
        Err(_) => unavailable(),
    }
}

/// DELETE: the session's participant leaves; the resource is gone (404 afterwards).
async fn delete_session(state: &AppState, id: &str, whep: bool) -> Response {
    let Some(r) = state.http_sessions.get(id, whep) else {
        return not_found();
    };
    state.http_sessions.remove(id);
    let (tx, rx) = oneshot::channel();
    let req = ShardRequest::HttpSessionEnd {
        participant: r.participant,
        reply: tx,
    };
    if state.media.shard_for(&r.room).send(req).is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => refuse(e),
        Err(_) => unavailable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_carry_credentials() {
        let l = link_headers(&[livekit_protocol::IceServer {
            urls: vec!["turn:h:3478?transport=udp".into()],
            username: "u".into(),
            credential: "p".into(),
        }]);
        assert_eq!(
            l,
            vec![
                "<turn:h:3478?transport=udp>; rel=\"ice-server\"; username=\"u\"; credential=\"p\"; credential-type=\"password\""
            ]
        );
    }

    #[test]
    fn selection_from_query() {
        let q = ConnectQuery::parse(Some("participant=cam&tracks=TR_a,%20TR_b,"));
        let s = selection(&q);
        assert_eq!(s.participant.as_deref(), Some("cam"));
        assert_eq!(s.track_sids, vec!["TR_a", "TR_b"]);
    }

    #[test]
    fn statuses() {
        assert_eq!(
            error_status(&HttpSessionError::NoCommonCodec),
            StatusCode::NOT_ACCEPTABLE
        );
        assert_eq!(
            error_status(&HttpSessionError::NoMedia("x")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            error_status(&HttpSessionError::NotFound),
            StatusCode::NOT_FOUND
        );
    }
}
