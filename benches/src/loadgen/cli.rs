//! The `loadgen` command line: `fanout` (one point) and `sweep` (several subscriber
//! counts in a row), sharing every option that describes the load, the target and the
//! output.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use super::units::{parse_bitrate, parse_count, parse_duration};

/// WHIP/WHEP load generator: server CPU per forwarded packet, loss and latency.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One measurement: P publishers, S subscribers.
    Fanout(FanoutArgs),
    /// Several measurements with growing subscriber counts (fresh sessions for each);
    /// writes a JSON array and an SVG chart.
    Sweep(SweepArgs),
}

/// `fanout`.
#[derive(Debug, Args)]
pub struct FanoutArgs {
    /// Subscribers (WHEP), spread round-robin over the publishers.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Everything else.
    #[command(flatten)]
    pub common: Common,
}

/// `sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Subscriber counts, comma-separated.
    #[arg(long, value_parser = parse_count, value_delimiter = ',', default_value = "10,50,100,200")]
    pub subscribers: Vec<usize>,
    /// Write the chart (CPU µs per packet and loss % against subscribers) here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Pause between points, so the server settles after the DELETEs.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub pause: Duration,
    /// Everything else.
    #[command(flatten)]
    pub common: Common,
}

/// Options of both subcommands.
#[derive(Debug, Args)]
pub struct Common {
    /// Publishers (WHIP), `pub0`, `pub1`, ...
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Video payload bit rate per publisher, e.g. 2500k, 2.5M.
    #[arg(long, value_parser = parse_bitrate, default_value = "2500k")]
    pub bitrate: u64,
    /// Video frames per second.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Video RTP payload bytes per packet.
    #[arg(long, default_value_t = 1100)]
    pub packet_size: usize,
    /// Also send Opus-shaped audio (one packet per 20 ms).
    #[arg(long)]
    pub audio: bool,
    /// Audio RTP payload bytes per packet.
    #[arg(long, default_value_t = 100)]
    pub audio_size: usize,
    /// Keyframe interval (keyframes also follow every PLI/FIR).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub keyframe_interval: Duration,
    /// Send each video frame's packets in one burst instead of pacing them evenly over the
    /// frame interval (the worst case for latency: the server fans out a whole frame at once).
    #[arg(long)]
    pub burst: bool,
    /// Length of the measured window.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub duration: Duration,
    /// WHIP endpoint; `{stream}` becomes the publisher's name (pub0, ...), `{room}` the room.
    #[arg(long)]
    pub whip_url: Option<String>,
    /// WHEP endpoint; `{stream}` is the publisher a subscriber plays.
    #[arg(long)]
    pub whep_url: Option<String>,
    /// Send this bearer token on every request (servers with a fixed token).
    #[arg(long, conflicts_with_all = ["token_key", "token_secret"])]
    pub bearer: Option<String>,
    /// LiveKit API key: mint a token per peer (identity pub0/sub0..., room --room).
    #[arg(long, requires = "token_secret")]
    pub token_key: Option<String>,
    /// LiveKit API secret.
    #[arg(long, requires = "token_key")]
    pub token_secret: Option<String>,
    /// Room the tokens grant (and `{room}` in the URLs).
    #[arg(long, default_value = "bench")]
    pub room: String,
    /// Local address for the peers' sockets (default: the one that routes to the server).
    #[arg(long)]
    pub local_ip: Option<IpAddr>,
    /// Subscribers started per second.
    #[arg(long, default_value_t = 20.0)]
    pub ramp_per_sec: f64,
    /// Longest wait for publishers to connect and for subscribers to receive media.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub connect_timeout: Duration,
    /// PID of the server to measure (CPU, RSS); without it those columns stay blank.
    #[arg(long, conflicts_with = "spawn_server")]
    pub server_pid: Option<u32>,
    /// Start this `switchyard` binary for the run (on --local-ip, default 127.0.0.1),
    /// measure it, and stop it at the end.
    #[arg(long)]
    pub spawn_server: Option<PathBuf>,
    /// HTTP port of the spawned server (default: a free one).
    #[arg(long, requires = "spawn_server")]
    pub server_port: Option<u16>,
    /// UDP port of the spawned server (default: a free one).
    #[arg(long, requires = "spawn_server")]
    pub server_udp_port: Option<u16>,
    /// Write the figures as JSON (an object for fanout, an array for sweep).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_invocation_parses() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "fanout",
            "--publishers",
            "1",
            "--subscribers",
            "50",
            "--bitrate",
            "2500k",
            "--duration",
            "20s",
            "--whip-url",
            "http://10.200.0.1:7880/whip/v1",
            "--whep-url",
            "http://10.200.0.1:7880/whep/v1?participant={stream}",
            "--token-key",
            "devkey",
            "--token-secret",
            "secret",
            "--room",
            "bench",
            "--server-pid",
            "1234",
        ])
        .expect("parses");
        let Command::Fanout(f) = cli.command else {
            panic!("fanout expected")
        };
        assert_eq!(f.subscribers, 50);
        assert_eq!(f.common.bitrate, 2_500_000);
        assert_eq!(f.common.duration, Duration::from_secs(20));
        assert_eq!(f.common.server_pid, Some(1234));
    }

    #[test]
    fn sweep_lists_and_conflicts() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "sweep",
            "--subscribers",
            "10,50,100",
            "--svg",
            "x.svg",
        ])
        .expect("parses");
        let Command::Sweep(s) = cli.command else {
            panic!("sweep expected")
        };
        assert_eq!(s.subscribers, vec![10, 50, 100]);
        assert!(
            Cli::try_parse_from([
                "loadgen",
                "fanout",
                "--bearer",
                "t",
                "--token-key",
                "k",
                "--token-secret",
                "s"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["loadgen", "fanout", "--token-key", "k"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "fanout", "--bitrate", "fast"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "sweep", "--subscribers", "10,0"]).is_err());
    }
}
