//! Keeps receiver reports about simulcast layers from reaching the publisher.
//!
//! Why: a simulcast layer is identified only by the `mid`/`rid` RTP header extensions, and
//! libwebrtc stops sending those once a receiver report has acknowledged the SSRC. When the
//! publisher renegotiates (it publishes or unpublishes another track), webrtc-rs `rtc`
//! rebuilds every receiver from the new SDP and re-learns simulcast SSRCs from those
//! extensions; without them the layers would never be bound again and the camera would go
//! dark for every subscriber. Leaving the report blocks of simulcast SSRCs out keeps the
//! extensions coming. Congestion control is unaffected (it runs on transport-wide CC
//! feedback); only the RR-based loss/RTT statistics of those layers are lost.

use std::{
    collections::{HashSet, VecDeque},
    time::Instant,
};

use rtc::{
    interceptor::{Interceptor, Packet as IPacket, StreamInfo, TaggedPacket},
    rtcp::{self, receiver_report::ReceiverReport},
    sansio::Protocol,
    shared::error::Error as RtcError,
};

const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// The interceptor (sits wire-ward of the RR generator).
#[derive(Default)]
pub struct SimulcastRrFilter {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    rid_ext_id: Option<u8>,
    simulcast: HashSet<u32>,
}

impl SimulcastRrFilter {
    fn filter_rtcp(&self, pkts: &mut [Box<dyn rtcp::Packet>]) {
        for p in pkts.iter_mut() {
            if let Some(rr) = p.as_any().downcast_ref::<ReceiverReport>()
                && rr.reports.iter().any(|r| self.simulcast.contains(&r.ssrc))
            {
                let mut kept = rr.clone();
                kept.reports.retain(|r| !self.simulcast.contains(&r.ssrc));
                *p = Box::new(kept);
            }
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SimulcastRrFilter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), RtcError> {
        if let (IPacket::Rtp(p), Some(id)) = (&msg.message.packet, self.rid_ext_id)
            && p.header.get_extension(id).is_some()
        {
            self.simulcast.insert(p.header.ssrc);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), RtcError> {
        if !self.simulcast.is_empty()
            && let IPacket::Rtcp(pkts) = &mut msg.message.packet
        {
            self.filter_rtcp(pkts);
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for SimulcastRrFilter {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if let Some(e) = info.rtp_header_extensions.iter().find(|e| e.uri == RID_URI) {
            self.rid_ext_id = u8::try_from(e.id).ok();
        }
    }
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::reception_report::ReceptionReport;

    #[test]
    fn drops_only_simulcast_report_blocks() {
        let mut f = SimulcastRrFilter::default();
        f.simulcast.insert(1);
        let rr = ReceiverReport {
            ssrc: 9,
            reports: vec![
                ReceptionReport {
                    ssrc: 1,
                    ..Default::default()
                },
                ReceptionReport {
                    ssrc: 2,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut pkts: Vec<Box<dyn rtcp::Packet>> = vec![Box::new(rr)];
        f.filter_rtcp(&mut pkts);
        let rr = pkts[0].as_any().downcast_ref::<ReceiverReport>().unwrap();
        assert_eq!(rr.reports.len(), 1);
        assert_eq!(rr.reports[0].ssrc, 2);
    }
}
