"""Fixtures for the authority's tests: a running HTTPS authority, a test OIDC issuer, and the seed
scenario's directory (a resource API with roles, a caller whose federated credential trusts the issuer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.oidc_issuer import TestIssuer


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningAuthority]:
    # The test issuer serves plain http on 127.0.0.1, which only development mode accepts.
    with run_authority(tmp_path / "authority", dev_mode=True, allow_http_loopback_issuers=True) as running:
        # requests (under MSAL and azure-core) lets these variables override ``verify=``, and this
        # machine points them at the system bundle: set them to keyless's CA explicitly.
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
            monkeypatch.setenv(name, str(running.ca_file))
        yield running


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
def federation(authority: RunningAuthority, issuer: TestIssuer) -> Federation:
    return seed_federation(authority.admin, issuer=issuer.url)
