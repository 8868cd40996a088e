//! The `switchyard` binary: loads the LiveKit-style configuration, starts the media
//! shards (one UDP port each) and serves LiveKit signalling over HTTP/WebSocket.

mod config;
mod events;
mod shard_thread;
mod turn_config;

use std::{net::SocketAddr, sync::Arc};

use clap::Parser;
use signaling::{AppState, SignalingConfig, token::KeyProvider};
use tracing::{error, info, warn};

fn init_logging(cfg: &config::Config) {
    let lib = &cfg.logging.pion_level;
    let filter = format!(
        "{lvl},rtc={lib},rtc_ice={lib},rtc_dtls={lib},rtc_sctp={lib},rtc_srtp={lib},rtc_interceptor={lib},\
         rtc_datachannel={lib},rtc_rtp={lib},rtc_rtcp={lib},rtc_sdp={lib},rtc_stun={lib},rtc_shared={lib},\
         hyper=warn,tungstenite=warn,tokio_tungstenite=warn",
        lvl = cfg.logging.level
    );
    let builder =
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter));
    if cfg.logging.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() {
    let cli = config::Cli::parse();
    let (cfg, notes) = match config::load(&cli, &|k| std::env::var(k).ok()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    init_logging(&cfg);
    for w in &notes.warnings {
        warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(serve(cfg)) {
        error!("{e}");
        std::process::exit(1);
    }
}

async fn serve(cfg: config::Config) -> std::io::Result<()> {
    let node_ip = cfg.advertised_ip();
    let udp_bind = cfg.udp_bind_ip();
    let ports: Vec<(SocketAddr, SocketAddr)> = cfg
        .rtc
        .udp_port
        .ports()
        .map(|p| (SocketAddr::new(udp_bind, p), SocketAddr::new(node_ip, p)))
        .collect();
    let shard_cfg = sfu_core::ShardConfig {
        empty_timeout: cfg.room.empty_timeout,
        departure_timeout: cfg.room.departure_timeout,
        max_participants: cfg.room.max_participants,
        enable_remote_unmute: cfg.room.enable_remote_unmute,
        force_relay: cfg.rtc.force_relay,
        ..Default::default()
    };
    info!(
        node_ip = %node_ip,
        udp_port = %cfg.rtc.udp_port,
        "advertising ICE host candidates {}",
        ports.iter().map(|(_, a)| a.to_string()).collect::<Vec<_>>().join(", ")
    );
    // Persistence and webhooks come up before any room can exist.
    let db = &cfg.database;
    let store = switchyard_store::Store::connect(
        &db.url,
        db.max_connections,
        std::time::Duration::from_secs(db.connect_timeout),
    )
    .await
    .map_err(|e| std::io::Error::other(format!("database.url: {e}")))?;
    info!(database = %store.url(), "database ready (migrations applied)");
    let notifier = if cfg.webhook.urls.is_empty() {
        None
    } else {
        let secret = cfg
            .keys
            .get(&cfg.webhook.api_key)
            .cloned()
            .unwrap_or_default();
        let nc = switchyard_webhook::NotifierConfig::new(
            cfg.webhook.urls.clone(),
            cfg.webhook.api_key.clone(),
            secret,
        );
        let n = switchyard_webhook::Notifier::start(store.clone(), nc)
            .map_err(|e| std::io::Error::other(format!("webhook: {e}")))?;
        info!(urls = ?cfg.webhook.urls, "webhooks enabled (durable outbox)");
        Some(n)
    };
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let events_task = events::spawn(store.clone(), notifier, events_rx);
    let shards = shard_thread::start(&ports, shard_cfg, events_tx).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot bind UDP port {}: {e}", cfg.rtc.udp_port),
        )
    })?;
    let shards = Arc::new(shards);
    let turn = match turn_config::server_config(&cfg) {
        Some(tc) => {
            let t = turn_server::start(tc)
                .await
                .map_err(|e| std::io::Error::other(format!("turn: {e}")))?;
            info!(listeners = ?t.local_addrs(), "embedded TURN server running");
            Some(t)
        }
        None => None,
    };
    let state = Arc::new(AppState {
        config: SignalingConfig {
            keys: KeyProvider::new(cfg.keys.clone()),
            auto_create: cfg.room.auto_create,
            ice: turn_config::ice_config(&cfg),
        },
        media: shards.clone(),
        http_sessions: Default::default(),
    });
    let app = signaling::router(state);
    let mut servers = Vec::new();
    for ip in cfg.http_binds() {
        let addr = SocketAddr::new(ip, cfg.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot bind {addr}: {e}")))?;
        info!(%addr, dev = cfg.development, "switchyard listening (HTTP/WebSocket)");
        let app = app.clone();
        servers.push(tokio::spawn(
            async move { axum::serve(listener, app).await },
        ));
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate() => {}
        r = futures_first(servers) => return r,
    }
    info!("shutting down: disconnecting participants");
    shards.shutdown(std::time::Duration::from_secs(2)).await;
    if let Some(t) = turn {
        info!(stats = %t.stats(), "stopping the TURN server");
        t.shutdown().await;
    }
    // Let the WebSocket tasks write the Leave and close frames.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The shard threads are gone, so the event channel closes once drained; pending
    // webhooks stay in the outbox for the next start.
    if let Ok(Ok(Some(n))) =
        tokio::time::timeout(std::time::Duration::from_secs(3), events_task).await
    {
        n.shutdown(std::time::Duration::from_secs(2)).await;
    }
    store.close().await;
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

async fn futures_first(
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> std::io::Result<()> {
    for s in servers {
        match s.await {
            Ok(r) => r?,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    Ok(())
}
