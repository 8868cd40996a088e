//! Turning an HTTP connect request (`/rtc?...` or `/rtc/validate?...`) into a verified
//! [`JoinParams`], or into the exact HTTP status and plain-text reason LiveKit would give.
//!
//! The checks and their order follow LiveKit's `validateInternal`: token, `roomJoin`,
//! room name, identity, length limits, then room existence when auto-create is off.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};
use livekit_protocol as proto;
use sfu_core::{JoinParams, RoomSettings};

use crate::token::{self, Claims, KeyProvider};

/// Longest room name / identity LiveKit accepts.
pub const MAX_NAME_LEN: usize = 256;

/// An HTTP refusal: status plus the plain-text body clients show to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status.
    pub status: StatusCode,
    /// Plain-text reason.
    pub message: String,
}

impl HttpError {
    /// Builds an error.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// The query of a v0 connect (`/rtc`), as the SDKs send it.
#[derive(Debug, Default, Clone)]
pub struct ConnectQuery {
    /// Raw key/value pairs.
    pub params: HashMap<String, String>,
}

impl ConnectQuery {
    /// Parses a URL query string.
    pub fn parse(query: Option<&str>) -> Self {
        let params = query
            .map(|q| {
                form_urlencoded_pairs(q)
                    .into_iter()
                    .collect::<HashMap<String, String>>()
            })
            .unwrap_or_default();
        Self { params }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }

    /// LiveKit's boolean parser: `1` or `true`.
    fn flag(&self, k: &str) -> Option<bool> {
        self.get(k)
            .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
    }

    /// `reconnect=1`: the client tries to resume a session.
    pub fn is_reconnect(&self) -> bool {
        self.flag("reconnect").unwrap_or(false)
    }

    /// ClientInfo from `sdk`, `version`, `protocol`, `os`, ...
    pub fn client_info(&self) -> proto::ClientInfo {
        use proto::client_info::Sdk;
        let sdk = match self.get("sdk").unwrap_or("") {
            "js" => Sdk::Js,
            "swift" | "ios" => Sdk::Swift,
            "android" => Sdk::Android,
            "flutter" => Sdk::Flutter,
            "go" => Sdk::Go,
            "unity" => Sdk::Unity,
            "reactnative" => Sdk::ReactNative,
            "rust" => Sdk::Rust,
            "python" => Sdk::Python,
            "cpp" => Sdk::Cpp,
            "unityweb" => Sdk::UnityWeb,
            "node" => Sdk::Node,
            _ => Sdk::Unknown,
        };
        let s = |k: &str| self.get(k).unwrap_or("").to_owned();
        proto::ClientInfo {
            sdk: sdk as i32,
            version: s("version"),
            protocol: self
                .get("protocol")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            os: s("os"),
            os_version: s("os_version"),
            device_model: s("device_model"),
            browser: s("browser"),
            browser_version: s("browser_version"),
            network: s("network"),
            client_protocol: self
                .get("client_protocol")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            ..Default::default()
        }
    }
}

/// Decodes `a=b&c=d` with `+` and percent escapes.
fn form_urlencoded_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the token: `Authorization: Bearer` first, else `access_token` in the query.
pub fn extract_token(headers: &HeaderMap, query: &ConnectQuery) -> Result<String, HttpError> {
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        let v = h.to_str().unwrap_or("");
        return match v.strip_prefix("Bearer ") {
            Some(t) => Ok(t.trim().to_owned()),
            None => Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "invalid authorization header. Must start with Bearer ",
            )),
        };
    }
    match query.get("access_token") {
        Some(t) if !t.is_empty() => Ok(t.to_owned()),
        _ => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "no authorization token provided",
        )),
    }
}

/// Verifies the request and builds the join parameters (room existence is checked later
/// by the shard that owns the room, see [`needs_existing_room`]).
pub fn validate(
    headers: &HeaderMap,
    query: &ConnectQuery,
    keys: &KeyProvider,
    auto_create: bool,
) -> Result<JoinParams, HttpError> {
    validate_claims(headers, query, keys, auto_create).map(|(p, _)| p)
}

/// Like [`validate`], also returning the verified claims (for refresh tokens).
pub fn validate_claims(
    headers: &HeaderMap,
    query: &ConnectQuery,
    keys: &KeyProvider,
    auto_create: bool,
) -> Result<(JoinParams, Claims), HttpError> {
    let token = extract_token(headers, query)?;
    let claims: Claims = token::verify(&token, keys)
        .map_err(|e| HttpError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    let grant = claims.video();
    if !grant.room_join {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "permissions denied",
        ));
    }
    if grant.room.is_empty() {
        return Err(HttpError::new(StatusCode::BAD_REQUEST, "no room name"));
    }
    if claims.identity().is_empty() {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "identity cannot be empty",
        ));
    }
    if grant.room.len() > MAX_NAME_LEN {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "room name is too long",
        ));
    }
    if claims.identity().len() > MAX_NAME_LEN {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "identity is too long",
        ));
    }
    let room_settings = claims
        .room_config
        .as_ref()
        .map(room_settings_from_config)
        .unwrap_or_default();
    let mut client_info = query.client_info();
    if client_info.protocol == 0 {
        // SDKs always send it; a bare client gets the current protocol.
        client_info.protocol = 16;
    }
    let params = JoinParams {
        room: grant.room.clone(),
        identity: claims.identity().to_owned(),
        name: claims.name.clone(),
        metadata: claims.metadata.clone(),
        attributes: claims.attributes.clone(),
        permission: grant.to_permission(),
        kind: claims.participant_kind() as i32,
        auto_subscribe: query.flag("auto_subscribe").unwrap_or(true),
        adaptive_stream: query.flag("adaptive_stream").unwrap_or(false),
        client_info,
        may_create_room: auto_create || grant.room_create,
        room_settings,
        ice_servers: Vec::new(),
    };
    Ok((params, claims))
}

/// The `roomConfig` claim (protojson of RoomConfiguration) as room settings.
fn room_settings_from_config(v: &serde_json::Value) -> RoomSettings {
    let num = |k: &str, alt: &str| {
        v.get(k)
            .or_else(|| v.get(alt))
            .and_then(|x| {
                x.as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
            })
            .map(|n| n.min(u32::MAX as u64) as u32)
    };
    RoomSettings {
        empty_timeout: num("emptyTimeout", "empty_timeout"),
        departure_timeout: num("departureTimeout", "departure_timeout"),
        max_participants: num("maxParticipants", "max_participants"),
        metadata: v
            .get("metadata")
            .and_then(|m| m.as_str())
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{VideoGrant, sign};

    fn keys() -> KeyProvider {
        KeyProvider::new([("k".to_owned(), "s".repeat(32))].into())
    }

    fn token(grant: VideoGrant, sub: &str) -> String {
        let c = Claims {
            iss: "k".into(),
            sub: sub.into(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
            video: Some(grant),
            ..Default::default()
        };
        sign(&c, &"s".repeat(32))
    }

    fn join_grant() -> VideoGrant {
        VideoGrant {
            room_join: true,
            room: "r".into(),
            ..Default::default()
        }
    }

    #[test]
    fn query_token_and_client_info() {
        let q = ConnectQuery::parse(Some(&format!(
            "access_token={}&sdk=js&version=2.23.0&protocol=17&auto_subscribe=0&capabilities=A%2CB",
            token(join_grant(), "a")
        )));
        let p = validate(&HeaderMap::new(), &q, &keys(), true).unwrap();
        assert_eq!(p.identity, "a");
        assert_eq!(p.room, "r");
        assert!(!p.auto_subscribe);
        assert_eq!(p.client_info.protocol, 17);
        assert_eq!(p.client_info.sdk, proto::client_info::Sdk::Js as i32);
        assert_eq!(q.params["capabilities"], "A,B");
    }

    #[test]
    fn bearer_header_wins_and_must_be_bearer() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {}", token(join_grant(), "a"))
                .parse()
                .unwrap(),
        );
        assert!(validate(&h, &ConnectQuery::default(), &keys(), true).is_ok());
        h.insert(header::AUTHORIZATION, "Basic x".parse().unwrap());
        let e = validate(&h, &ConnectQuery::default(), &keys(), true).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn refusals_have_livekit_statuses() {
        let q = |t: String| ConnectQuery::parse(Some(&format!("access_token={t}")));
        let no_join = VideoGrant {
            room: "r".into(),
            ..Default::default()
        };
        let e = validate(&HeaderMap::new(), &q(token(no_join, "a")), &keys(), true).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::UNAUTHORIZED, "permissions denied")
        );
        let no_room = VideoGrant {
            room_join: true,
            ..Default::default()
        };
        let e = validate(&HeaderMap::new(), &q(token(no_room, "a")), &keys(), true).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = validate(
            &HeaderMap::new(),
            &q(token(join_grant(), "")),
            &keys(),
            true,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = validate(&HeaderMap::new(), &ConnectQuery::default(), &keys(), true).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("a+b%3D"), "a b=");
    }
}
