//! The ideal forwarder's WHIP/WHEP endpoints, shaped like Switchyard's so the load
//! generator's URLs only change host and port: `POST /whip/v1` (stream = the bearer
//! token's `sub`, read without verifying: this is a benchmark, not a server) or
//! `POST /whip/{stream}`; `POST /whep/v1?participant={stream}` or `POST /whep/{stream}`;
//! `DELETE /whip/v1/{id}` and `/whep/v1/{id}`. Requests go to the media loop over a
//! channel, so the loop owns every connection alone.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, post},
};
use base64::Engine;
use tokio::sync::{mpsc, oneshot};

use super::forwarder::{Answer, Control};

type Tx = mpsc::UnboundedSender<Control>;

/// The routes, sending requests to the media loop on `tx`.
pub fn router(tx: Tx) -> Router {
    Router::new()
        .route("/whip/v1", post(whip_token))
        .route("/whip/{stream}", post(whip_named))
        .route("/whep/v1", post(whep_query))
        .route("/whep/{stream}", post(whep_named))
        .route("/whip/v1/{id}", delete(remove))
        .route("/whep/v1/{id}", delete(remove))
        .with_state(tx)
}

/// The `sub` claim of a JWT bearer token, unverified.
pub fn token_subject(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = auth.strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

async fn ask(
    tx: &Tx,
    kind: &str,
    make: impl FnOnce(oneshot::Sender<Result<Answer, String>>) -> Control,
) -> Response {
    let (reply, rx) = oneshot::channel();
    if tx.send(make(reply)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "media loop stopped").into_response();
    }
    match rx.await {
        Ok(Ok(a)) => (
            StatusCode::CREATED,
            [
                (header::CONTENT_TYPE, "application/sdp".to_owned()),
                (header::LOCATION, format!("/{kind}/v1/{}", a.id)),
            ],
            a.sdp,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::BAD_REQUEST, e).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "media loop stopped").into_response(),
    }
}

async fn whip_token(State(tx): State<Tx>, h: HeaderMap, offer: String) -> Response {
    let stream = token_subject(&h).unwrap_or_else(|| "default".into());
    ask(&tx, "whip", |reply| Control::Publish {
        stream,
        offer,
        reply,
    })
    .await
}

async fn whip_named(State(tx): State<Tx>, Path(stream): Path<String>, offer: String) -> Response {
    ask(&tx, "whip", |reply| Control::Publish {
        stream,
        offer,
        reply,
    })
    .await
}

async fn whep_query(
    State(tx): State<Tx>,
    Query(q): Query<HashMap<String, String>>,
    offer: String,
) -> Response {
    let stream = q.get("participant").cloned();
    ask(&tx, "whep", |reply| Control::Play {
        stream,
        offer,
        reply,
    })
    .await
}

async fn whep_named(State(tx): State<Tx>, Path(stream): Path<String>, offer: String) -> Response {
    ask(&tx, "whep", |reply| Control::Play {
        stream: Some(stream),
        offer,
        reply,
    })
    .await
}

async fn remove(State(tx): State<Tx>, Path(id): Path<String>) -> Response {
    let (reply, rx) = oneshot::channel();
    if tx.send(Control::Delete { id, reply }).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match rx.await {
        Ok(true) => StatusCode::OK.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_from_the_token_subject() {
        let auth = crate::loadgen::auth::Auth::LiveKit {
            key: "k".into(),
            secret: "s".into(),
            room: "r".into(),
        };
        let t = auth
            .token("pub3", crate::loadgen::auth::Role::Publish)
            .expect("signs")
            .expect("token");
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().expect("header"),
        );
        assert_eq!(token_subject(&h).as_deref(), Some("pub3"));
        assert_eq!(token_subject(&HeaderMap::new()), None);
    }
}
