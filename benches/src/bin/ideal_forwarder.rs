//! `ideal_forwarder`: a WHIP/WHEP server that only decrypts and re-encrypts, the baseline
//! `loadgen` measures Switchyard against. See benches/README.md ("Ideal forwarder").

use std::{net::IpAddr, process::ExitCode};

use clap::Parser;
use switchyard_benches::ideal::{forwarder::Forwarder, http};

/// WHIP/WHEP forwarder without SFU logic (a benchmark baseline, not a server).
#[derive(Debug, Parser)]
#[command(name = "ideal_forwarder", version)]
struct Args {
    /// Address for HTTP and for every media socket.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// HTTP port.
    #[arg(long, default_value_t = 7890)]
    port: u16,
    /// UDP port every connection shares (0: any free port).
    #[arg(long, default_value_t = 0)]
    media_port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ideal_forwarder: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async move {
        let listener = tokio::net::TcpListener::bind((args.bind, args.port))
            .await
            .map_err(|e| format!("cannot bind {}:{}: {e}", args.bind, args.port))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut forwarder = Forwarder::bind(args.bind, args.media_port)
            .map_err(|e| format!("media socket: {e}"))?;
        eprintln!(
            "ideal_forwarder: http://{}:{}, media udp {} (pid {})",
            args.bind,
            args.port,
            forwarder.media_addr(),
            std::process::id()
        );
        let http = axum::serve(listener, http::router(tx));
        tokio::select! {
            r = http => r.map_err(|e| format!("http: {e}")),
            () = forwarder.run(rx) => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
        .map(|()| forwarder.counters)
    });
    match result {
        Ok(c) => {
            eprintln!(
                "ideal_forwarder: received {} RTP packets, forwarded {}, datagrams out {} in {} sendmmsg calls, unrouted {}, errors {}",
                c.received, c.forwarded, c.datagrams_out, c.send_calls, c.unrouted, c.errors
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ideal_forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}
