//! `--spawn-server`: starts a `switchyard` binary for the run and stops it afterwards, so
//! a smoke run or a quick measurement needs nothing else. The server gets its own HTTP and
//! UDP ports (free ones unless given), quiet logs (logging is server CPU too), a
//! throw-away SQLite file, and the development keys `devkey`/`secret`.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The binary could not be run.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: String,
        /// Why.
        source: std::io::Error,
    },
    /// No free port, no temp dir.
    #[error("{0}")]
    Setup(String),
    /// It exited or never listened.
    #[error("{what}; end of the server log:\n{log}")]
    NotReady {
        /// What happened.
        what: String,
        /// The end of its log.
        log: String,
    },
}

/// A running server started by us; killed on drop.
pub struct SpawnedServer {
    child: Child,
    /// Its PID, to measure.
    pub pid: u32,
    /// Address everything binds to and is advertised on.
    pub ip: IpAddr,
    /// HTTP port.
    pub http_port: u16,
    /// The UDP port for all WebRTC traffic.
    pub udp_port: u16,
    dir: PathBuf,
}

fn free_port(ip: IpAddr, udp: bool) -> Result<u16, ServerError> {
    let addr = SocketAddr::new(ip, 0);
    let port = if udp {
        std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(addr).and_then(|s| s.local_addr())
    }
    .map_err(|e| ServerError::Setup(format!("no free port on {ip}: {e}")))?
    .port();
    Ok(port)
}

/// The `--config-body` the server is started with.
pub fn config_body(http_port: u16, db_path: &Path) -> String {
    format!(
        "port: {http_port}\nlogging:\n  level: warn\n  pion_level: error\ndatabase:\n  url: \"sqlite://{}?mode=rwc\"\n",
        db_path.display()
    )
}

impl SpawnedServer {
    /// Starts `bin` on `ip` (ports: the given ones or free ones).
    pub fn start(
        bin: &Path,
        ip: IpAddr,
        http_port: Option<u16>,
        udp_port: Option<u16>,
    ) -> Result<Self, ServerError> {
        let http_port = match http_port {
            Some(p) => p,
            None => free_port(ip, false)?,
        };
        let udp_port = match udp_port {
            Some(p) => p,
            None => free_port(ip, true)?,
        };
        let dir = std::env::temp_dir().join(format!(
            "switchyard-loadgen-{}-{http_port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServerError::Setup(format!("{}: {e}", dir.display())))?;
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| ServerError::Setup(format!("{}: {e}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ServerError::Setup(format!("{}: {e}", log_path.display())))?;
        // The server runs in its own directory: a relative path must not change meaning.
        let bin = &std::path::absolute(bin).map_err(|source| ServerError::Spawn {
            bin: bin.display().to_string(),
            source,
        })?;
        let child = Command::new(bin)
            .arg("--dev")
            .args(["--bind", &ip.to_string()])
            .args(["--node-ip", &ip.to_string()])
            .args(["--udp-port", &udp_port.to_string()])
            .args([
                "--config-body",
                &config_body(http_port, &dir.join("bench.db")),
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir(&dir)
            .spawn()
            .map_err(|source| ServerError::Spawn {
                bin: bin.display().to_string(),
                source,
            })?;
        Ok(Self {
            pid: child.id(),
            child,
            ip,
            http_port,
            udp_port,
            dir,
        })
    }

    /// The last lines of the server's log (it is deleted with the server).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until the HTTP port accepts connections.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), ServerError> {
        let end = Instant::now() + timeout;
        let addr = SocketAddr::new(self.ip, self.http_port);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(ServerError::NotReady {
                    what: format!("server exited ({status})"),
                    log: self.log_tail(),
                });
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(ServerError::NotReady {
                    what: format!("server not listening on {addr} after {timeout:?}"),
                    log: self.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn base(&self) -> String {
        match self.ip {
            IpAddr::V4(v4) => format!("http://{v4}:{}", self.http_port),
            IpAddr::V6(v6) => format!("http://[{v6}]:{}", self.http_port),
        }
    }

    /// The WHIP URL template.
    pub fn whip_url(&self) -> String {
        format!("{}/whip/v1", self.base())
    }

    /// The WHEP URL template (plays publisher `{stream}`).
    pub fn whep_url(&self) -> String {
        format!("{}/whep/v1?participant={{stream}}", self.base())
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_quiet_and_private() {
        let c = config_body(18080, Path::new("/tmp/x/bench.db"));
        assert!(c.contains("port: 18080\n"));
        assert!(c.contains("level: warn"));
        assert!(c.contains("sqlite:///tmp/x/bench.db?mode=rwc"));
    }

    #[test]
    fn free_ports_differ_from_the_defaults_usually() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        assert!(free_port(ip, true).expect("udp") > 0);
        assert!(free_port(ip, false).expect("tcp") > 0);
    }
}
