"""A running authority with the seed scenario, and a signed-in HTTP client for its console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests._support.authority_server import Federation, RunningAuthority, run_authority, seed_federation
from tests._support.console import sign_in
from tests._support.oidc_issuer import TestIssuer


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[RunningAuthority]:
    with run_authority(tmp_path / "authority", dev_mode=True, allow_http_loopback_issuers=True) as running:
        yield running


@pytest.fixture
def federation(authority: RunningAuthority, issuer: TestIssuer) -> Federation:
    return seed_federation(authority.admin, issuer=issuer.url)


@pytest.fixture
def browser_client(authority: RunningAuthority) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, as a browser does (not signed in)."""
    with httpx.Client(base_url=authority.base_url, verify=authority.ssl_context(), timeout=15) as client:
        yield client


@pytest.fixture
def console(
    browser_client: httpx.Client, authority: RunningAuthority, federation: Federation
) -> httpx.Client:
    """Signed in, with the seed scenario in the directory."""
    response = sign_in(browser_client, authority.admin_key())
    assert response.status_code == 303, response.text
    return browser_client


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Each phase's report on the test item, so a fixture can screenshot a failed test's page."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report
