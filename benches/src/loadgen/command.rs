//! Carries out a parsed command line: resolves the target (given URLs or a spawned
//! server), the local address and the authorization, runs the fanout point(s), and writes
//! the table (stdout), JSON and SVG. Must run inside a `tokio::task::LocalSet`.

use std::{
    net::{IpAddr, Ipv4Addr, ToSocketAddrs},
    path::Path,
    time::Duration,
};

use super::{
    auth::Auth,
    cli::{Cli, Command, Common},
    publisher::MediaConfig,
    report::{self, RunReport},
    run::{self, FanoutConfig},
    server::SpawnedServer,
    svg,
    units::format_bitrate,
};

/// The command failed (the message says what to fix).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(String);

impl From<run::RunError> for CommandError {
    fn from(e: run::RunError) -> Self {
        Self(e.to_string())
    }
}

impl From<super::server::ServerError> for CommandError {
    fn from(e: super::server::ServerError) -> Self {
        Self(e.to_string())
    }
}

fn err(msg: impl Into<String>) -> CommandError {
    CommandError(msg.into())
}

/// The local address whose route reaches the host of `url` (no packet is sent).
fn route_to(url: &str) -> Result<IpAddr, CommandError> {
    let u = reqwest::Url::parse(url).map_err(|e| err(format!("bad URL {url:?}: {e}")))?;
    let host = u
        .host_str()
        .ok_or_else(|| err(format!("no host in {url:?}")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = u.port_or_known_default().unwrap_or(80);
    let remote = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| err(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| err(format!("{host} has no address")))?;
    let any: IpAddr = if remote.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let s = std::net::UdpSocket::bind((any, 0)).map_err(|e| err(e.to_string()))?;
    s.connect(remote)
        .map_err(|e| err(format!("no route to {remote}: {e}")))?;
    Ok(s.local_addr().map_err(|e| err(e.to_string()))?.ip())
}

/// The target of a run.
struct Target {
    whip_url: String,
    whep_url: String,
    local_ip: IpAddr,
    auth: Auth,
    server_pid: Option<u32>,
    /// Kept alive for the whole command; killed on drop.
    _server: Option<SpawnedServer>,
}

async fn target(c: &Common) -> Result<Target, CommandError> {
    let mut server = None;
    let (whip_url, whep_url, local_ip, server_pid) = match &c.spawn_server {
        Some(bin) => {
            let ip = c.local_ip.unwrap_or(Ipv4Addr::LOCALHOST.into());
            let mut s = SpawnedServer::start(bin, ip, c.server_port, c.server_udp_port)?;
            s.wait_ready(Duration::from_secs(20)).await?;
            eprintln!(
                "spawned {} (pid {}, http {}, udp {})",
                bin.display(),
                s.pid,
                s.http_port,
                s.udp_port
            );
            let urls = (
                c.whip_url.clone().unwrap_or_else(|| s.whip_url()),
                c.whep_url.clone().unwrap_or_else(|| s.whep_url()),
            );
            let pid = s.pid;
            server = Some(s);
            (urls.0, urls.1, ip, Some(pid))
        }
        None => {
            let whip = c
                .whip_url
                .clone()
                .ok_or_else(|| err("--whip-url is required (or --spawn-server)"))?;
            let whep = c
                .whep_url
                .clone()
                .ok_or_else(|| err("--whep-url is required (or --spawn-server)"))?;
            let ip = match c.local_ip {
                Some(ip) => ip,
                None => route_to(&whip)?,
            };
            (whip, whep, ip, c.server_pid)
        }
    };
    if let Some(pid) = server_pid {
        let name = super::procstat::command_name(super::procstat::Pid::Of(pid))
            .ok_or_else(|| err(format!("--server-pid {pid}: no such process")))?;
        eprintln!("measuring server pid {pid} ({name})");
    }
    let auth = match (&c.bearer, &c.token_key, &c.token_secret) {
        (Some(t), _, _) => Auth::Bearer(t.clone()),
        (None, Some(key), Some(secret)) => Auth::LiveKit {
            key: key.clone(),
            secret: secret.clone(),
            room: c.room.clone(),
        },
        // Our own server in --dev mode has these keys.
        _ if server.is_some() => Auth::LiveKit {
            key: "devkey".into(),
            secret: "secret".into(),
            room: c.room.clone(),
        },
        _ => Auth::None,
    };
    Ok(Target {
        whip_url,
        whep_url,
        local_ip,
        auth,
        server_pid,
        _server: server,
    })
}

fn config(c: &Common, t: &Target, subscribers: usize) -> Result<FanoutConfig, CommandError> {
    if c.publishers == 0 {
        return Err(err("--publishers must be at least 1"));
    }
    if c.fps == 0 || c.packet_size < 64 || c.packet_size > 1400 {
        return Err(err("--fps must be > 0 and --packet-size within 64..=1400"));
    }
    if c.ramp_per_sec <= 0.0 {
        return Err(err("--ramp-per-sec must be > 0"));
    }
    Ok(FanoutConfig {
        publishers: c.publishers,
        subscribers,
        media: MediaConfig {
            bitrate_bps: c.bitrate,
            fps: c.fps,
            packet_size: c.packet_size,
            audio: c.audio,
            audio_size: c.audio_size.clamp(40, 1200),
            keyframe_interval: c.keyframe_interval,
            paced: !c.burst,
        },
        duration: c.duration,
        whip_url: t.whip_url.clone(),
        whep_url: t.whep_url.clone(),
        room: c.room.clone(),
        auth: t.auth.clone(),
        local_ip: t.local_ip,
        ramp_per_sec: c.ramp_per_sec,
        connect_timeout: c.connect_timeout,
        server_pid: t.server_pid,
    })
}

fn write_file(path: &Path, body: &str) -> Result<(), CommandError> {
    std::fs::write(path, body).map_err(|e| err(format!("writing {}: {e}", path.display())))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, CommandError> {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| err(e.to_string()))
}

/// Runs the command.
pub async fn execute(cli: Cli) -> Result<(), CommandError> {
    match cli.command {
        Command::Fanout(f) => {
            let t = target(&f.common).await?;
            let cfg = config(&f.common, &t, f.subscribers)?;
            eprintln!(
                "fanout: {} publisher(s) x {} subscriber(s), {}, {:?} window",
                cfg.publishers,
                cfg.subscribers,
                format_bitrate(cfg.media.bitrate_bps),
                cfg.duration
            );
            let r = run::fanout(cfg).await?;
            print!("{}", report::table(std::slice::from_ref(&r)));
            if let Some(p) = &f.common.json {
                write_file(p, &to_json(&r)?)?;
            }
            Ok(())
        }
        Command::Sweep(s) => {
            let t = target(&s.common).await?;
            let mut runs: Vec<RunReport> = Vec::new();
            for (i, &n) in s.subscribers.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(s.pause).await;
                }
                let cfg = config(&s.common, &t, n)?;
                eprintln!(
                    "sweep point {}/{}: {} publisher(s) x {n} subscriber(s)",
                    i + 1,
                    s.subscribers.len(),
                    cfg.publishers
                );
                let r = run::fanout(cfg).await?;
                eprint!("{}", report::table(std::slice::from_ref(&r)));
                runs.push(r);
            }
            print!("{}", report::table(&runs));
            if let Some(p) = &s.common.json {
                write_file(p, &to_json(&runs)?)?;
            }
            if let Some(p) = &s.svg {
                let title = format!(
                    "{} publisher(s), {} video ({}){}",
                    s.common.publishers,
                    format_bitrate(s.common.bitrate),
                    if s.common.burst { "burst" } else { "paced" },
                    if s.common.audio { " + audio" } else { "" }
                );
                write_file(p, &svg::chart(&runs, &title))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_routes_to_loopback() {
        assert_eq!(
            route_to("http://127.0.0.1:7880/whip/v1").expect("route"),
            IpAddr::from(Ipv4Addr::LOCALHOST)
        );
        assert!(route_to("not a url").is_err());
    }
}
