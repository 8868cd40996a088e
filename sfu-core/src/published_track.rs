//! A track a participant publishes: its LiveKit `TrackInfo`, its receive layers (one
//! [`RecvLayer`] per simulcast SSRC) and the down-tracks that forward it to subscribers.

use std::time::{Duration, Instant};

use livekit_protocol as proto;
use rtc::rtp_transceiver::RTCRtpReceiverId;

use crate::{
    ParticipantId, codec::VideoCodec, down_track::DownTrack, keyframe_requester::KeyframeRequester,
    rtx_cache::RtxCache,
};

/// A layer that has not sent anything for this long is not selected.
pub const LAYER_IDLE: Duration = Duration::from_millis(1500);

/// Packets kept per video layer for NACK answers.
const RTX_CACHE_SIZE: usize = 1024;

/// One incoming RTP stream (a simulcast layer, or the only stream).
#[derive(Debug)]
pub struct RecvLayer {
    /// Publisher SSRC.
    pub ssrc: u32,
    /// Simulcast rid (`q`/`h`/`f`), if any.
    pub rid: Option<String>,
    /// LiveKit quality (LOW 0, MEDIUM 1, HIGH 2).
    pub quality: i32,
    /// Receiver on the publisher connection (for PLI).
    pub receiver_id: RTCRtpReceiverId,
    /// Last packet time.
    pub last_seen: Option<Instant>,
    /// Recent packets for NACK.
    pub cache: Option<RtxCache>,
    /// PLI throttle.
    pub keyframes: KeyframeRequester,
}

/// Quality from a JS/Rust SDK rid.
pub fn quality_of_rid(rid: Option<&str>) -> i32 {
    match rid {
        Some("q") => proto::VideoQuality::Low as i32,
        Some("h") => proto::VideoQuality::Medium as i32,
        _ => proto::VideoQuality::High as i32,
    }
}

/// A published track.
#[derive(Debug)]
pub struct PublishedTrack {
    /// LiveKit track info (sid, kind, source, ...).
    pub info: proto::TrackInfo,
    /// Publisher.
    pub publisher: ParticipantId,
    /// Publisher sid (for msid).
    pub publisher_sid: String,
    /// Room name.
    pub room: String,
    /// rtc's id for the remote track on the publisher connection.
    pub rtc_track_id: String,
    /// MIME type, e.g. `video/VP8`.
    pub mime: String,
    /// fmtp line of the codec.
    pub fmtp: String,
    /// RTP clock rate.
    pub clock_rate: u32,
    /// Channels (2 for Opus).
    pub channels: u16,
    /// Keyframe-gating codec.
    pub codec: VideoCodec,
    /// Receive layers.
    pub layers: Vec<RecvLayer>,
    /// Subscribers.
    pub down_tracks: Vec<DownTrack>,
}

impl PublishedTrack {
    /// True for video.
    pub fn is_video(&self) -> bool {
        self.info.r#type == proto::TrackType::Video as i32
    }

    /// Adds (or refreshes after renegotiation) a layer.
    pub fn add_layer(
        &mut self,
        ssrc: u32,
        rid: Option<String>,
        receiver_id: RTCRtpReceiverId,
    ) -> usize {
        if let Some(i) = self.layers.iter().position(|l| l.ssrc == ssrc) {
            self.layers[i].receiver_id = receiver_id;
            return i;
        }
        let quality = quality_of_rid(rid.as_deref());
        self.layers.push(RecvLayer {
            ssrc,
            rid,
            quality,
            receiver_id,
            last_seen: None,
            cache: self.is_video().then(|| RtxCache::new(RTX_CACHE_SIZE)),
            keyframes: KeyframeRequester::new(KeyframeRequester::interval_for_quality(quality)),
        });
        self.layers.len() - 1
    }

    /// Index of the layer with `ssrc`.
    pub fn layer_index(&self, ssrc: u32) -> Option<usize> {
        self.layers.iter().position(|l| l.ssrc == ssrc)
    }

    /// The layer to forward: the highest quality that is currently flowing.
    pub fn best_layer(&self, now: Instant) -> Option<usize> {
        self.layers
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.last_seen
                    .is_some_and(|t| now.saturating_duration_since(t) < LAYER_IDLE)
            })
            .max_by_key(|(_, l)| l.quality)
            .map(|(i, _)| i)
    }

    /// The msid stream id subscribers see: `PA_xxx|camera` (LiveKit protocol > 9).
    pub fn stream_id(&self) -> String {
        let stream = if self.info.stream.is_empty() {
            match proto::TrackSource::try_from(self.info.source) {
                Ok(proto::TrackSource::ScreenShare | proto::TrackSource::ScreenShareAudio) => {
                    "screen"
                }
                _ => "camera",
            }
        } else {
            &self.info.stream
        };
        format!("{}|{}", self.publisher_sid, stream)
    }
}
