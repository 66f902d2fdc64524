"""Every example runs against a live `keyless dev` stack, as a user would run it: a separate
process with the environment from `dev.env` (the CA, the metadata host, the tenant and client)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._services import services_required
from tests._support.net import free_ports

from keyless.dev._stack import DevPorts, DevStack, run_stack
from keyless.guard import load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    ports = DevPorts(*free_ports(3))
    with run_stack(tmp_path_factory.mktemp("dev"), EXAMPLES / "trust.yaml", ports) as stack:
        yield stack


def _environment(dev: DevStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK")}
    return {**env, **dev.client_environment()}


@pytest.mark.parametrize("script", ["seed_msal.py", "seed_azure_identity.py", "seed_keyless_credential.py"])
def test_python_example_runs_the_seed_flow(dev: DevStack, script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(dev),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote" in result.stdout or "blobs now" in result.stdout


@pytest.mark.node
def test_node_example_runs_the_seed_flow(dev: DevStack) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if services_required():
            pytest.fail("node and npm are required here (CI or KEYLESS_REQUIRE_SERVICES=1)")
        pytest.skip("node/npm not available: the msal-node example is skipped")
    folder = EXAMPLES / "node"
    if not (folder / "node_modules" / "@azure" / "msal-node").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, capture_output=True, timeout=180
        )
    result = subprocess.run(
        ["node", "seed.mjs"], cwd=folder, capture_output=True, text=True, timeout=60, env=_environment(dev)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote from-msal-node.txt" in result.stdout


@pytest.mark.parametrize("config", ["guard-entra.yaml", "guard-google-cloud-run.yaml"])
def test_guard_example_configs_are_valid(config: str) -> None:
    assert load_config(EXAMPLES / config).issuers
