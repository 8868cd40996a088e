//! ChannelData messages (RFC 8656 section 12.4): the 4-byte-header fast path of TURN.
//!
//! `rtc_turn::proto::chandata::ChannelData` decodes into an owned `Vec` and encodes through
//! another one, i.e. two copies per relayed packet. This module only reads and writes the
//! 4-byte header around a borrowed payload, and keeps the channel-number rules
//! (`rtc_turn::proto::channum`) in one place.

use rtc_turn::proto::channum::{MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER};

/// Bytes of the ChannelData header (channel number, length).
pub(crate) const HEADER_LEN: usize = 4;

/// Last channel number RFC 8656 allows (RFC 5766 allowed up to 0x7FFF).
pub(crate) const MAX_CHANNEL_NUMBER_RFC8656: u16 = 0x4FFF;

/// A ChannelData message borrowed from a datagram or stream frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChannelFrame<'a> {
    pub number: u16,
    pub payload: &'a [u8],
}

/// Parses a ChannelData message. Trailing bytes after the announced length (padding over TCP,
/// or a client that pads over UDP) are ignored; a shorter buffer than announced is refused.
pub(crate) fn parse(buf: &[u8]) -> Option<ChannelFrame<'_>> {
    let header = buf.get(..HEADER_LEN)?;
    let number = u16::from_be_bytes([header[0], header[1]]);
    if !(MIN_CHANNEL_NUMBER..=MAX_CHANNEL_NUMBER).contains(&number) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let payload = buf.get(HEADER_LEN..HEADER_LEN + len)?;
    Some(ChannelFrame { number, payload })
}

/// Encodes a ChannelData message. `pad` rounds the message up to a multiple of 4 bytes, which
/// TURN over TCP/TLS requires (RFC 8656 section 12.5); over UDP the padding is left out.
/// Returns `None` when the payload does not fit the 16-bit length.
pub(crate) fn encode(number: u16, payload: &[u8], pad: bool) -> Option<Vec<u8>> {
    let len = u16::try_from(payload.len()).ok()?;
    let total = if pad {
        padded(HEADER_LEN + payload.len())
    } else {
        HEADER_LEN + payload.len()
    };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(total, 0);
    Some(out)
}

/// `n` rounded up to a multiple of 4.
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Whether `number` may be bound by ChannelBind.
pub(crate) fn bindable(number: u16, strict: bool) -> bool {
    let max = if strict {
        MAX_CHANNEL_NUMBER_RFC8656
    } else {
        MAX_CHANNEL_NUMBER
    };
    (MIN_CHANNEL_NUMBER..=max).contains(&number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_padding() {
        let m = encode(0x4001, b"hello", true).unwrap();
        assert_eq!(m.len(), 12);
        assert_eq!(
            parse(&m),
            Some(ChannelFrame {
                number: 0x4001,
                payload: b"hello"
            })
        );
        let u = encode(0x4001, b"hello", false).unwrap();
        assert_eq!(u.len(), 9);
        assert_eq!(parse(&u).unwrap().payload, b"hello");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse(&[0x40, 0x00, 0x00]), None);
        assert_eq!(parse(&[0x40, 0x00, 0x00, 0x05, 1, 2]), None);
        assert_eq!(parse(&[0x3f, 0xff, 0x00, 0x00]), None);
        assert_eq!(parse(&[0x80, 0x00, 0x00, 0x00]), None);
        assert!(parse(&[0x40, 0x00, 0x00, 0x00]).is_some());
        assert!(encode(0x4000, &vec![0; 70_000], false).is_none());
    }

    #[test]
    fn bind_ranges() {
        assert!(bindable(0x4000, true));
        assert!(bindable(0x4FFF, true));
        assert!(!bindable(0x5000, true));
        assert!(bindable(0x7FFF, false));
        assert!(!bindable(0x8000, false));
        assert!(!bindable(0x3FFF, false));
    }
}
