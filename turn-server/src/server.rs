//! Starting and stopping the server: bind every listener up front (so a taken port is an
//! error at startup, naming the address), then run one task per listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::TurnConfig;
use crate::error::TurnError;
use crate::shared::Shared;
use crate::stats::TurnStats;
use crate::{stream_listener, tls, udp_listener};

/// The client-side transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientTransport {
    /// TURN over UDP.
    Udp,
    /// TURN over TCP.
    Tcp,
    /// TURN over TLS over TCP.
    Tls,
}

/// A bound listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerAddr {
    /// Its transport.
    pub transport: ClientTransport,
    /// The address it is bound to (with the real port when 0 was configured).
    pub addr: SocketAddr,
}

/// A running TURN server. Dropping it stops the listeners too; [`TurnServer::shutdown`]
/// also waits for the allocations to be released.
pub struct TurnServer {
    shared: Arc<Shared>,
    addrs: Vec<ListenerAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Validates `config`, binds the UDP, TCP and (with a certificate) TLS listeners and starts
/// serving. Must be called inside a tokio runtime.
pub async fn start(config: TurnConfig) -> Result<TurnServer, TurnError> {
    if !config.enabled {
        return Err(TurnError::Disabled);
    }
    config.validate()?;
    let shared = Shared::new(&config)?;
    let (stop, stop_rx) = watch::channel(false);
    let mut addrs = Vec::new();
    let mut pending: Vec<Box<dyn FnOnce() -> JoinHandle<()>>> = Vec::new();

    if let Some(port) = config.udp_port {
        let addr = SocketAddr::new(config.bind_ip, port);
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| TurnError::Bind {
                transport: "udp",
                addr,
                source,
            })?;
        let local = socket.local_addr().unwrap_or(addr);
        addrs.push(ListenerAddr {
            transport: ClientTransport::Udp,
            addr: local,
        });
        let (shared, rx) = (Arc::clone(&shared), stop_rx.clone());
        pending.push(Box::new(move || {
            tokio::spawn(udp_listener::run(Arc::new(socket), shared, rx))
        }));
    }
    if let Some(port) = config.tcp_port {
        let addr = SocketAddr::new(config.bind_ip, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TurnError::Bind {
                transport: "tcp",
                addr,
                source,
            })?;
        let local = listener.local_addr().unwrap_or(addr);
        addrs.push(ListenerAddr {
            transport: ClientTransport::Tcp,
            addr: local,
        });
        let (shared, rx) = (Arc::clone(&shared), stop_rx.clone());
        pending.push(Box::new(move || {
            tokio::spawn(stream_listener::run(listener, None, shared, rx))
        }));
    }
    if let (Some(port), Some(cert), Some(key)) =
        (config.tls_port, &config.cert_file, &config.key_file)
    {
        let acceptor = tls::acceptor(cert, key)?;
        let addr = SocketAddr::new(config.bind_ip, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| TurnError::Bind {
                transport: "tls",
                addr,
                source,
            })?;
        let local = listener.local_addr().unwrap_or(addr);
        addrs.push(ListenerAddr {
            transport: ClientTransport::Tls,
            addr: local,
        });
        let (shared, rx) = (Arc::clone(&shared), stop_rx.clone());
        pending.push(Box::new(move || {
            tokio::spawn(stream_listener::run(listener, Some(acceptor), shared, rx))
        }));
    }

    // Everything is bound: start serving.
    let tasks = pending.into_iter().map(|spawn| spawn()).collect();
    let listening: Vec<String> = addrs
        .iter()
        .map(|a| format!("{:?} {}", a.transport, a.addr))
        .collect();
    info!(
        listeners = %listening.join(", "),
        relay_ip = %config.relay_ip,
        advertised_relay_ip = %config.advertised_relay_ip(),
        relay_ports = %format!("{}-{}", config.relay_range_start, config.relay_range_end),
        realm = %config.realm,
        "TURN server listening"
    );
    Ok(TurnServer {
        shared,
        addrs,
        stop,
        tasks,
    })
}

impl TurnServer {
    /// Every bound listener.
    pub fn local_addrs(&self) -> &[ListenerAddr] {
        &self.addrs
    }

    /// The address of the listener of `transport`, if it runs.
    pub fn local_addr(&self, transport: ClientTransport) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|a| a.transport == transport)
            .map(|a| a.addr)
    }

    /// Current counters.
    pub fn stats(&self) -> TurnStats {
        self.shared.counters.snapshot(self.shared.registry.active())
    }

    /// Stops the listeners and connections and waits (up to 2 s) until every allocation has
    /// released its relay port.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        self.shared.registry.wait_idle(Duration::from_secs(2)).await;
        info!(stats = %self.stats(), "TURN server stopped");
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
