//! Who may allocate: TURN REST credentials and static long-term users.
//!
//! REST credentials (draft-uberti-behave-turn-rest, coturn's `--use-auth-secret`) let the
//! signalling server hand out passwords without telling the TURN server: the username is
//! `<unix-expiry>:<id>` and the password is `base64(HMAC-SHA1(secret, username))`, so the TURN
//! server recomputes the password from the username alone and refuses expired usernames.
//! Static users are plain long-term credentials for tools and tests.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;

/// REST credentials for `id`, valid until `now_unix + ttl`: `(username, password)` with
/// username `<expiry>:<id>` and password `base64(HMAC-SHA1(secret, username))`.
pub fn rest_credentials(secret: &str, id: &str, ttl: Duration, now_unix: u64) -> (String, String) {
    let expiry = now_unix.saturating_add(ttl.as_secs());
    let username = format!("{expiry}:{id}");
    let password = rest_password(secret, &username);
    (username, password)
}

/// `base64(HMAC-SHA1(secret, username))`.
pub(crate) fn rest_password(secret: &str, username: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    BASE64.encode(hmac::sign(&key, username.as_bytes()).as_ref())
}

/// The outcome of looking a username up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Known user; the long-term password.
    Password(String),
    /// A REST username whose expiry is in the past.
    Expired,
    /// Neither a static user nor a REST username.
    Unknown,
}

/// The server's view of valid credentials.
#[derive(Debug)]
pub(crate) struct CredentialStore {
    secret: Option<String>,
    users: HashMap<String, String>,
}

impl CredentialStore {
    pub(crate) fn new(secret: Option<String>, users: HashMap<String, String>) -> Self {
        let secret = secret.filter(|s| !s.is_empty());
        Self { secret, users }
    }

    /// The password of `username` at `now_unix`. Static users win over REST usernames.
    pub(crate) fn lookup(&self, username: &str, now_unix: u64) -> Lookup {
        if let Some(p) = self.users.get(username) {
            return Lookup::Password(p.clone());
        }
        let Some(secret) = &self.secret else {
            return Lookup::Unknown;
        };
        // coturn accepts a bare timestamp as well as `<timestamp>:<id>`.
        let stamp = username.split(':').next().unwrap_or_default();
        let Ok(expiry) = stamp.parse::<u64>() else {
            return Lookup::Unknown;
        };
        if expiry < now_unix {
            return Lookup::Expired;
        }
        Lookup::Password(rest_password(secret, username))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_username_and_password() {
        let (u, p) = rest_credentials("secret", "PA_x", Duration::from_secs(60), 1000);
        assert_eq!(u, "1060:PA_x");
        // base64 of a 20-byte HMAC-SHA1.
        assert_eq!(p.len(), 28);
        let store = CredentialStore::new(Some("secret".into()), HashMap::new());
        assert_eq!(store.lookup(&u, 1000), Lookup::Password(p.clone()));
        assert_eq!(store.lookup(&u, 1060), Lookup::Password(p));
        assert_eq!(store.lookup(&u, 1061), Lookup::Expired);
        assert_eq!(store.lookup("alice", 0), Lookup::Unknown);
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA1("key", "The quick brown fox jumps over the lazy dog")
        // = de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (the widely published example).
        let p = rest_password("key", "The quick brown fox jumps over the lazy dog");
        assert_eq!(p, "3nybhbi3iqa8ino29wqQcBydtNk=");
    }

    #[test]
    fn static_users_win() {
        let users = HashMap::from([("9999999999:bob".to_owned(), "pw".to_owned())]);
        let store = CredentialStore::new(Some("s".into()), users);
        assert_eq!(
            store.lookup("9999999999:bob", 0),
            Lookup::Password("pw".into())
        );
        let none = CredentialStore::new(None, HashMap::new());
        assert_eq!(none.lookup("9999999999:bob", 0), Lookup::Unknown);
    }
}
