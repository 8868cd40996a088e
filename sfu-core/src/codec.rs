//! Just enough payload parsing to find keyframes, which is all an SFU needs to decide where
//! a subscriber may start or switch layers. Works on untrusted bytes: never panics.

/// Video codecs we gate on keyframes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// VP8 (RFC 7741).
    Vp8,
    /// H.264 (RFC 6184).
    H264,
    /// Anything else: forwarded without keyframe gating.
    Other,
}

impl VideoCodec {
    /// From a MIME type such as `video/VP8`.
    pub fn from_mime(mime: &str) -> Self {
        let m = mime.to_ascii_lowercase();
        if m.ends_with("/vp8") {
            Self::Vp8
        } else if m.ends_with("/h264") {
            Self::H264
        } else {
            Self::Other
        }
    }
}

/// True if this RTP payload starts a keyframe.
pub fn is_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::Vp8 => vp8_keyframe(payload),
        VideoCodec::H264 => h264_keyframe(payload),
        VideoCodec::Other => true,
    }
}

/// VP8 payload descriptor, then the key-frame bit of the payload header (RFC 7741 §4).
fn vp8_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let start = b0 & 0x10 != 0;
    let pid = b0 & 0x07;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            let Some(&pic) = p.get(i) else { return false };
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    start && pid == 0 && p.get(i).is_some_and(|h| h & 0x01 == 0)
}

fn h264_nal_is_key(t: u8) -> bool {
    t == 5 || t == 7
}

/// IDR or SPS in a single NAL, STAP-A or the first FU-A fragment (RFC 6184 §5).
fn h264_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1F {
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                if let Some(&h) = p.get(i + 2)
                    && h264_nal_is_key(h & 0x1F)
                {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && h264_nal_is_key(fu & 0x1F)),
        t => h264_nal_is_key(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_detection() {
        // S=1, PID=0, no extension, payload header P=0 -> key.
        assert!(is_keyframe(VideoCodec::Vp8, &[0x10, 0x00, 0x00]));
        // Same with P=1 -> delta.
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x10, 0x01]));
        // Extended: X=1, I=1 with 15-bit picture id, then header.
        assert!(is_keyframe(
            VideoCodec::Vp8,
            &[0x90, 0x80, 0x81, 0x23, 0x00]
        ));
        // Not a start of partition.
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x00, 0x00]));
        assert!(!is_keyframe(VideoCodec::Vp8, &[]));
        assert!(!is_keyframe(VideoCodec::Vp8, &[0x90, 0x80]));
    }

    #[test]
    fn h264_keyframe_detection() {
        assert!(is_keyframe(VideoCodec::H264, &[0x65, 0x88]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x41, 0x9a]));
        // STAP-A with SPS.
        assert!(is_keyframe(
            VideoCodec::H264,
            &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]
        ));
        // FU-A start of IDR, and a middle fragment.
        assert!(is_keyframe(VideoCodec::H264, &[0x7c, 0x85]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x7c, 0x05]));
        assert!(!is_keyframe(VideoCodec::H264, &[0x78, 0xff, 0xff]));
    }

    #[test]
    fn never_panics_on_short_input() {
        for codec in [VideoCodec::Vp8, VideoCodec::H264] {
            for len in 0..6 {
                let _ = is_keyframe(codec, &[0xff; 6][..len]);
                let _ = is_keyframe(codec, &[0x00; 6][..len]);
            }
        }
    }
}
