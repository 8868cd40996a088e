//! What every listener and allocation task of one server reads: settings, credentials, the
//! nonce key, the peer filter, the crypto provider, counters and the allocation registry.
//!
//! Everything here is immutable after start except the atomics in [`Counters`] and the
//! registry (touched on allocate/expire only), so it is shared as one `Arc` without locks.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rtc_stun::crypto::{RTCCrypto, RTCCryptoProvider};

use crate::config::TurnConfig;
use crate::credentials::CredentialStore;
use crate::error::TurnError;
use crate::nonce::NonceIssuer;
use crate::peer_policy::PeerPolicy;
use crate::port_pool::PortPool;
use crate::registry::Registry;
use crate::stats::Counters;

/// Default allocation lifetime (RFC 8656 section 3.8).
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Longest allocation lifetime granted.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// Permission lifetime (RFC 8656 section 9).
pub(crate) const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime (RFC 8656 section 12).
pub(crate) const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// Shared state of one server.
pub(crate) struct Shared {
    pub realm: String,
    pub relay_ip: IpAddr,
    pub advertised_ip: IpAddr,
    pub user_limit: usize,
    pub strict_channels: bool,
    pub credentials: CredentialStore,
    pub nonces: NonceIssuer,
    pub peers: PeerPolicy,
    pub counters: Counters,
    pub registry: Arc<Registry>,
    provider: Arc<dyn RTCCryptoProvider>,
}

impl Shared {
    pub(crate) fn new(config: &TurnConfig) -> Result<Arc<Self>, TurnError> {
        let provider =
            rtc_stun::crypto::default_provider().map_err(|e| TurnError::Crypto(e.to_string()))?;
        Ok(Arc::new(Self {
            realm: config.realm.clone(),
            relay_ip: config.relay_ip,
            advertised_ip: config.advertised_relay_ip(),
            user_limit: config.per_user_relay_allocation_limit,
            strict_channels: config.strict_channel_numbers,
            credentials: CredentialStore::new(
                config.auth_secret.clone(),
                config.static_users.clone(),
            ),
            nonces: NonceIssuer::new(config.nonce_lifetime)?,
            peers: PeerPolicy::new(
                config.deny_peer_cidrs.clone(),
                config.allow_peer_cidrs.clone(),
                &config.always_allowed_peers,
            ),
            counters: Counters::default(),
            registry: Registry::new(PortPool::new(
                config.relay_ip,
                config.relay_range_start,
                config.relay_range_end,
            )),
            provider,
        }))
    }

    /// MD5 / HMAC-SHA1 of the STUN integrity mechanism.
    pub(crate) fn crypto(&self) -> &dyn RTCCrypto {
        self.provider.crypto()
    }
}
