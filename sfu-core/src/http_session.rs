//! WHIP and WHEP: joining a room with one HTTP-negotiated peer connection.
//!
//! A WHIP publisher or a WHEP viewer is an ordinary participant of its room (so LiveKit
//! clients see it, subscribe to it, and the server API can remove it), but it has no
//! signalling channel: one SDP offer/answer over HTTP sets up a single connection, and the
//! room can never renegotiate it. A WHIP session publishes what its offer sends; a WHEP
//! session answers the viewer's receive-only m-sections with fixed outgoing streams
//! ([`PlaySlot`]s) that the shard binds to published tracks now or whenever they appear,
//! rewriting SSRC, sequence numbers and timestamps so the viewer sees one continuous stream.

use livekit_protocol as proto;
use rtc::rtp_transceiver::RTCRtpSenderId;

use crate::{JoinError, ParticipantId, rtp_munger::RtpMunger};

/// How a participant talks to the server.
#[derive(Debug, Default)]
pub enum Transport {
    /// A LiveKit client: WebSocket signalling, publisher and subscriber connections.
    #[default]
    LiveKit,
    /// A WHIP publisher: one client-offered connection that only sends.
    Whip,
    /// A WHEP viewer: one client-offered connection that only receives.
    Whep(WhepState),
}

/// What a WHEP viewer asked to play and what it currently plays.
#[derive(Debug, Default)]
pub struct WhepState {
    /// The viewer's choice.
    pub selection: PlaySelection,
    /// One outgoing stream per m-section the viewer offered to receive.
    pub slots: Vec<PlaySlot>,
}

/// Which tracks a WHEP viewer plays (query parameters of its POST).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlaySelection {
    /// `participant=<identity>`: play this publisher. Default: the room's first video
    /// publisher (or, with no video at all, its first audio publisher).
    pub participant: Option<String>,
    /// `tracks=TR_a,TR_b`: exactly these tracks (overrides the participant's defaults).
    pub track_sids: Vec<String>,
}

impl PlaySelection {
    /// Does the viewer ask for a particular track (rather than a publisher's defaults)?
    pub fn names_tracks(&self) -> bool {
        !self.track_sids.is_empty()
    }
}

/// One outgoing stream of a WHEP session, bound to at most one published track.
#[derive(Debug)]
pub struct PlaySlot {
    /// Video (else audio).
    pub video: bool,
    /// Sender on the viewer's connection.
    pub sender: RTCRtpSenderId,
    /// SSRC announced in the answer; every track bound here is sent with it.
    pub ssrc: u32,
    /// Sid of the track currently bound.
    pub bound: Option<String>,
    /// Rewriting state kept between bindings, so a new track continues the sequence
    /// numbers and timestamps of the previous one.
    pub munger: Option<RtpMunger>,
}

/// A successful WHIP/WHEP POST.
#[derive(Debug, Clone)]
pub struct SessionAnswer {
    /// Shard handle of the new participant.
    pub participant: ParticipantId,
    /// Its `PA_` sid.
    pub participant_sid: String,
    /// The SDP answer.
    pub sdp: String,
    /// Entity tag of the ICE session (changes on ICE restart).
    pub etag: String,
}

/// Why a WHIP/WHEP request failed. Each maps to one HTTP status.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HttpSessionError {
    /// The body is not an SDP offer we can parse (400).
    #[error("invalid SDP offer: {0}")]
    BadSdp(String),
    /// The offer has no usable audio or video section (400).
    #[error("the SDP offer has no {0} m-section")]
    NoMedia(&'static str),
    /// No offered codec is one we forward (406).
    #[error("no supported codec offered (supported: audio/opus, video/VP8, video/H264)")]
    NoCommonCodec,
    /// The room refused the participant.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// No such session (404).
    #[error("no such session")]
    NotFound,
    /// `If-Match` names another ICE session (412).
    #[error("the ETag in If-Match does not match the session's")]
    PreconditionFailed,
    /// An ICE restart could not be carried out (422 with the reason).
    #[error("ICE restart failed: {0}")]
    IceRestart(String),
}

/// One audio/video m-section of an offer, as far as admission cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedMedia {
    /// `video` (else `audio`).
    pub video: bool,
    /// The client sends on it (sendonly/sendrecv).
    pub client_sends: bool,
    /// The client receives on it (recvonly/sendrecv).
    pub client_receives: bool,
    /// It offers a codec we forward.
    pub supported_codec: bool,
    /// Its msid track id, if any.
    pub track_id: Option<String>,
}

fn supported(video: bool, codec: &str) -> bool {
    let c = codec.to_ascii_lowercase();
    if video {
        c == "vp8" || c == "h264"
    } else {
        c == "opus"
    }
}

/// Reads the audio/video m-sections of an offer. Rejects text that is not SDP at all.
pub fn offered_media(sdp: &str) -> Result<Vec<OfferedMedia>, HttpSessionError> {
    let mut cursor = std::io::Cursor::new(sdp.as_bytes());
    rtc::sdp::description::session::SessionDescription::unmarshal(&mut cursor)
        .map_err(|e| HttpSessionError::BadSdp(e.to_string()))?;
    Ok(crate::sdp_tracks::av_sections(sdp)
        .map(|m| OfferedMedia {
            video: m.video,
            client_sends: m.sends(),
            client_receives: m.receives(),
            supported_codec: m.codecs().any(|c| supported(m.video, c)),
            track_id: m.track_id(),
        })
        .collect())
}

/// The offered m-sections `wanted` picks that carry a codec we forward; errors if none is
/// picked (`NoMedia(what)`) or none of those has such a codec.
fn check_offer(
    sdp: &str,
    wanted: fn(&OfferedMedia) -> bool,
    what: &'static str,
) -> Result<Vec<OfferedMedia>, HttpSessionError> {
    let media: Vec<OfferedMedia> = offered_media(sdp)?.into_iter().filter(wanted).collect();
    if media.is_empty() {
        return Err(HttpSessionError::NoMedia(what));
    }
    let usable: Vec<OfferedMedia> = media.into_iter().filter(|m| m.supported_codec).collect();
    if usable.is_empty() {
        return Err(HttpSessionError::NoCommonCodec);
    }
    Ok(usable)
}

/// The m-sections of a WHIP offer we will publish; errors if there is nothing to take.
pub fn check_publish_offer(sdp: &str) -> Result<Vec<OfferedMedia>, HttpSessionError> {
    check_offer(sdp, |m| m.client_sends, "sending audio or video")
}

/// The m-sections of a WHEP offer we will send on; errors if there is nothing to fill.
pub fn check_play_offer(sdp: &str) -> Result<Vec<OfferedMedia>, HttpSessionError> {
    check_offer(sdp, |m| m.client_receives, "receiving audio or video")
}

/// A PATCH body (`application/trickle-ice-sdpfrag`, RFC 8840) as far as we use it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SdpFrag {
    /// `a=ice-ufrag` (session level or first section).
    pub ufrag: Option<String>,
    /// `a=ice-pwd`.
    pub pwd: Option<String>,
    /// `a=candidate:` lines (without the `a=`), with the mid of their section.
    pub candidates: Vec<(String, Option<String>)>,
}

impl SdpFrag {
    /// Parses a fragment; unknown lines are ignored, nothing here can fail.
    pub fn parse(body: &str) -> Self {
        let mut f = SdpFrag::default();
        let mut mid: Option<String> = None;
        for l in body.lines() {
            let l = l.trim();
            if l.starts_with("m=") {
                mid = None;
            } else if let Some(v) = l.strip_prefix("a=mid:") {
                mid = Some(v.to_owned());
            } else if let Some(v) = l.strip_prefix("a=ice-ufrag:") {
                f.ufrag.get_or_insert_with(|| v.to_owned());
            } else if let Some(v) = l.strip_prefix("a=ice-pwd:") {
                f.pwd.get_or_insert_with(|| v.to_owned());
            } else if let Some(v) = l.strip_prefix("a=")
                && v.starts_with("candidate:")
            {
                f.candidates.push((v.to_owned(), mid.clone()));
            }
        }
        f
    }
}

/// The session-level `a=ice-ufrag` of an SDP.
pub fn ufrag_of(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

/// `sdp` with every `a=ice-ufrag`/`a=ice-pwd` replaced (an ICE-restarting re-offer).
pub fn with_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for l in sdp.split_inclusive('\n') {
        let line = l.trim_end_matches(['\r', '\n']);
        if line.starts_with("a=ice-ufrag:") {
            out.push_str(&format!("a=ice-ufrag:{ufrag}\r\n"));
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str(&format!("a=ice-pwd:{pwd}\r\n"));
        } else {
            out.push_str(l);
        }
    }
    out
}

/// The `TrackSource` a WHIP m-section publishes as.
pub fn whip_source(video: bool) -> proto::TrackSource {
    if video {
        proto::TrackSource::Camera
    } else {
        proto::TrackSource::Microphone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
        a=msid:s a1\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\n\
        a=rtpmap:98 FOO/90000\r\n";

    #[test]
    fn reads_direction_codec_and_msid() {
        let m = offered_media(OFFER).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m[0].client_sends && !m[0].client_receives && m[0].supported_codec);
        assert_eq!(m[0].track_id.as_deref(), Some("a1"));
        assert!(m[1].video && !m[1].client_sends && !m[1].supported_codec);
    }

    #[test]
    fn publish_and_play_checks() {
        assert_eq!(check_publish_offer(OFFER).unwrap().len(), 1);
        assert_eq!(
            check_play_offer(OFFER).unwrap_err(),
            HttpSessionError::NoCommonCodec
        );
        assert!(matches!(
            check_publish_offer("hello"),
            Err(HttpSessionError::BadSdp(_))
        ));
        let no_media = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
        assert!(matches!(
            check_play_offer(no_media),
            Err(HttpSessionError::NoMedia(_))
        ));
    }

    #[test]
    fn restart_offer_swaps_credentials_only() {
        let sdp =
            "v=0\r\na=ice-ufrag:old\r\na=ice-pwd:oldpwd\r\nm=audio 9 X 0\r\na=ice-ufrag:old\r\n";
        let out = with_credentials(sdp, "new", "newpwd");
        assert_eq!(
            out,
            "v=0\r\na=ice-ufrag:new\r\na=ice-pwd:newpwd\r\nm=audio 9 X 0\r\na=ice-ufrag:new\r\n"
        );
        assert_eq!(ufrag_of(&out).as_deref(), Some("new"));
    }

    #[test]
    fn sdpfrag() {
        let f = SdpFrag::parse(
            "a=ice-ufrag:abc\r\na=ice-pwd:xyz\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
             a=candidate:1 1 udp 1 10.0.0.1 5000 typ host\r\na=end-of-candidates\r\n",
        );
        assert_eq!(f.ufrag.as_deref(), Some("abc"));
        assert_eq!(f.pwd.as_deref(), Some("xyz"));
        assert_eq!(f.candidates.len(), 1);
        assert_eq!(f.candidates[0].1.as_deref(), Some("0"));
    }
}
