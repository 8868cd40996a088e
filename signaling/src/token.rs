//! LiveKit access tokens: HS256 JWTs whose issuer is an API key.
//!
//! We verify exactly what livekit/protocol's `auth` package verifies, so tokens minted by
//! any LiveKit server SDK work unchanged: HS256 only, `iss` selects the secret, `exp` is
//! required, `nbf` is honoured, 60 s of leeway, identity from `sub` (or `jti`). The grant
//! claims keep LiveKit's camelCase JSON names and its tri-state defaults (an absent
//! `canPublish` means *allowed*).

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use livekit_protocol as proto;
use serde::{Deserialize, Serialize};

/// Leeway applied to `exp` and `nbf`, as in LiveKit's verifier.
pub const LEEWAY_SECS: u64 = 60;

/// API key -> secret, as configured by `keys:` / `key_file` / `LIVEKIT_KEYS`.
#[derive(Clone, Debug, Default)]
pub struct KeyProvider {
    keys: HashMap<String, String>,
}

impl KeyProvider {
    /// Builds a provider from key/secret pairs.
    pub fn new(keys: HashMap<String, String>) -> Self {
        Self { keys }
    }

    /// The secret of `key`, if configured.
    pub fn secret(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Why a token was refused. The `Display` text is what LiveKit sends in the HTTP body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, bad signature, wrong algorithm, expired, not yet valid.
    #[error("invalid authorization token: {0}")]
    Invalid(String),
    /// The `iss` key is not configured.
    #[error("invalid API key: {0}")]
    UnknownKey(String),
}

/// The `video` grant of a LiveKit token (livekit/protocol `auth.VideoGrant`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoGrant {
    pub room_create: bool,
    pub room_list: bool,
    pub room_record: bool,
    pub room_admin: bool,
    pub room_join: bool,
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
    pub ingress_admin: bool,
    pub hidden: bool,
    pub recorder: bool,
    pub agent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe_metrics: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_manage_agent_session: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub destination_room: String,
}

impl VideoGrant {
    /// `ParticipantPermission` as LiveKit derives it (`VideoGrant.ToPermission`).
    #[allow(deprecated)] // `recorder` and `agent` are deprecated in the proto but still sent.
    pub fn to_permission(&self) -> proto::ParticipantPermission {
        let can_publish = self.can_publish.unwrap_or(true);
        proto::ParticipantPermission {
            can_subscribe: self.can_subscribe.unwrap_or(true),
            can_publish,
            can_publish_data: self.can_publish_data.unwrap_or(can_publish),
            can_publish_sources: self
                .can_publish_sources
                .iter()
                .filter_map(|s| source_from_name(s))
                .map(|s| s as i32)
                .collect(),
            hidden: self.hidden,
            recorder: self.recorder,
            can_update_metadata: self.can_update_own_metadata.unwrap_or(false),
            agent: self.agent,
            can_subscribe_metrics: self.can_subscribe_metrics.unwrap_or(false),
            can_manage_agent_session: self.can_manage_agent_session.unwrap_or(false),
        }
    }
}

/// Maps LiveKit's lowercase source names (`camera`, `microphone`, ...) to `TrackSource`.
pub fn source_from_name(name: &str) -> Option<proto::TrackSource> {
    Some(match name.to_ascii_lowercase().as_str() {
        "camera" => proto::TrackSource::Camera,
        "microphone" => proto::TrackSource::Microphone,
        "screen_share" => proto::TrackSource::ScreenShare,
        "screen_share_audio" => proto::TrackSource::ScreenShareAudio,
        _ => return None,
    })
}

/// LiveKit's lowercase name of a `TrackSource`.
pub fn source_name(s: proto::TrackSource) -> Option<&'static str> {
    Some(match s {
        proto::TrackSource::Camera => "camera",
        proto::TrackSource::Microphone => "microphone",
        proto::TrackSource::ScreenShare => "screen_share",
        proto::TrackSource::ScreenShareAudio => "screen_share_audio",
        _ => return None,
    })
}

/// The claims of a LiveKit access token.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Claims {
    pub iss: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sub: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jti: String,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub attributes: HashMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoGrant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_config: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

impl Claims {
    /// Participant identity: `sub`, or `jti` when `sub` is empty (LiveKit's rule).
    pub fn identity(&self) -> &str {
        if self.sub.is_empty() {
            &self.jti
        } else {
            &self.sub
        }
    }

    /// The video grant, or an empty one.
    pub fn video(&self) -> VideoGrant {
        self.video.clone().unwrap_or_default()
    }

    /// `ParticipantInfo.kind` from the `kind` claim.
    pub fn participant_kind(&self) -> proto::participant_info::Kind {
        use proto::participant_info::Kind;
        match self.kind.as_str() {
            "ingress" => Kind::Ingress,
            "egress" => Kind::Egress,
            "sip" => Kind::Sip,
            "agent" => Kind::Agent,
            "connector" => Kind::Connector,
            "bridge" => Kind::Bridge,
            _ => Kind::Standard,
        }
    }
}

/// Verifies `token` against `keys` and returns its claims.
pub fn verify(token: &str, keys: &KeyProvider) -> Result<Claims, TokenError> {
    let issuer = unverified_issuer(token)?;
    let secret = keys
        .secret(&issuer)
        .ok_or_else(|| TokenError::UnknownKey(issuer.clone()))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    validation.set_issuer(&[issuer.as_str()]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| {
        TokenError::Invalid(match e.kind() {
            ErrorKind::ExpiredSignature => "token is expired".to_owned(),
            ErrorKind::ImmatureSignature => "token is not valid yet".to_owned(),
            ErrorKind::InvalidSignature => "signature is invalid".to_owned(),
            ErrorKind::InvalidAlgorithm => "signing method is invalid".to_owned(),
            _ => e.to_string(),
        })
    })?;
    Ok(data.claims)
}

/// Signs `claims` with `secret` (HS256). Used for `refresh_token` and in tests.
pub fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    // Invariant: HS256 signing of a serialisable struct with the rust_crypto backend cannot fail.
    .expect("HS256 signing failed")
}

/// Reads `iss` without checking the signature, to pick the secret.
fn unverified_issuer(token: &str) -> Result<String, TokenError> {
    let bad = |m: &str| TokenError::Invalid(m.to_owned());
    let mut parts = token.split('.');
    let (_, payload) = (
        parts.next(),
        parts.next().ok_or_else(|| bad("token is malformed"))?,
    );
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("token is malformed"))?;
    #[derive(Deserialize)]
    struct Iss {
        #[serde(default)]
        iss: String,
    }
    let iss: Iss = serde_json::from_slice(&bytes).map_err(|_| bad("token is malformed"))?;
    if iss.iss.is_empty() {
        return Err(bad("missing issuer"));
    }
    Ok(iss.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyProvider {
        KeyProvider::new([("k".to_owned(), "s".repeat(32))].into())
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "k".into(),
            sub: "alice".into(),
            exp,
            video: Some(VideoGrant {
                room_join: true,
                room: "r".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn accepts_valid_token_and_defaults_permissions() {
        let t = sign(&claims(now() + 600), &"s".repeat(32));
        let c = verify(&t, &keys()).unwrap();
        assert_eq!(c.identity(), "alice");
        let p = c.video().to_permission();
        assert!(p.can_publish && p.can_subscribe && p.can_publish_data && !p.can_update_metadata);
    }

    #[test]
    fn expired_within_leeway_is_accepted_beyond_is_refused() {
        let ok = sign(&claims(now() - 30), &"s".repeat(32));
        assert!(verify(&ok, &keys()).is_ok());
        let old = sign(&claims(now() - 120), &"s".repeat(32));
        assert_eq!(
            verify(&old, &keys()).unwrap_err(),
            TokenError::Invalid("token is expired".into())
        );
    }

    #[test]
    fn refuses_bad_signature_unknown_key_and_garbage() {
        let bad = sign(&claims(now() + 600), &"x".repeat(32));
        assert!(matches!(verify(&bad, &keys()), Err(TokenError::Invalid(_))));
        let mut c = claims(now() + 600);
        c.iss = "other".into();
        let t = sign(&c, &"s".repeat(32));
        assert_eq!(
            verify(&t, &keys()).unwrap_err(),
            TokenError::UnknownKey("other".into())
        );
        assert!(verify("not-a-jwt", &keys()).is_err());
        assert!(verify("a.%%%.c", &keys()).is_err());
    }

    #[test]
    fn missing_exp_is_refused() {
        let c = claims(0);
        #[derive(Serialize)]
        struct NoExp {
            iss: String,
            sub: String,
        }
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoExp {
                iss: c.iss,
                sub: c.sub,
            },
            &EncodingKey::from_secret("s".repeat(32).as_bytes()),
        )
        .unwrap();
        assert!(verify(&t, &keys()).is_err());
    }

    #[test]
    fn parses_livekit_camel_case_grants() {
        let json = r#"{"canPublish":false,"canPublishSources":["camera","microphone"],"roomJoin":true,"room":"r","hidden":true,"canUpdateOwnMetadata":true}"#;
        let g: VideoGrant = serde_json::from_str(json).unwrap();
        let p = g.to_permission();
        assert!(!p.can_publish && !p.can_publish_data && p.hidden && p.can_update_metadata);
        assert_eq!(p.can_publish_sources, vec![1, 2]);
    }
}
