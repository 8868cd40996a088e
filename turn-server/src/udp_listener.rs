//! The TURN-over-UDP listener: one task reading the client-facing UDP socket.
//!
//! The task owns the dispatcher (and with it the client-to-allocation map), so routing needs
//! no lock. Allocation tasks report their end on a channel and the task forgets them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::dispatcher::{Dispatcher, Outbound};
use crate::shared::Shared;

/// Serves `socket` until `shutdown` changes or its sender is dropped. Allocations made here
/// end when this returns (their queues close with the dispatcher).
pub(crate) async fn run(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut dispatcher = Dispatcher::new(shared, Outbound::Udp(Arc::clone(&socket)), Some(exit_tx));
    let mut buf = vec![0u8; 65536];
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some((client, id)) = exit_rx.recv() => dispatcher.forget(client, id),
            r = socket.recv_from(&mut buf) => {
                // Errors here are per-datagram (e.g. ICMP feedback); keep serving.
                if let Ok((n, from)) = r {
                    dispatcher.on_packet(from, &buf[..n]).await;
                }
            }
        }
    }
}
