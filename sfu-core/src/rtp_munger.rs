//! Rewrites sequence numbers and timestamps of one down-track so the subscriber sees one
//! continuous RTP stream, whichever publisher layer (SSRC) feeds it.
//!
//! Within a layer the mapping is a fixed offset, so losses stay visible as gaps (and get
//! NACKed) and reordering is preserved. On a switch the new layer's offsets are chosen so
//! the first packet follows the last one sent: sequence +1, timestamp advanced by the wall
//! time elapsed (at least one tick). Packets of the new layer older than the switch point
//! are dropped, since their outgoing numbers would collide with the old layer's.

use std::time::Instant;

/// Input position of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPacket {
    /// Publisher-side SSRC (the layer).
    pub ssrc: u32,
    /// Publisher-side sequence number.
    pub seq: u16,
    /// Publisher-side timestamp.
    pub ts: u32,
}

/// Outcome for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Munged {
    /// Send with these numbers.
    Forward {
        /// Outgoing sequence number.
        seq: u16,
        /// Outgoing timestamp.
        ts: u32,
    },
    /// Older than the last switch: drop.
    TooOld,
    /// From a layer we are not on.
    OtherLayer,
}

#[derive(Debug, Clone)]
struct Epoch {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    /// Extended (unwrapped) input sequence number of the switch point.
    first_ext: i64,
    /// Highest extended input sequence number seen in this epoch.
    highest_ext: i64,
}

impl Epoch {
    /// Unwraps `seq` against the highest sequence number seen (RFC 3550 A.1 style).
    fn extend(&self, seq: u16) -> i64 {
        let delta = seq.wrapping_sub(self.highest_ext as u16) as i16;
        self.highest_ext + delta as i64
    }
}

/// Per down-track rewriting state.
#[derive(Debug, Clone, Default)]
pub struct RtpMunger {
    epoch: Option<Epoch>,
    last_seq: u16,
    last_ts: u32,
    last_at: Option<Instant>,
}

/// `a` is older than `b` in 16-bit sequence space.
fn seq_before(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) < 0
}

impl RtpMunger {
    /// The layer currently forwarded.
    pub fn current_ssrc(&self) -> Option<u32> {
        self.epoch.as_ref().map(|e| e.ssrc)
    }

    /// Forgets the current layer but keeps the outgoing position, so the next
    /// [`switch_to`](Self::switch_to) continues the stream (used when a paused track resumes).
    pub fn restart(mut self) -> Self {
        self.epoch = None;
        self
    }

    /// Starts forwarding from `p` (first packet ever, or a layer switch at a keyframe).
    pub fn switch_to(&mut self, p: InPacket, now: Instant, clock_rate: u32) {
        let (seq_offset, ts_offset) = match self.last_at {
            None => (0, 0),
            Some(at) => {
                let elapsed = now.saturating_duration_since(at);
                let ticks =
                    ((elapsed.as_micros() as u64 * clock_rate as u64) / 1_000_000).max(1) as u32;
                let want_seq = self.last_seq.wrapping_add(1);
                let want_ts = self.last_ts.wrapping_add(ticks);
                (want_seq.wrapping_sub(p.seq), want_ts.wrapping_sub(p.ts))
            }
        };
        self.epoch = Some(Epoch {
            ssrc: p.ssrc,
            seq_offset,
            ts_offset,
            first_ext: p.seq as i64,
            highest_ext: p.seq as i64,
        });
    }

    /// Maps a packet of the current layer.
    pub fn munge(&mut self, p: InPacket, now: Instant) -> Munged {
        let Some(e) = self.epoch.as_mut() else {
            return Munged::OtherLayer;
        };
        if e.ssrc != p.ssrc {
            return Munged::OtherLayer;
        }
        let ext = e.extend(p.seq);
        if ext < e.first_ext {
            return Munged::TooOld;
        }
        e.highest_ext = e.highest_ext.max(ext);
        let seq = p.seq.wrapping_add(e.seq_offset);
        let ts = p.ts.wrapping_add(e.ts_offset);
        if self.last_at.is_none() || !seq_before(seq, self.last_seq) {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_at = Some(now);
        }
        Munged::Forward { seq, ts }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick the virtual clock's starting instant
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(ssrc: u32, seq: u16, ts: u32) -> InPacket {
        InPacket { ssrc, seq, ts }
    }

    #[test]
    fn same_layer_keeps_gaps_and_order() {
        let t0 = Instant::now();
        let mut m = RtpMunger::default();
        m.switch_to(p(1, 100, 1000), t0, 90000);
        assert_eq!(
            m.munge(p(1, 100, 1000), t0),
            Munged::Forward { seq: 100, ts: 1000 }
        );
        assert_eq!(
            m.munge(p(1, 102, 4000), t0),
            Munged::Forward { seq: 102, ts: 4000 }
        );
        assert_eq!(
            m.munge(p(1, 101, 1000), t0),
            Munged::Forward { seq: 101, ts: 1000 }
        );
        assert_eq!(m.munge(p(2, 5, 5), t0), Munged::OtherLayer);
    }

    #[test]
    fn long_streams_survive_sequence_wraparound() {
        let t0 = Instant::now();
        let mut m = RtpMunger::default();
        m.switch_to(p(1, 10, 0), t0, 90000);
        let mut seq = 10u16;
        for i in 0..200_000u32 {
            assert!(
                matches!(m.munge(p(1, seq, i), t0), Munged::Forward { .. }),
                "packet {i}"
            );
            seq = seq.wrapping_add(1);
        }
        // A late packet from just before the switch point is still refused... only near it.
        let mut m = RtpMunger::default();
        m.switch_to(p(1, 100, 0), t0, 90000);
        assert_eq!(m.munge(p(1, 99, 0), t0), Munged::TooOld);
    }

    #[test]
    fn switch_continues_sequence_and_time() {
        let t0 = Instant::now();
        let mut m = RtpMunger::default();
        m.switch_to(p(1, 65534, 4_294_967_000), t0, 90000);
        m.munge(p(1, 65534, 4_294_967_000), t0);
        m.munge(p(1, 65535, 4_294_967_000), t0);
        let t1 = t0 + Duration::from_millis(100);
        m.switch_to(p(2, 7, 500), t1, 90000);
        assert_eq!(m.munge(p(2, 6, 400), t1), Munged::TooOld);
        match m.munge(p(2, 7, 500), t1) {
            Munged::Forward { seq, ts } => {
                assert_eq!(seq, 0, "wraps to 0 after 65535");
                assert_eq!(ts, 4_294_967_000u32.wrapping_add(9000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.munge(p(1, 0, 0), t1), Munged::OtherLayer);
    }
}
