//! The HTTP surface LiveKit clients use: health, `/rtc` (v0 WebSocket), the validate
//! endpoints, and a clean HTTP/1.1 404 on `/rtc/v1` so current SDKs fall back to v0.
//!
//! Every refusal happens before the WebSocket upgrade, as an HTTP status with a plain-text
//! body, because that is how LiveKit SDKs learn why a connect failed (they re-ask
//! `/validate` and show its body).

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Request, State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    connect::{self, ConnectQuery, HttpError},
    media::{MediaPlane, ShardRequest},
    session,
    token::{Claims, KeyProvider},
};

/// Settings signalling needs.
#[derive(Clone, Debug)]
pub struct SignalingConfig {
    /// API keys.
    pub keys: KeyProvider,
    /// `room.auto_create`.
    pub auto_create: bool,
    /// Where clients get their ICE servers (JoinResponse, WHIP/WHEP `Link` headers).
    pub ice: crate::ice::IceConfig,
}

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// Settings.
    pub config: SignalingConfig,
    /// Where rooms live.
    pub media: Arc<dyn MediaPlane>,
    /// Live WHIP/WHEP session resources.
    pub http_sessions: crate::whip::HttpSessions,
}

/// Body of the 404 on `/rtc/v1`: must not contain "requested room does not exist", or the
/// JS SDK would treat it as fatal instead of falling back to v0.
const V1_NOT_SUPPORTED: &str = "v1 signalling is not supported by this server, use /rtc";

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(|| async { "OK" }))
        .route("/rtc", get(rtc))
        .route("/rtc/validate", get(validate))
        .route(
            "/rtc/v1",
            get(|| async { (StatusCode::NOT_FOUND, V1_NOT_SUPPORTED) }),
        )
        .route(
            "/rtc/v1/validate",
            get(|| async { (StatusCode::NOT_FOUND, V1_NOT_SUPPORTED) }),
        )
        .route(
            "/twirp/{service}/{method}",
            axum::routing::any(crate::twirp::handle)
                .layer(axum::extract::DefaultBodyLimit::max(crate::twirp::MAX_BODY)),
        )
        .merge(crate::whip::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(state)
        .layer(middleware::from_fn(cors))
        .layer(middleware::from_fn(collapse_double_slash))
}

/// Permissive CORS like LiveKit's: any origin, the usual methods, any header.
async fn cors(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    // `*` does not cover `Authorization` in the Fetch standard: name what was asked for.
    let asked = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut resp = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("OPTIONS, HEAD, GET, POST, PATCH, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        asked.unwrap_or_else(|| HeaderValue::from_static("*")),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    // WHIP/WHEP browser clients read these from the 201 (and from PATCH).
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Patch, Accept-Post"),
    );
    if preflight {
        h.insert("Accept-Post", HeaderValue::from_static("application/sdp"));
    }
    resp
}

/// LiveKit collapses a leading `//` (clients that join a base URL ending in `/`).
async fn collapse_double_slash(mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("//") {
        let trimmed = format!("/{}", path.trim_start_matches('/'));
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed,
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    next.run(req).await
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from(self.message))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// Full validation of a connect request, including room existence.
async fn check(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(sfu_core::JoinParams, ConnectQuery, Claims), HttpError> {
    let query = ConnectQuery::parse(uri.query());
    let (params, claims) = connect::validate_claims(
        headers,
        &query,
        &state.config.keys,
        state.config.auto_create,
    )?;
    if !params.may_create_room {
        let (tx, rx) = oneshot::channel();
        send(
            &state.media.shard_for(&params.room),
            ShardRequest::RoomExists {
                room: params.room.clone(),
                reply: tx,
            },
        )?;
        if !rx.await.unwrap_or(false) {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "requested room does not exist",
            ));
        }
    }
    Ok((params, query, claims))
}

fn send(shard: &mpsc::UnboundedSender<ShardRequest>, r: ShardRequest) -> Result<(), HttpError> {
    shard.send(r).map_err(|_| {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "media plane is not running",
        )
    })
}

async fn validate(State(state): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Response {
    match check(&state, &headers, &uri).await {
        Ok(_) => (StatusCode::OK, "success").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn rtc(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (mut params, query, claims) = match check(&state, &headers, &uri).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    params.ice_servers = state.config.ice.servers_for(&params.identity);
    let Ok(ws) = ws else {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let ws = ws.max_message_size(2 << 20);
    if query.is_reconnect() {
        // No session resume yet: tell the client to rejoin from scratch.
        return ws.on_upgrade(session::refuse_resume);
    }
    let shard = state.media.shard_for(&params.room);
    let (sink, events) = mpsc::unbounded_channel();
    let (reply_tx, reply_rx) = oneshot::channel();
    if let Err(e) = send(
        &shard,
        ShardRequest::Join {
            params: Box::new(params),
            sink,
            reply: reply_tx,
        },
    ) {
        return e.into_response();
    }
    let participant = match reply_rx.await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            let status = match e {
                sfu_core::JoinError::RoomNotFound => StatusCode::NOT_FOUND,
                sfu_core::JoinError::RoomFull => StatusCode::FORBIDDEN,
                sfu_core::JoinError::PeerConnection(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            return HttpError::new(status, e.to_string()).into_response();
        }
        Err(_) => {
            return HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "media plane is not running",
            )
            .into_response();
        }
    };
    // If the upgrade never completes, the guard inside tells the shard the session is gone.
    let guard = session::SessionGuard::new(shard, participant);
    let refresh = state
        .config
        .keys
        .secret(&claims.iss)
        .map(|secret| session::Refresh {
            claims,
            secret: secret.to_owned(),
        });
    ws.on_upgrade(move |socket| session::run(socket, guard, events, refresh))
}
