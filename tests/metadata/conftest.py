"""Fixtures for the metadata emulator's tests: one running emulator per module (default
configuration) and a way to run unmodified google-auth against it in a subprocess."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.metadata._google_client import run_google_auth

from keyless.metadata import MetadataServer

GoogleAuth = Callable[..., list[dict[str, Any]]]
FLAVOR = {"Metadata-Flavor": "Google"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[MetadataServer]:
    with MetadataServer() as server:
        yield server


@pytest.fixture(scope="module")
def client(emulator: MetadataServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def google_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("google-home")


@pytest.fixture(scope="module")
def google_auth(google_home: Path) -> GoogleAuth:
    """``google_auth(server, steps)``: run google-auth steps against ``server`` in a subprocess."""

    def run(server: MetadataServer, steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return run_google_auth(server.host_port, steps, home=google_home)

    return run
