"""``keyless dev`` as a user runs it: ``--once`` plays the seed scenario end to end from an empty
data directory and exits 0; a busy port is reported with the flag that changes it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests._support.net import free_ports

REPO = Path(__file__).resolve().parents[2]


def _dev(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    authority, metadata, api = free_ports(3)
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_APPLICATION_CREDENTIALS"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "keyless",
            "dev",
            "--data-dir",
            str(tmp_path),
            "--authority-port",
            str(authority),
            "--metadata-port",
            str(metadata),
            "--api-port",
            str(api),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**env, "COLUMNS": "160"},
    )


def test_dev_once_plays_the_seed_scenario_and_exits_zero(tmp_path: Path) -> None:
    result = _dev(tmp_path, "--once")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scenario passed" in result.stdout
    assert "AADSTS700212" in result.stdout  # the deliberately refused call, and its explanation
    env_file = (tmp_path / "dev.env").read_text()
    assert "GCE_METADATA_HOST=" in env_file and "AZURE_CLIENT_ID=" in env_file
    assert "Traceback" not in result.stderr


def test_dev_reports_a_busy_port_with_the_flag_to_change_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "keyless",
                "dev",
                "--data-dir",
                str(tmp_path),
                "--once",
                "--authority-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
    assert result.returncode == 2
    assert "busy" in result.stderr and "--authority-port" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_every_server_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    authority, metadata, api = free_ports(3)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyless",
            "dev",
            "--data-dir",
            str(tmp_path),
            "--authority-port",
            str(authority),
            "--metadata-port",
            str(metadata),
            "--api-port",
            str(api),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "160"},
    )
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "dev.env").exists() or "serving" not in _peek(tmp_path):
            assert process.poll() is None and time.monotonic() < deadline, "keyless dev did not come up"
            time.sleep(0.3)
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopping" in out
    assert "Traceback" not in err
    # the console's address and where its sign-in key is, as the README's tour says
    assert f"https://localhost:{authority}/console" in out
    assert f"sign in with the key in {(tmp_path / 'admin.key').resolve()}" in " ".join(out.split())
    for port in (authority, metadata, api):  # every port is free again
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def _peek(tmp_path: Path) -> str:
    """`keyless dev` writes dev.env once the stack is up and the scenario has been played."""
    return "serving" if (tmp_path / "dev.env").stat().st_size > 0 else ""
