//! Batched UDP sends for the media path.
//!
//! An SFU sends one datagram per subscriber for every packet it receives, so a fan-out of
//! 100 is 100 `sendto` calls, each paying a syscall entry and exit and the socket lookup.
//! The profile of the load benchmark showed the send syscalls at a third of the shard's CPU.
//! [`SendBatch`] gathers the datagrams produced while handling one batch of input and
//! hands them to the kernel with `sendmmsg(2)`, up to [`MAX_BATCH`] per call.
//!
//! A full socket buffer waits for the socket to become writable (as one `send_to().await`
//! would); any other error drops only the datagram the kernel refused and is counted.

use std::{io::IoSlice, net::SocketAddr};

use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, addr::SocketAddrArg};
use tokio::{io::Interest, net::UdpSocket};

/// Datagrams per `sendmmsg` call (the kernel's limit is 1024; 64 keeps the batch in cache).
pub const MAX_BATCH: usize = 64;

/// Datagrams waiting to be sent, in order.
#[derive(Debug, Default)]
pub struct SendBatch {
    queued: Vec<(SocketAddr, Vec<u8>)>,
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Datagrams the kernel refused (unreachable destination, too big, ...).
    pub refused: u64,
    /// `sendmmsg` calls made.
    pub calls: u64,
}

impl SendBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues one datagram.
    pub fn push(&mut self, to: SocketAddr, data: Vec<u8>) {
        self.queued.push((to, data));
    }

    /// Datagrams queued and not yet sent.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Whether a flush now would fill a whole `sendmmsg` call.
    pub fn is_full(&self) -> bool {
        self.queued.len() >= MAX_BATCH
    }

    /// Sends everything queued, in order, waiting while the socket buffer is full.
    pub async fn flush(&mut self, sock: &UdpSocket) {
        let mut start = 0;
        while start < self.queued.len() {
            let end = (start + MAX_BATCH).min(self.queued.len());
            let chunk = &self.queued[start..end];
            match sock.try_io(Interest::WRITABLE, || send_chunk(sock, chunk)) {
                Ok(n) => {
                    self.calls += 1;
                    self.sent += n as u64;
                    start += n.max(1);
                    if n == 0 {
                        self.refused += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if sock.writable().await.is_err() {
                        self.refused += (self.queued.len() - start) as u64;
                        break;
                    }
                }
                Err(_) => {
                    // The first datagram of the chunk was refused; the rest may go.
                    self.calls += 1;
                    self.refused += 1;
                    start += 1;
                }
            }
        }
        self.queued.clear();
    }
}

/// One `sendmmsg` call for `chunk`; the number of datagrams the kernel took.
fn send_chunk(sock: &UdpSocket, chunk: &[(SocketAddr, Vec<u8>)]) -> std::io::Result<usize> {
    let addrs: Vec<SocketAddrAny> = chunk.iter().map(|(a, _)| a.as_any()).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(_, d)| [IoSlice::new(d)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = chunk
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut msgs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(iovs.iter())
        .zip(controls.iter_mut())
        .map(|((a, iov), c)| MMsgHdr::new_with_addr(a, iov, c))
        .collect();
    Ok(rustix::net::sendmmsg(sock, &mut msgs, SendFlags::empty())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    #[tokio::test]
    async fn sends_every_datagram_in_order_across_calls() {
        let tx = bound().await;
        let rx = bound().await;
        let to = rx.local_addr().unwrap();
        let mut b = SendBatch::new();
        let n = MAX_BATCH * 2 + 5;
        for i in 0..n {
            b.push(to, (i as u32).to_be_bytes().to_vec());
        }
        assert!(b.is_full());
        b.flush(&tx).await;
        assert!(b.is_empty());
        assert_eq!(b.sent, n as u64);
        assert_eq!(b.calls, 3);
        let mut buf = [0u8; 16];
        for i in 0..n {
            let (len, from) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, tx.local_addr().unwrap());
            assert_eq!(&buf[..len], &(i as u32).to_be_bytes());
        }
    }

    #[tokio::test]
    async fn a_refused_datagram_does_not_lose_the_others() {
        let tx = bound().await;
        let rx = bound().await;
        let to = rx.local_addr().unwrap();
        let mut b = SendBatch::new();
        b.push(to, b"a".to_vec());
        // Too big for UDP: the kernel refuses this one (EMSGSIZE).
        b.push(to, vec![0u8; 70_000]);
        b.push(to, b"c".to_vec());
        b.flush(&tx).await;
        assert_eq!((b.sent, b.refused), (2, 1));
        let mut buf = [0u8; 16];
        for want in [b"a", b"c"] {
            let (len, _) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], want);
        }
    }

    #[tokio::test]
    async fn sends_to_several_destinations_and_ipv6() {
        let tx = bound().await;
        let a = bound().await;
        let b6 = UdpSocket::bind("[::1]:0").await;
        let mut batch = SendBatch::new();
        batch.push(a.local_addr().unwrap(), b"x".to_vec());
        batch.flush(&tx).await;
        let mut buf = [0u8; 4];
        assert_eq!(a.recv_from(&mut buf).await.unwrap().0, 1);
        // An IPv6 destination from an IPv4 socket is refused, not a panic.
        if let Ok(b6) = b6 {
            batch.push(b6.local_addr().unwrap(), b"y".to_vec());
            batch.push(a.local_addr().unwrap(), b"z".to_vec());
            batch.flush(&tx).await;
            assert_eq!(batch.refused, 1);
            assert_eq!(a.recv_from(&mut buf).await.unwrap().0, 1);
            assert_eq!(buf[0], b'z');
        }
    }
}
