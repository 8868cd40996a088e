//! The `Authorization` token of a webhook request.
//!
//! LiveKit receivers (`WebhookReceiver` in every server SDK) verify an HS256 JWT issued by
//! the webhook API key and compare its `sha256` claim with their own hash of the raw body, so
//! this is what proves both who sent a body and that it was not altered.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Lifetime of a webhook token, as in LiveKit (5 minutes).
pub const TOKEN_TTL_SECS: u64 = 300;

#[derive(Serialize)]
struct WebhookClaims<'a> {
    iss: &'a str,
    nbf: u64,
    exp: u64,
    sha256: String,
}

/// Standard (padded) base64 of SHA-256 of `body`'s bytes.
pub fn body_sha256(body: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()))
}

/// The JWT for `body`: HS256 with `secret`, `iss` = `api_key`, `nbf` = `now_unix`,
/// `exp` = `now_unix` + 300, no `sub`, and `sha256` = [`body_sha256`]. Sent as the raw
/// `Authorization` header value (no `Bearer `).
pub fn sign(body: &str, api_key: &str, secret: &str, now_unix: u64) -> String {
    let claims = WebhookClaims {
        iss: api_key,
        nbf: now_unix,
        exp: now_unix + TOKEN_TTL_SECS,
        sha256: body_sha256(body),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    // Invariant: HS256 signing of a serialisable struct with the rust_crypto backend cannot fail.
    .expect("HS256 signing failed")
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use livekit_api::access_token::TokenVerifier;
    use livekit_api::webhooks::WebhookReceiver;

    use super::*;

    const KEY: &str = "APIwebhook";
    const SECRET: &str = "a-secret-of-at-least-32-characters!!";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn sha256_is_padded_standard_base64() {
        // Reference values from `printf '...' | openssl dgst -sha256 -binary | base64`:
        // '+', '/' and '=' padding, not the URL-safe alphabet.
        assert_eq!(
            body_sha256(""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            body_sha256(r#"{"a":1}"#),
            "AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI="
        );
    }

    #[test]
    fn claims_are_livekits() {
        let token = sign(r#"{"event":"room_started"}"#, KEY, SECRET, 1_700_000_000);
        let mut parts = token.split('.');
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": KEY,
                "nbf": 1_700_000_000u64,
                "exp": 1_700_000_300u64,
                "sha256": body_sha256(r#"{"event":"room_started"}"#),
            })
        );
    }

    #[test]
    fn livekit_receiver_accepts_it_and_rejects_tampering() {
        let body = r#"{"event":"room_started","room":{"name":"r"},"id":"EV_x","createdAt":"5"}"#;
        let token = sign(body, KEY, SECRET, now());
        let receiver = WebhookReceiver::new(TokenVerifier::with_api_key(KEY, SECRET));
        let ev = receiver.receive(body, &token).unwrap();
        assert_eq!(ev.event, "room_started");
        assert_eq!(ev.created_at, 5);

        let tampered = body.replace("\"r\"", "\"s\"");
        assert!(receiver.receive(&tampered, &token).is_err());
        let wrong_secret = WebhookReceiver::new(TokenVerifier::with_api_key(KEY, "other-secret"));
        assert!(wrong_secret.receive(body, &token).is_err());
        let wrong_key = WebhookReceiver::new(TokenVerifier::with_api_key("APIother", SECRET));
        assert!(wrong_key.receive(body, &token).is_err());
        // An expired token (signed 10 minutes ago, beyond the verifier's leeway) is refused.
        let old = sign(body, KEY, SECRET, now() - 600);
        assert!(receiver.receive(body, &old).is_err());
    }
}
