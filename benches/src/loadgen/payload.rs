//! Media payloads that look like VP8 and Opus to an SFU and carry a measurement probe.
//!
//! VP8 packets start with a real payload descriptor (RFC 7741 §4.2: X=1, a 15-bit
//! PictureID as Chrome sends) and, on the first packet of a frame, a VP8 payload header
//! whose P bit is 0 on keyframes (plus the keyframe start code and a 1280x720 size), so
//! keyframe detection and picture-id munging see what they see from a browser. Opus
//! packets start with a TOC byte. Every payload *ends* with a fixed 32-byte probe (magic,
//! publisher, kind, counter, send time), read back by subscribers without parsing the
//! codec part.

/// Which stream of a publisher a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// VP8-shaped video.
    Video = 0,
    /// Opus-shaped audio.
    Audio = 1,
}

impl Kind {
    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What every generated payload carries at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// Publisher index (the `{stream}` number).
    pub publisher: u32,
    /// Video or audio.
    pub kind: Kind,
    /// Per publisher and kind, 0, 1, 2, ... in send order.
    pub counter: u64,
    /// Send time, nanoseconds on the generator's clock.
    pub sent_ns: u64,
}

/// Bytes the probe takes at the end of a payload.
pub const PROBE_LEN: usize = 32;
const MAGIC: [u8; 8] = *b"SWYDLG01";

impl Probe {
    /// Appends the probe's 32 bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.publisher.to_be_bytes());
        out.extend_from_slice(&(self.kind as u32).to_be_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads the probe at the end of `payload`, if there is one.
    pub fn read(payload: &[u8]) -> Option<Probe> {
        let start = payload.len().checked_sub(PROBE_LEN)?;
        let p = &payload[start..];
        if p[..8] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes(p[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().expect("8 bytes"));
        let kind = match u32_at(12) {
            0 => Kind::Video,
            1 => Kind::Audio,
            _ => return None,
        };
        Some(Probe {
            publisher: u32_at(8),
            kind,
            counter: u64_at(16),
            sent_ns: u64_at(24),
        })
    }
}

/// Where a VP8 packet sits in its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Packet {
    /// First packet of the frame (S bit, payload header present).
    pub first: bool,
    /// The frame is a keyframe.
    pub keyframe: bool,
    /// 15-bit picture id of the frame.
    pub picture_id: u16,
}

/// A VP8-shaped payload of exactly `size` bytes (at least the headers plus the probe).
pub fn vp8(size: usize, pkt: Vp8Packet, probe: &Probe) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(PROBE_LEN + 16));
    // Payload descriptor: X=1, S=first, PID=0; then I=1; then M=1 + 15-bit PictureID.
    out.push(0x80 | if pkt.first { 0x10 } else { 0x00 });
    out.push(0x80);
    let pid = pkt.picture_id & 0x7fff;
    out.push(0x80 | (pid >> 8) as u8);
    out.push(pid as u8);
    if pkt.first {
        // Payload header (RFC 6386 §9.1 frame tag): P (bit 0) = 0 for keyframes,
        // version 0, show_frame = 1, first-partition size left 0 (nobody decodes it).
        let p_bit = if pkt.keyframe { 0x00 } else { 0x01 };
        out.extend_from_slice(&[p_bit | 0x10, 0x00, 0x00]);
        if pkt.keyframe {
            out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            out.extend_from_slice(&1280u16.to_le_bytes());
            out.extend_from_slice(&720u16.to_le_bytes());
        }
    }
    pad_and_probe(out, size, probe)
}

/// An Opus-shaped payload of exactly `size` bytes: TOC 0xfc (CELT fullband 20 ms, one
/// frame), filler, probe.
pub fn opus(size: usize, probe: &Probe) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(PROBE_LEN + 1));
    out.push(0xfc);
    pad_and_probe(out, size, probe)
}

fn pad_and_probe(mut out: Vec<u8>, size: usize, probe: &Probe) -> Vec<u8> {
    let fill = size.saturating_sub(out.len() + PROBE_LEN);
    out.resize(out.len() + fill, 0x5a);
    probe.write(&mut out);
    out
}

/// True if a VP8 payload starts a keyframe (RFC 7741: descriptor, then P bit = 0 on the
/// first packet of partition 0). Used by the tests to check what we generate.
pub fn vp8_is_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else { return false };
        i = 2;
        if x & 0x80 != 0 {
            i += if p.get(2).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        i += usize::from(x & 0x40 != 0) + usize::from(x & 0x30 != 0);
    }
    b0 & 0x10 != 0 && b0 & 0x07 == 0 && p.get(i).is_some_and(|h| h & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> Probe {
        Probe {
            publisher: 7,
            kind: Kind::Video,
            counter: 123_456_789_012,
            sent_ns: 9_876_543_210,
        }
    }

    #[test]
    fn probe_round_trips_at_the_end_of_any_payload() {
        let p = probe();
        for size in [0, 40, 100, 1100] {
            let v = vp8(
                size,
                Vp8Packet {
                    first: true,
                    keyframe: true,
                    picture_id: 300,
                },
                &p,
            );
            assert_eq!(v.len(), size.max(4 + 3 + 7 + PROBE_LEN));
            assert_eq!(Probe::read(&v), Some(p));
        }
        let a = Probe {
            kind: Kind::Audio,
            ..p
        };
        let o = opus(100, &a);
        assert_eq!(o.len(), 100);
        assert_eq!(o[0], 0xfc);
        assert_eq!(Probe::read(&o), Some(a));
    }

    #[test]
    fn foreign_payloads_have_no_probe() {
        assert_eq!(Probe::read(&[]), None);
        assert_eq!(Probe::read(&[0u8; 64]), None);
        let mut v = opus(100, &probe());
        let n = v.len();
        v[n - PROBE_LEN] ^= 1;
        assert_eq!(Probe::read(&v), None);
    }

    #[test]
    fn vp8_keyframe_marks() {
        let p = probe();
        let pkt = |first, keyframe| {
            vp8(
                1100,
                Vp8Packet {
                    first,
                    keyframe,
                    picture_id: 0x7fff,
                },
                &p,
            )
        };
        let key = pkt(true, true);
        assert!(vp8_is_keyframe(&key));
        assert_eq!(&key[..4], &[0x90, 0x80, 0xff, 0xff]);
        assert_eq!(key[4] & 0x01, 0, "P bit 0 on keyframes");
        assert_eq!(&key[7..10], &[0x9d, 0x01, 0x2a]);
        let delta = pkt(true, false);
        assert!(!vp8_is_keyframe(&delta));
        assert_eq!(delta[4] & 0x01, 1);
        // Later packets of a keyframe are not "a keyframe start".
        assert!(!vp8_is_keyframe(&pkt(false, true)));
        assert_eq!(pkt(false, true)[0], 0x80);
    }

    #[test]
    fn sfu_core_sees_our_keyframes() {
        use sfu_core::codec::{VideoCodec, is_keyframe};
        let p = probe();
        for (first, keyframe) in [(true, true), (true, false), (false, true), (false, false)] {
            let v = vp8(
                1100,
                Vp8Packet {
                    first,
                    keyframe,
                    picture_id: 5,
                },
                &p,
            );
            assert_eq!(is_keyframe(VideoCodec::Vp8, &v), first && keyframe);
        }
    }
}
