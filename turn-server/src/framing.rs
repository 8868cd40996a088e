//! Splitting a TCP/TLS byte stream into TURN messages (RFC 8656 section 12.5).
//!
//! Over a stream, STUN messages and ChannelData messages follow each other without any outer
//! framing; each one's length is in its own header. The first two bits tell them apart (00:
//! STUN, 01: ChannelData). Anything else means the stream is not TURN (or lost sync), and as
//! there is no way to find the next message boundary the connection is closed.

use rtc_stun::message::{MAGIC_COOKIE, MESSAGE_HEADER_SIZE};

use crate::channel_data;

/// The stream does not carry TURN.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NotTurn;

/// The length of the first message in `buf`: `Ok(None)` while more bytes are needed.
/// ChannelData lengths include the padding to 4 bytes.
pub(crate) fn next_frame_len(buf: &[u8]) -> Result<Option<usize>, NotTurn> {
    let Some(first) = buf.first() else {
        return Ok(None);
    };
    match first >> 6 {
        0b00 => {
            if buf.len() >= 8 {
                let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                if cookie != MAGIC_COOKIE {
                    return Err(NotTurn);
                }
            }
            let Some(len) = buf.get(2..4) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            if len % 4 != 0 {
                return Err(NotTurn);
            }
            let total = MESSAGE_HEADER_SIZE + len;
            Ok((buf.len() >= total).then_some(total))
        }
        0b01 => {
            let Some(len) = buf.get(2..4) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let total = channel_data::padded(channel_data::HEADER_LEN + len);
            Ok((buf.len() >= total).then_some(total))
        }
        _ => Err(NotTurn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_and_channel_data() {
        let mut stun = vec![0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42];
        stun.extend_from_slice(&[0; 16]);
        assert_eq!(next_frame_len(&stun[..3]), Ok(None));
        assert_eq!(next_frame_len(&stun[..23]), Ok(None));
        assert_eq!(next_frame_len(&stun), Ok(Some(24)));
        let cd = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 0xff];
        assert_eq!(next_frame_len(&cd[..8]), Ok(None));
        assert_eq!(next_frame_len(&cd), Ok(Some(12)));
    }

    #[test]
    fn garbage() {
        assert_eq!(next_frame_len(&[0x80]), Err(NotTurn));
        assert_eq!(
            next_frame_len(&[0, 1, 0, 4, 1, 2, 3, 4]),
            Err(NotTurn),
            "bad cookie"
        );
        assert_eq!(
            next_frame_len(&[0, 1, 0, 3, 0x21, 0x12, 0xA4, 0x42]),
            Err(NotTurn),
            "unaligned length"
        );
        assert_eq!(next_frame_len(&[]), Ok(None));
    }
}
