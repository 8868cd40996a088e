//! Which tracks a remote offer still sends, read straight from the SDP text.
//!
//! `rtc` reports new remote tracks (on their first packet) but never their removal, so the
//! shard compares each publisher offer's sending m-sections with what it has published to
//! notice an unpublish.

use std::collections::HashSet;

/// msid track ids of the audio/video m-sections that are sending (sendrecv/sendonly, port
/// not 0). Accepts any text; malformed lines are ignored.
pub fn sending_track_ids(sdp: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for section in sdp.split("\nm=").skip(1) {
        let mut lines = section.lines();
        let header = lines.next().unwrap_or("");
        let mut parts = header.split_whitespace();
        let kind = parts.next().unwrap_or("");
        let port = parts.next().unwrap_or("0");
        if !(kind == "audio" || kind == "video") || port == "0" {
            continue;
        }
        let mut sending = true;
        let mut track: Option<String> = None;
        for l in lines {
            let l = l.trim_end_matches('\r');
            match l {
                "a=recvonly" | "a=inactive" => sending = false,
                _ => {
                    if let Some(v) = l.strip_prefix("a=msid:") {
                        track = v.split_whitespace().nth(1).map(str::to_owned).or(track);
                    } else if let Some(v) = l.strip_prefix("a=ssrc:")
                        && let Some(m) = v
                            .split_whitespace()
                            .nth(1)
                            .and_then(|x| x.strip_prefix("msid:"))
                        && track.is_none()
                    {
                        track = v
                            .split_whitespace()
                            .nth(2)
                            .map(str::to_owned)
                            .or_else(|| Some(m.to_owned()));
                    }
                }
            }
        }
        if sending && let Some(t) = track {
            out.insert(t);
        }
    }
    out
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
