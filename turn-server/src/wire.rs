//! STUN messages in and out, on top of `rtc-stun`: decoding untrusted bytes without letting
//! the codec see anything it could trip over, and building responses that carry
//! MESSAGE-INTEGRITY and FINGERPRINT in the right order.
//!
//! `rtc_stun::message::Message::decode` trusts the header length against the buffer it is
//! given, and the integrity / fingerprint checks compute offsets from `raw`; so the raw bytes
//! handed to the codec are cut to exactly the length the header announces, after checking the
//! header ourselves.

use std::net::{IpAddr, SocketAddr};

use rtc_stun::attributes::{
    ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, AttrType,
};
use rtc_stun::crypto::RTCCrypto;
use rtc_stun::error_code::{ERROR_REASONS, ErrorCode, ErrorCodeAttribute};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, Getter, MAGIC_COOKIE, MESSAGE_HEADER_SIZE,
    Message, MessageType, Method, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use rtc_turn::proto::peeraddr::PeerAddress;

/// Why bytes that looked like STUN were not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Header, length or attributes do not decode.
    Malformed,
    /// FINGERPRINT present but wrong.
    BadFingerprint,
}

/// Decodes one STUN message from a datagram or stream frame. Bytes after the announced
/// length are ignored. A FINGERPRINT, when present, must match.
pub(crate) fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    let header = bytes
        .get(..MESSAGE_HEADER_SIZE)
        .ok_or(DecodeError::Malformed)?;
    if header[0] & 0xC0 != 0 {
        return Err(DecodeError::Malformed);
    }
    let cookie = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if cookie != MAGIC_COOKIE || len % 4 != 0 {
        return Err(DecodeError::Malformed);
    }
    let raw = bytes
        .get(..MESSAGE_HEADER_SIZE + len)
        .ok_or(DecodeError::Malformed)?;
    let mut m = Message::new();
    m.raw.clear();
    m.raw.extend_from_slice(raw);
    m.decode().map_err(|_| DecodeError::Malformed)?;
    if m.contains(ATTR_FINGERPRINT) && FINGERPRINT.check(&m).is_err() {
        return Err(DecodeError::BadFingerprint);
    }
    Ok(m)
}

/// A text attribute (USERNAME, REALM, NONCE), `None` when absent or not UTF-8.
pub(crate) fn text(m: &Message, attr: AttrType) -> Option<String> {
    TextAttribute::get_from_as(m, attr).ok().map(|t| t.text)
}

/// Every XOR-PEER-ADDRESS of a request (CreatePermission may carry several).
/// `None` when any of them does not decode.
pub(crate) fn peer_addresses(m: &Message) -> Option<Vec<SocketAddr>> {
    let attr = rtc_stun::attributes::ATTR_XOR_PEER_ADDRESS;
    let mut out = Vec::new();
    for raw in m.attributes.0.iter().filter(|a| a.typ == attr) {
        // The codec reads the first attribute of a type; give it a message holding just this
        // one, under the same transaction id (the XOR key).
        let mut one = Message::new();
        one.transaction_id = m.transaction_id;
        one.add(attr, &raw.value);
        let mut p = PeerAddress::default();
        p.get_from(&one).ok()?;
        out.push(SocketAddr::new(p.ip, p.port));
    }
    Some(out)
}

/// The first XOR-PEER-ADDRESS.
pub(crate) fn peer_address(m: &Message) -> Option<SocketAddr> {
    let mut p = PeerAddress::default();
    p.get_from(m).ok()?;
    Some(SocketAddr::new(p.ip, p.port))
}

/// Comprehension-required attributes (type < 0x8000) of `m` that are not in `known`.
pub(crate) fn unknown_required(m: &Message, known: &[AttrType]) -> Vec<AttrType> {
    let mut out: Vec<AttrType> = Vec::new();
    for a in &m.attributes.0 {
        if a.typ.required() && !known.contains(&a.typ) && !out.contains(&a.typ) {
            out.push(a.typ);
        }
    }
    out
}

/// Attributes of the authentication mechanism, known to every request handler. The SHA-256
/// variants (RFC 8489) are tolerated but not used: our 401 never offers them.
pub(crate) const AUTH_ATTRS: [AttrType; 7] = [
    ATTR_USERNAME,
    ATTR_MESSAGE_INTEGRITY,
    ATTR_REALM,
    ATTR_NONCE,
    rtc_stun::attributes::ATTR_MESSAGE_INTEGRITY_SHA256,
    rtc_stun::attributes::ATTR_PASSWORD_ALGORITHM,
    rtc_stun::attributes::ATTR_USER_HASH,
];

/// An attribute to put in a response.
pub(crate) type Attr<'a> = Box<dyn Setter + 'a>;

/// What a response needs from its request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyTo {
    method: Method,
    txid: TransactionId,
    fingerprint: bool,
}

impl ReplyTo {
    /// Responses echo the method and transaction id, and add a FINGERPRINT when the request
    /// had one.
    pub(crate) fn of(m: &Message) -> Self {
        Self {
            method: m.typ.method,
            txid: m.transaction_id,
            fingerprint: m.contains(ATTR_FINGERPRINT),
        }
    }

    pub(crate) fn transaction_id(&self) -> TransactionId {
        self.txid
    }

    /// A success response; MESSAGE-INTEGRITY with `key` when the request was authenticated.
    pub(crate) fn success(
        &self,
        attrs: Vec<Attr<'_>>,
        key: Option<&[u8]>,
        crypto: &dyn RTCCrypto,
    ) -> Option<Vec<u8>> {
        self.build(CLASS_SUCCESS_RESPONSE, None, attrs, key, crypto)
    }

    /// An error response with the standard reason phrase of `code`.
    pub(crate) fn error(
        &self,
        code: ErrorCode,
        attrs: Vec<Attr<'_>>,
        key: Option<&[u8]>,
        crypto: &dyn RTCCrypto,
    ) -> Option<Vec<u8>> {
        self.build(CLASS_ERROR_RESPONSE, Some(code), attrs, key, crypto)
    }

    fn build(
        &self,
        class: rtc_stun::message::MessageClass,
        code: Option<ErrorCode>,
        attrs: Vec<Attr<'_>>,
        key: Option<&[u8]>,
        crypto: &dyn RTCCrypto,
    ) -> Option<Vec<u8>> {
        let mut setters: Vec<Attr<'_>> = Vec::with_capacity(attrs.len() + 5);
        setters.push(Box::new(MessageType::new(self.method, class)));
        setters.push(Box::new(self.txid));
        if let Some(code) = code {
            let reason = ERROR_REASONS.get(&code).cloned().unwrap_or_default();
            setters.push(Box::new(ErrorCodeAttribute { code, reason }));
        }
        setters.extend(attrs);
        if let Some(key) = key {
            setters.push(Box::new(MessageIntegrity::new_raw_integrity_with_provider(
                key.to_vec(),
                crypto,
            )));
        }
        if self.fingerprint {
            setters.push(Box::new(FINGERPRINT));
        }
        let mut m = Message::new();
        m.build(&setters).ok()?;
        Some(m.raw)
    }
}

/// XOR-MAPPED-ADDRESS of `addr`.
pub(crate) fn xor_mapped(addr: SocketAddr) -> Attr<'static> {
    Box::new(XorMappedAddress {
        ip: addr.ip(),
        port: addr.port(),
    })
}

/// A text attribute (REALM, NONCE) for a response.
pub(crate) fn text_attr(attr: AttrType, value: &str) -> Attr<'static> {
    Box::new(TextAttribute::new(attr, value.to_owned()))
}

/// Whether `ip` and the relay are of the same address family.
pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::message::BINDING_REQUEST;

    #[test]
    fn decode_cuts_to_header_length() {
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST) as Attr<'_>,
            Box::new(TransactionId::new()),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        let mut bytes = m.raw.clone();
        bytes.extend_from_slice(b"trailing");
        let d = decode(&bytes).unwrap();
        assert_eq!(d.raw.len(), m.raw.len());
        let mut bad = m.raw.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(decode(&bad).unwrap_err(), DecodeError::BadFingerprint);
        assert_eq!(
            decode(&m.raw[..m.raw.len() - 4]).unwrap_err(),
            DecodeError::Malformed
        );
    }
}
