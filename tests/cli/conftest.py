"""Fixtures for the CLI tests: one real HTTPS authority (development mode, so it trusts the http
test issuer on loopback) and one test issuer per module, and ``cli`` to run ``keyless`` through
typer's runner against that authority's data directory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests._support.authority_server import RunningAuthority, run_authority
from tests._support.oidc_issuer import TestIssuer
from typer.testing import CliRunner, Result

from keyless.cli import app


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAuthority]:
    data_dir = tmp_path_factory.mktemp("authority")
    with run_authority(data_dir, dev_mode=True, allow_http_loopback_issuers=True) as running:
        yield running


@dataclass
class Cli:
    """``keyless ARGS`` in-process, finding the authority through its data directory."""

    data_dir: Path

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        result = runner.invoke(
            app, list(args), input=input, env={"KEYLESS_DATA_DIR": str(self.data_dir), **(env or {})}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback would have reached the user: fail loudly
        return result


@pytest.fixture
def cli(live: RunningAuthority) -> Cli:
    return Cli(live.data_dir)


@dataclass(frozen=True)
class Names:
    """Fresh ids for one test, so tests share the module's authority without meeting."""

    tenant_id: str
    domain: str
    api_app: str
    caller_app: str


@pytest.fixture
def names() -> Names:
    short = uuid.uuid4().hex[:8]
    return Names(str(uuid.uuid4()), f"t{short}.example", str(uuid.uuid4()), str(uuid.uuid4()))
