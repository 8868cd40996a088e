//! Which tracks a remote offer still sends, read straight from the SDP text.
//!
//! `rtc` reports new remote tracks (on their first packet) but never their removal, so the
//! shard compares each publisher offer's sending m-sections with what it has published to
//! notice an unpublish.

use std::collections::HashSet;

/// One audio/video m-section that is not rejected (port not 0), straight from the SDP text.
#[derive(Debug, Clone)]
pub struct AvSection<'a> {
    /// `m=video` (else `m=audio`).
    pub video: bool,
    /// Its attribute lines, without line endings.
    pub lines: Vec<&'a str>,
}

impl AvSection<'_> {
    /// The offerer sends on it (not `recvonly` / `inactive`).
    pub fn sends(&self) -> bool {
        !self
            .lines
            .iter()
            .any(|l| *l == "a=recvonly" || *l == "a=inactive")
    }

    /// The offerer receives on it (not `sendonly` / `inactive`).
    pub fn receives(&self) -> bool {
        !self
            .lines
            .iter()
            .any(|l| *l == "a=sendonly" || *l == "a=inactive")
    }

    /// Codec names of its `a=rtpmap` lines (`opus`, `VP8`, ...).
    pub fn codecs(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| {
            l.strip_prefix("a=rtpmap:")?
                .split_whitespace()
                .nth(1)?
                .split('/')
                .next()
        })
    }

    /// The msid track id: from `a=msid:<stream> <track>`, else from `a=ssrc:<n> msid:...`.
    pub fn track_id(&self) -> Option<String> {
        let mut from_ssrc = None;
        for l in &self.lines {
            if let Some(v) = l.strip_prefix("a=msid:")
                && let Some(t) = v.split_whitespace().nth(1)
            {
                return Some(t.to_owned());
            }
            if from_ssrc.is_none()
                && let Some(v) = l.strip_prefix("a=ssrc:")
                && let Some(m) = v
                    .split_whitespace()
                    .nth(1)
                    .and_then(|x| x.strip_prefix("msid:"))
            {
                from_ssrc = Some(v.split_whitespace().nth(2).unwrap_or(m).to_owned());
            }
        }
        from_ssrc
    }
}

/// The audio/video m-sections of `sdp` that are not rejected. Accepts any text; malformed
/// lines are ignored.
pub fn av_sections(sdp: &str) -> impl Iterator<Item = AvSection<'_>> {
    sdp.split("\nm=").skip(1).filter_map(|section| {
        let mut lines = section.lines().map(|l| l.trim_end_matches('\r'));
        let mut header = lines.next().unwrap_or("").split_whitespace();
        let kind = header.next().unwrap_or("");
        let port = header.next().unwrap_or("0");
        if !(kind == "audio" || kind == "video") || port == "0" {
            return None;
        }
        Some(AvSection {
            video: kind == "video",
            lines: lines.collect(),
        })
    })
}

/// msid track ids of the audio/video m-sections that are sending (sendrecv/sendonly, port
/// not 0).
pub fn sending_track_ids(sdp: &str) -> HashSet<String> {
    av_sections(sdp)
        .filter(AvSection::sends)
        .filter_map(|s| s.track_id())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sending_tracks_only() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=msid:s1 mic\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=inactive\r\na=msid:s1 cam\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=ssrc:5 msid:s2 screen\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=msid:s3 gone\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";
        let ids = sending_track_ids(sdp);
        assert!(ids.contains("mic") && ids.contains("screen"));
        assert!(!ids.contains("cam") && !ids.contains("gone"));
        assert!(sending_track_ids("garbage\nm=\nm=video").is_empty());
    }
}
