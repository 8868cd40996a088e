"""A bad configuration value stops the server with exit status 1 and one error line that names
the key (the binary is run directly; nothing is bound when the configuration is invalid)."""

import subprocess

from conftest import _bin_path

CASES = {
    "rtc:\n  udp_port: abc": "rtc.udp_port",
    "port: -1": "port",
    "rtc:\n  node_ip: not-an-ip": "rtc.node_ip",
    "room:\n  departure_timeout: soon": "room.departure_timeout",
    "logging:\n  level: loud": "logging.level",
}


def test_bad_config_values_name_the_key(note):
    for body, key in CASES.items():
        r = subprocess.run(
            [str(_bin_path()), "--keys", "k: " + "s" * 40, "--config-body", body],
            capture_output=True,
            text=True,
            timeout=20,
        )
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        note(f"config error for {key}", lines)
        assert r.returncode == 1, (key, r.returncode, r.stderr)
        assert len(lines) == 1 and key in lines[0], (key, r.stderr)


def test_missing_keys_is_an_error():
    r = subprocess.run([str(_bin_path())], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "keys" in r.stderr
