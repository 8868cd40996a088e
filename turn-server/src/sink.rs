//! The way back to a client: the listener's UDP socket, or the write queue of its TCP/TLS
//! connection.
//!
//! Allocation tasks and listeners send through a [`ClientSink`] without knowing the
//! transport. A UDP sink shares the listener's socket (sending is `&self`, no lock); a stream
//! sink feeds the connection's writer task. Relayed data never waits for a slow stream: when
//! its queue is full the packet is dropped and counted, like a congested UDP path would.
//! Control responses do wait, because TCP clients do not retransmit requests.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::stats::{Counters, DropReason};

/// Outbound queue length of one TCP/TLS connection, in messages.
pub(crate) const STREAM_QUEUE: usize = 512;

/// Where a client's responses and relayed data go.
#[derive(Debug, Clone)]
pub(crate) enum ClientSink {
    /// The UDP listener socket, to this client address.
    Udp {
        socket: Arc<UdpSocket>,
        to: SocketAddr,
    },
    /// The connection's writer task.
    Stream { tx: mpsc::Sender<Bytes> },
}

impl ClientSink {
    /// Stream transports need ChannelData padded to 4 bytes.
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Self::Stream { .. })
    }

    /// Sends relayed data; never waits for a stream's queue.
    pub(crate) async fn send_data(&self, bytes: Vec<u8>, counters: &Counters) -> bool {
        match self {
            Self::Udp { socket, to } => send_udp(socket, *to, &bytes, counters).await,
            Self::Stream { tx } => match tx.try_send(Bytes::from(bytes)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    counters.drop_packet(DropReason::ClientBacklog);
                    false
                }
                Err(TrySendError::Closed(_)) => {
                    counters.drop_packet(DropReason::SendFailed);
                    false
                }
            },
        }
    }

    /// Sends a STUN response; waits for room in a stream's queue.
    pub(crate) async fn send_control(&self, bytes: Vec<u8>, counters: &Counters) {
        match self {
            Self::Udp { socket, to } => {
                send_udp(socket, *to, &bytes, counters).await;
            }
            Self::Stream { tx } => {
                if tx.send(Bytes::from(bytes)).await.is_err() {
                    counters.drop_packet(DropReason::SendFailed);
                }
            }
        }
    }
}

async fn send_udp(socket: &UdpSocket, to: SocketAddr, bytes: &[u8], counters: &Counters) -> bool {
    match socket.send_to(bytes, to).await {
        Ok(_) => true,
        Err(_) => {
            counters.drop_packet(DropReason::SendFailed);
            false
        }
    }
}
