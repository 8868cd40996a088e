//! TURN over TCP and TLS (RFC 8656 section 12.5): accept connections, split each byte stream
//! into STUN and ChannelData messages, and write responses and relayed data back in order.
//!
//! Each connection is its own 5-tuple with at most one allocation, served by a reader task
//! (the dispatcher) and a writer task fed by a queue. Closing the connection drops the
//! dispatcher and so ends the allocation. A connection that has no allocation and stays silent
//! for [`IDLE_TIMEOUT`] is closed, so idle sockets cannot pile up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::dispatcher::{Dispatcher, Outbound};
use crate::framing;
use crate::shared::Shared;
use crate::sink::STREAM_QUEUE;
use crate::stats::DropReason;

/// How long a connection without allocation may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes gathered into one write.
const WRITE_BATCH: usize = 16 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` changes; each connection also stops on shutdown.
pub(crate) async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            r = listener.accept() => {
                // Accept errors (EMFILE, aborted handshakes) are transient; keep listening.
                let Ok((tcp, peer)) = r else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let stop = shutdown.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, peer, shared, stop).await,
                        Some(acceptor) => {
                            let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                            if let Ok(Ok(stream)) = accepted {
                                serve(stream, peer, shared, stop).await;
                            }
                        }
                    }
                });
            }
        }
    }
}

/// Serves one connection until it closes, misbehaves, idles out, or the server stops.
async fn serve<S>(stream: S, peer: SocketAddr, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Bytes>(STREAM_QUEUE);
    tokio::spawn(async move {
        // Messages already queued behind the first are written together: one syscall (and
        // one TLS record) instead of one per message.
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.clear();
            batch.extend_from_slice(&first);
            while batch.len() < WRITE_BATCH {
                match rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if wr.write_all(&batch).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut dispatcher = Dispatcher::new(Arc::clone(&shared), Outbound::Stream(tx), Some(exit_tx));
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        let idle = if dispatcher.has_allocations() {
            // The allocation has its own lifetime; refreshes arrive as reads anyway.
            Duration::from_secs(86_400)
        } else {
            IDLE_TIMEOUT
        };
        let read = tokio::select! {
            _ = stop.changed() => break,
            Some((client, id)) = exit_rx.recv() => {
                // The allocation expired or was deleted; the connection may allocate again.
                dispatcher.forget(client, id);
                continue;
            }
            r = tokio::time::timeout(idle, rd.read_buf(&mut buf)) => r,
        };
        match read {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
        loop {
            match framing::next_frame_len(&buf) {
                Ok(Some(len)) => {
                    let frame = buf.split_to(len).freeze();
                    dispatcher.on_packet(peer, &frame).await;
                }
                Ok(None) => break,
                Err(framing::NotTurn) => {
                    shared.counters.drop_packet(DropReason::Malformed);
                    return;
                }
            }
        }
    }
}
