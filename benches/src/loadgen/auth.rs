//! What goes into each WHIP/WHEP request's `Authorization: Bearer`: one fixed token (any
//! server), or a LiveKit access token minted per peer (our server, LiveKit), so each peer
//! joins with its own identity and only the grant it needs.

use serde::Serialize;

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No Authorization header.
    None,
    /// The same bearer token on every request.
    Bearer(String),
    /// A LiveKit HS256 token per peer.
    LiveKit {
        /// API key (the token's issuer).
        key: String,
        /// API secret.
        secret: String,
        /// Room every peer joins.
        room: String,
    },
}

/// What a peer does, hence the grant it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// WHIP: `canPublish`.
    Publish,
    /// WHEP: `canSubscribe`.
    Subscribe,
}

/// Token lifetime.
pub const TOKEN_TTL_SECS: u64 = 3600;

/// LiveKit's `video` grant, the fields we set (camelCase as LiveKit's JSON).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    /// Join a room.
    pub room_join: bool,
    /// Which room.
    pub room: String,
    /// Publish tracks.
    pub can_publish: bool,
    /// Subscribe to tracks.
    pub can_subscribe: bool,
}

/// The JWT claims of a LiveKit access token.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// API key.
    pub iss: String,
    /// Participant identity.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// The grant.
    pub video: VideoGrant,
}

/// Building a token failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign token: {0}")]
pub struct AuthError(#[from] jsonwebtoken::errors::Error);

/// The claims of `identity`'s token at Unix time `now`.
pub fn claims(key: &str, room: &str, identity: &str, role: Role, now: u64) -> Claims {
    Claims {
        iss: key.into(),
        sub: identity.into(),
        name: identity.into(),
        // A little slack for a server whose clock is behind ours.
        nbf: now.saturating_sub(10),
        exp: now + TOKEN_TTL_SECS,
        video: VideoGrant {
            room_join: true,
            room: room.into(),
            can_publish: role == Role::Publish,
            can_subscribe: role == Role::Subscribe,
        },
    }
}

impl Auth {
    /// The bearer token for `identity` acting as `role`, if any.
    pub fn token(&self, identity: &str, role: Role) -> Result<Option<String>, AuthError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(t.clone())),
            Auth::LiveKit { key, secret, room } => {
                let c = claims(
                    key,
                    room,
                    identity,
                    role,
                    jsonwebtoken::get_current_timestamp(),
                );
                let t = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &c,
                    &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                )?;
                Ok(Some(t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_follow_the_role() {
        let p = claims("k", "bench", "pub0", Role::Publish, 1_000_000);
        assert_eq!(p.iss, "k");
        assert_eq!(p.sub, "pub0");
        assert_eq!(p.exp, 1_000_000 + 3600);
        assert!(p.nbf <= 1_000_000);
        assert!(p.video.room_join && p.video.can_publish && !p.video.can_subscribe);
        assert_eq!(p.video.room, "bench");
        let s = claims("k", "bench", "sub3", Role::Subscribe, 1_000_000);
        assert!(s.video.can_subscribe && !s.video.can_publish);
        let json = serde_json::to_value(&s).expect("serialises");
        assert_eq!(json["video"]["roomJoin"], true);
        assert_eq!(json["video"]["canSubscribe"], true);
        assert_eq!(json["video"]["canPublish"], false);
    }

    #[test]
    fn our_server_accepts_the_minted_token() {
        use std::collections::HashMap;
        let auth = Auth::LiveKit {
            key: "devkey".into(),
            secret: "secret".into(),
            room: "bench".into(),
        };
        let t = auth
            .token("sub17", Role::Subscribe)
            .expect("signs")
            .expect("a token");
        let keys = signaling::token::KeyProvider::new(HashMap::from([(
            "devkey".to_owned(),
            "secret".to_owned(),
        )]));
        let c = signaling::token::verify(&t, &keys).expect("our verifier accepts it");
        assert_eq!(c.identity(), "sub17");
        let g = c.video();
        assert!(g.room_join);
        assert_eq!(g.room, "bench");
        assert_eq!(g.can_subscribe, Some(true));
        assert_eq!(g.can_publish, Some(false));
        let wrong = signaling::token::KeyProvider::new(HashMap::from([(
            "devkey".to_owned(),
            "other".to_owned(),
        )]));
        assert!(signaling::token::verify(&t, &wrong).is_err());
    }

    #[test]
    fn bearer_and_none() {
        assert_eq!(
            Auth::Bearer("t0k".into())
                .token("x", Role::Publish)
                .expect("ok"),
            Some("t0k".into())
        );
        assert_eq!(Auth::None.token("x", Role::Publish).expect("ok"), None);
    }
}
