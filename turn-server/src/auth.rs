//! The long-term credential mechanism (RFC 8489 section 9.2) for TURN requests.
//!
//! Every TURN request is authenticated on its own, in the order the RFC gives: no
//! MESSAGE-INTEGRITY gets a 401 challenge with REALM and NONCE; integrity without USERNAME,
//! REALM or NONCE is a 400; a nonce we did not issue recently is a 438 with a fresh one; an
//! unknown or expired user or a wrong password is a 401. Credentials are looked up again on
//! every request, so a REST username stops working at its expiry even inside an allocation.

use std::time::{SystemTime, UNIX_EPOCH};

use rtc_stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use rtc_stun::error_code::{CODE_BAD_REQUEST, CODE_STALE_NONCE, CODE_UNAUTHORIZED};
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::Message;

use crate::credentials::Lookup;
use crate::shared::Shared;
use crate::wire::{self, ReplyTo};

/// An authenticated request's user and the key its response is signed with.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub username: String,
    /// MD5(username:realm:password).
    pub key: Vec<u8>,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No credentials yet: 401 with REALM and NONCE.
    Challenge,
    /// Credentials incomplete: 400.
    BadRequest,
    /// Nonce unknown or too old: 438 with a new one.
    StaleNonce,
    /// Unknown or expired user, wrong realm or password: 401.
    Unauthorized,
}

/// Authenticates `m` (which is only borrowed mutably because the integrity check rewrites the
/// header length in place and restores it).
pub(crate) fn authenticate(shared: &Shared, m: &mut Message) -> Result<Identity, Rejection> {
    if !m.contains(ATTR_MESSAGE_INTEGRITY) {
        return Err(Rejection::Challenge);
    }
    let (Some(username), Some(realm), Some(nonce)) = (
        wire::text(m, ATTR_USERNAME),
        wire::text(m, ATTR_REALM),
        wire::text(m, ATTR_NONCE),
    ) else {
        return Err(Rejection::BadRequest);
    };
    if !shared.nonces.is_valid(&nonce) {
        return Err(Rejection::StaleNonce);
    }
    let unauthorized = || {
        shared.counters.auth_failed();
        Rejection::Unauthorized
    };
    if realm != shared.realm {
        return Err(unauthorized());
    }
    let password = match shared.credentials.lookup(&username, now_unix()) {
        Lookup::Password(p) => p,
        Lookup::Expired | Lookup::Unknown => return Err(unauthorized()),
    };
    let key = MessageIntegrity::long_term_integrity_key(
        username.clone(),
        realm,
        password,
        shared.crypto(),
    )
    .map_err(|_| unauthorized())?;
    MessageIntegrity::check(m, &key, shared.crypto()).map_err(|_| unauthorized())?;
    Ok(Identity { username, key })
}

/// The error response for `rejection` (never integrity-protected: there is no agreed key).
pub(crate) fn rejection_response(
    shared: &Shared,
    reply: &ReplyTo,
    rejection: Rejection,
) -> Option<Vec<u8>> {
    let challenge = || {
        vec![
            wire::text_attr(ATTR_REALM, &shared.realm),
            wire::text_attr(ATTR_NONCE, &shared.nonces.issue()),
        ]
    };
    match rejection {
        Rejection::Challenge | Rejection::Unauthorized => {
            reply.error(CODE_UNAUTHORIZED, challenge(), None, shared.crypto())
        }
        Rejection::StaleNonce => reply.error(CODE_STALE_NONCE, challenge(), None, shared.crypto()),
        Rejection::BadRequest => reply.error(CODE_BAD_REQUEST, vec![], None, shared.crypto()),
    }
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
