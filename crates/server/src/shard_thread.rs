//! A media shard thread: owns one UDP socket and one [`sfu_core::Shard`], and moves bytes
//! and messages between them, the signalling tasks and the clock.
//!
//! The thread runs a single-threaded tokio runtime only as an event multiplexer (socket,
//! request queue, next deadline); all media logic stays in the sans-IO shard.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    net::SocketAddr,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use sfu_core::{Output, ParticipantId, PcFactory, Shard, ShardConfig};
use signaling::{HttpSessionKind, MediaPlane, SessionEvent, SessionSink, ShardRequest};
use switchyard_netio::SendBatch;
use tokio::{net::UdpSocket, sync::mpsc};
use tracing::{info, warn};

/// Largest datagram we accept.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams read per wake-up before looking at other inputs.
const RECV_BATCH: usize = 64;

/// Routes rooms to shards by a stable hash of the room name.
pub struct Shards {
    queues: Vec<mpsc::UnboundedSender<ShardRequest>>,
}

impl Shards {
    /// Asks every shard to disconnect its participants (`SERVER_SHUTDOWN`) and stop; waits
    /// for them, at most `limit`.
    pub async fn shutdown(&self, limit: std::time::Duration) {
        let mut waits = Vec::new();
        for q in &self.queues {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if q.send(ShardRequest::Shutdown { reply: tx }).is_ok() {
                waits.push(rx);
            }
        }
        let _ = tokio::time::timeout(limit, async {
            for w in waits {
                let _ = w.await;
            }
        })
        .await;
    }
}

impl MediaPlane for Shards {
    fn all_shards(&self) -> Vec<mpsc::UnboundedSender<ShardRequest>> {
        self.queues.clone()
    }

    fn shard_for(&self, room: &str) -> mpsc::UnboundedSender<ShardRequest> {
        let mut h = DefaultHasher::new();
        room.hash(&mut h);
        self.queues[(h.finish() % self.queues.len() as u64) as usize].clone()
    }
}

/// Starts one shard per UDP port. `bind` is the socket address, `advertised` the ICE
/// candidate address of each port.
pub fn start(
    ports: &[(SocketAddr, SocketAddr)],
    cfg: ShardConfig,
    events: mpsc::UnboundedSender<sfu_core::RoomEvent>,
) -> std::io::Result<Shards> {
    let mut queues = Vec::new();
    for (i, &(bind, advertised)) in ports.iter().enumerate() {
        let std_sock = std::net::UdpSocket::bind(bind)?;
        std_sock.set_nonblocking(true)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cfg = cfg.clone();
        let events = events.clone();
        std::thread::Builder::new()
            .name(format!("shard-{i}"))
            .spawn(move || run(std_sock, advertised, cfg, rx, events))?;
        info!(shard = i, %bind, %advertised, "media shard listening (UDP)");
        queues.push(tx);
    }
    Ok(Shards { queues })
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn run(
    sock: std::net::UdpSocket,
    advertised: SocketAddr,
    cfg: ShardConfig,
    rx: mpsc::UnboundedReceiver<ShardRequest>,
    events: mpsc::UnboundedSender<sfu_core::RoomEvent>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let sock = UdpSocket::from_std(sock).expect("socket registered with the runtime");
        let factory = match PcFactory::new(advertised) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "cannot create DTLS certificate; shard not running");
                return;
            }
        };
        let shard = Shard::new(cfg, factory, Instant::now(), unix_ms());
        Driver {
            shard,
            sock,
            batch: SendBatch::new(),
            sinks: HashMap::new(),
            events,
        }
        .run(rx)
        .await;
    });
}

struct Driver {
    shard: Shard,
    sock: UdpSocket,
    /// Datagrams of the current drain, sent with one `sendmmsg` per batch.
    batch: SendBatch,
    sinks: HashMap<ParticipantId, SessionSink>,
    events: mpsc::UnboundedSender<sfu_core::RoomEvent>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<ShardRequest>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            self.drain_outputs().await;
            let deadline = self
                .shard
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(1));
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        self.shard.handle_datagram(Instant::now(), from, &buf[..n]);
                    }
                    for _ in 0..RECV_BATCH {
                        match self.sock.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.shard.handle_datagram(Instant::now(), from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                req = rx.recv() => match req {
                    Some(ShardRequest::Shutdown { reply }) => {
                        self.shard.shutdown(Instant::now());
                        self.drain_outputs().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(req) => self.on_request(req),
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.shard.handle_timeout(Instant::now());
                }
            }
        }
    }

    fn on_request(&mut self, req: ShardRequest) {
        let now = Instant::now();
        match req {
            ShardRequest::Join {
                params,
                sink,
                reply,
            } => {
                let r = self.shard.join(now, *params);
                if let Ok(pid) = &r {
                    self.sinks.insert(*pid, sink);
                }
                let _ = reply.send(r);
            }
            ShardRequest::Signal {
                participant,
                request,
            } => self.shard.handle_signal(now, participant, *request),
            ShardRequest::SignalClosed { participant } => {
                self.shard.signal_closed(now, participant);
                self.sinks.remove(&participant);
            }
            ShardRequest::Api { request, reply } => {
                let _ = reply.send(self.shard.room_api(now, *request));
            }
            ShardRequest::HttpSession {
                kind,
                params,
                offer,
                sink,
                reply,
            } => {
                let r = match kind {
                    HttpSessionKind::Whip => self.shard.whip_publish(now, *params, &offer),
                    HttpSessionKind::Whep(sel) => self.shard.whep_play(now, *params, sel, &offer),
                };
                if let Ok(a) = &r {
                    self.sinks.insert(a.participant, sink);
                }
                let _ = reply.send(r);
            }
            ShardRequest::HttpSessionPatch {
                participant,
                sdpfrag,
                if_match,
                reply,
            } => {
                let r =
                    self.shard
                        .http_session_patch(now, participant, &sdpfrag, if_match.as_deref());
                let _ = reply.send(r);
            }
            ShardRequest::HttpSessionEnd { participant, reply } => {
                let _ = reply.send(self.shard.http_session_end(now, participant));
            }
            ShardRequest::RoomExists { room, reply } => {
                let _ = reply.send(self.shard.room_exists(&room));
            }
            ShardRequest::Shutdown { reply } => {
                // Handled by the run loop, which stops after it.
                let _ = reply.send(());
            }
        }
    }

    async fn drain_outputs(&mut self) {
        while let Some(o) = self.shard.poll_output() {
            match o {
                Output::Transmit(t) => {
                    self.batch.push(t.remote, t.data);
                    if self.batch.is_full() {
                        self.batch.flush(&self.sock).await;
                    }
                }
                Output::Signal(pid, msg) => {
                    if let Some(s) = self.sinks.get(&pid) {
                        let _ = s.send(SessionEvent::Signal(msg));
                    }
                }
                Output::PermissionChanged(pid, perm) => {
                    if let Some(s) = self.sinks.get(&pid) {
                        let _ = s.send(SessionEvent::PermissionChanged(perm));
                    }
                }
                Output::CloseSignal(pid) => {
                    if let Some(s) = self.sinks.remove(&pid) {
                        let _ = s.send(SessionEvent::Close);
                    }
                }
                Output::Event(e) => {
                    let _ = self.events.send(*e);
                }
            }
        }
        self.batch.flush(&self.sock).await;
    }
}
