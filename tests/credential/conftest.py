"""Fixtures for the credential's tests: a real HTTPS authority with the seed scenario's directory,
a real OIDC issuer, and a programmable stand-in token endpoint sharing a local CA."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.oidc_issuer import TestIssuer
from tests.credential._standin import StandIn

from keyless.tls import TLSFiles, ensure_local_tls

SUBJECT = "112233445566778899001"


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningAuthority]:
    # The test issuer serves plain http on 127.0.0.1, which only development mode accepts.
    with run_authority(tmp_path / "authority", dev_mode=True, allow_http_loopback_issuers=True) as running:
        # requests (under azure-core) lets these override ``verify=``; this machine points them at
        # the system bundle: set them to keyless's CA explicitly.
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.setenv(name, str(running.ca_file))
        yield running


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
def federation(authority: RunningAuthority, issuer: TestIssuer) -> Federation:
    return seed_federation(authority.admin, issuer=issuer.url, subject=SUBJECT)


@pytest.fixture(scope="session")
def standin_tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return ensure_local_tls(tmp_path_factory.mktemp("standin-tls"))


@pytest.fixture(scope="session")
def standin_ca(standin_tls: TLSFiles) -> ssl.SSLContext:
    assert standin_tls.ca_cert is not None
    return ssl.create_default_context(cafile=str(standin_tls.ca_cert))


@pytest.fixture
def standin(standin_tls: TLSFiles) -> Iterator[StandIn]:
    with StandIn(standin_tls) as endpoint:
        yield endpoint
