//! Smoke run of `loadgen` end to end: it spawns the `switchyard` binary built next to it
//! (same target directory and profile) on loopback, publishes over WHIP to three WHEP
//! subscribers for a few seconds, and must finish with media delivered and a JSON report.
//! It proves the generator works; it never judges timing or CPU figures.
//!
//! The server binary is not built by this test: without it the test says so and passes,
//! unless `SWITCHYARD_REQUIRE_BENCH_SMOKE=1` (then a missing binary fails it).

use std::{path::PathBuf, process::Command};

fn server_binary() -> Option<PathBuf> {
    let loadgen = PathBuf::from(env!("CARGO_BIN_EXE_loadgen"));
    let dir = loadgen.parent()?;
    let bin = dir.join(format!("switchyard{}", std::env::consts::EXE_SUFFIX));
    bin.exists().then_some(bin)
}

#[test]
fn fanout_against_a_spawned_server_delivers_media() {
    let Some(server) = server_binary() else {
        let required = std::env::var("SWITCHYARD_REQUIRE_BENCH_SMOKE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "SWITCHYARD_REQUIRE_BENCH_SMOKE=1 but the switchyard binary is not built next to loadgen \
             (cargo build -p switchyard)"
        );
        eprintln!(
            "skipping the loadgen smoke run: build the server first (cargo build -p switchyard)"
        );
        return;
    };
    let json = std::env::temp_dir().join(format!("loadgen-smoke-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("fanout")
        .arg("--spawn-server")
        .arg(&server)
        .args(["--local-ip", "127.0.0.1"])
        .args(["--publishers", "1", "--subscribers", "3"])
        .args(["--duration", "3s", "--ramp-per-sec", "50"])
        .args(["--connect-timeout", "20s"])
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
    let r: serde_json::Value = serde_json::from_str(&body).expect("JSON report parses");
    assert_eq!(r["publishers"], 1, "{body}");
    assert_eq!(r["subscribers"], 3, "{body}");
    let delivered = r["packets_delivered"].as_u64().expect("packets_delivered");
    assert!(delivered > 0, "nothing delivered:\n{body}\n{stderr}");
    assert!(
        r["packets_offered"].as_u64().is_some_and(|n| n > 0),
        "{body}"
    );
    // The spawned server's PID was measured, so the server columns are filled.
    assert!(r["server_cpu_s"].is_number(), "{body}");
    assert!(r["server_rss_mib"].is_number(), "{body}");
    assert!(stdout.contains("srv µs/pkt"), "table on stdout:\n{stdout}");
    println!("{stdout}");
}
