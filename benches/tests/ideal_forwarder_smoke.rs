//! Smoke run of the two benchmark binaries together: `ideal_forwarder` on loopback,
//! measured by `loadgen` (1 publisher, 2 subscribers, 2 s) the way it measures any
//! WHIP/WHEP server: URL templates, per-peer tokens, `--server-pid`. Both binaries belong
//! to this package, so this always runs; it asserts delivery and the report's shape,
//! never timing.

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn loadgen_measures_the_ideal_forwarder() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut fwd = Killed(
        Command::new(env!("CARGO_BIN_EXE_ideal_forwarder"))
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ideal_forwarder starts"),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            fwd.0.try_wait().expect("status").is_none(),
            "ideal_forwarder exited"
        );
        assert!(Instant::now() < end, "ideal_forwarder does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let json = std::env::temp_dir().join(format!("ideal-smoke-{}.json", std::process::id()));
    let base = format!("http://127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("fanout")
        .args(["--whip-url", &format!("{base}/whip/v1")])
        .args([
            "--whep-url",
            &format!("{base}/whep/v1?participant={{stream}}"),
        ])
        .args(["--token-key", "k", "--token-secret", "s"])
        .args(["--server-pid", &fwd.0.id().to_string()])
        .args(["--publishers", "1", "--subscribers", "2", "--audio"])
        .args(["--duration", "2s", "--connect-timeout", "20s"])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "loadgen failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let body = std::fs::read_to_string(&json).expect("JSON report written");
    let _ = std::fs::remove_file(&json);
    let r: serde_json::Value = serde_json::from_str(&body).expect("JSON parses");
    assert_eq!(r["server"], "ideal_forwarder", "{body}");
    assert_eq!(r["subscribers_ready"], 2, "{body}\n{stderr}");
    assert!(
        r["packets_delivered"].as_u64().is_some_and(|n| n > 0),
        "{body}\n{stderr}"
    );
    assert!(r["server_cpu_s"].is_number(), "{body}");
    println!("{stdout}");
}
