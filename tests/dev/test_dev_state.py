"""``keyless dev``'s state: one stack per data directory, the seed applied to a new directory only
(a restart keeps the user's edits unless ``--reseed``), inputs checked before anything starts, and
port 0 meaning "pick a free port" everywhere (URLs and dev.env)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests._support.net import free_ports

from keyless.dev._stack import DevPorts, run_stack
from keyless.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "trust.yaml"


def test_a_second_stack_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    with run_stack(tmp_path, SEED, DevPorts(*free_ports(3))) as first:
        second = run_stack(tmp_path, SEED, DevPorts(*free_ports(3)))
        with pytest.raises(ConfigurationError, match="another keyless dev"), second:
            pass
        env_file = first.env_file.read_text()
        assert first.authority_url in env_file  # the running stack's files were left alone
    with run_stack(tmp_path, SEED, DevPorts(*free_ports(3))) as again:  # free once the first stopped
        assert again.authority_url != first.authority_url


def test_a_restart_keeps_the_users_edits_and_reseed_applies_the_seed_again(tmp_path: Path) -> None:
    with run_stack(tmp_path, SEED, DevPorts(*free_ports(3))) as first:
        assert "change(s) applied" in first.seeded
        app = first.authority.admin.find_application(first.tenant_id, first.client_id)
        (fic,) = first.authority.admin.list_fics(app)
        first.authority.admin.delete_fic(app, fic.name)
    with run_stack(tmp_path, SEED, DevPorts(*free_ports(3))) as restarted:
        assert "keeping your changes (1 difference(s)" in restarted.seeded
        app = restarted.authority.admin.find_application(restarted.tenant_id, restarted.client_id)
        assert restarted.authority.admin.list_fics(app) == []
    with run_stack(tmp_path, SEED, DevPorts(*free_ports(3)), reseed=True) as reseeded:
        app = reseeded.authority.admin.find_application(reseeded.tenant_id, reseeded.client_id)
        assert [f.name for f in reseeded.authority.admin.list_fics(app)] == [fic.name]


def test_port_0_picks_free_ports_and_the_urls_and_dev_env_carry_them(tmp_path: Path) -> None:
    with run_stack(tmp_path, SEED, DevPorts(0, 0, 0)) as stack:
        for url in (stack.authority_url, stack.api_url, f"http://{stack.metadata_host}"):
            assert not url.endswith(":0"), url
        trust = ssl.create_default_context(cafile=str(stack.ca_file))
        assert httpx.get(f"{stack.authority_url}/healthz", verify=trust).status_code == 200
        assert f"KEYLESS_AUTHORITY_HOST={stack.authority_url}" in stack.env_file.read_text()


def test_a_bad_trust_file_is_reported_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants:\n  - displayName: x\n    applications: [{displayName: 1, bogus: true}]\n")
    (port,) = free_ports(1)
    with socket.socket() as busy:  # the authority's port is taken: the trust file is still what fails
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = subprocess.run(
            [sys.executable, "-m", "keyless", "dev", "--data-dir", str(tmp_path / "d"), "--once",
             "--trust", str(bad), "--authority-port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )  # fmt: skip
    assert result.returncode == 2
    assert "bad.yaml:" in result.stderr and "--authority-port" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d" / "keyless.db").exists()
