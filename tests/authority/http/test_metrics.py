"""The authority's ``/metrics``: behind the admin key, counts by tenant, client and AADSTS code with
labels only the directory can produce, latency per route template, issuer key fetches, snapshot."""

from __future__ import annotations

import re
import uuid

import httpx
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.authority.test_token_errors import SUBJECT, federated_form, post

from keyless._metrics import render


def scrape(authority: RunningAuthority, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(verify=authority.ssl_context(), timeout=10) as client:
        return client.get(f"{authority.base_url}/metrics", headers=headers)


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in an exposition."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{name}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def test_metrics_need_the_admin_key(authority: RunningAuthority) -> None:
    assert scrape(authority, None).status_code == 401
    assert scrape(authority, "not-the-key").status_code == 401
    answer = scrape(authority, authority.admin_key())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "keyless_directory_revision" in answer.text
    assert "process_resident_memory_bytes" in answer.text


def test_an_issued_token_is_counted_under_its_tenant_and_client_and_its_issuer_fetch_too(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    before = samples(render().decode(), "keyless_tokens_issued_total")
    response = post(authority, federation.tenant_id, federated_form(federation, issuer.mint(sub=SUBJECT)))
    assert response.status_code == 200, response.text
    text = scrape(authority, authority.admin_key()).text
    labels = f'{{client="{federation.client.app_id}",tenant="{federation.tenant_id}"}}'
    assert samples(text, "keyless_tokens_issued_total").get(labels) == before.get(labels, 0) + 1, text
    fetched = samples(text, "keyless_issuer_key_fetches_total")
    assert fetched.get(f'{{issuer="{issuer.url}",outcome="ok"}}', 0) >= 1
    durations = samples(text, "keyless_http_request_duration_seconds_count")
    assert any('endpoint="/{tenant}/oauth2/v2.0/token"' in k and 'status="200"' in k for k in durations)


def test_labels_never_take_values_only_the_caller_chose(
    authority: RunningAuthority, federation: Federation
) -> None:
    """Random tenants, random client ids, a known tenant with an unknown client, random paths:
    none of the caller's values becomes a label (counters are per process, so earlier tests'
    tenants may be there too)."""
    chosen: list[str] = []
    for _ in range(25):
        tenant, client, path = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        chosen += [tenant, client, path]
        post(authority, tenant, {"grant_type": "client_credentials", "client_id": client})
        post(authority, federation.tenant_id, {"grant_type": "client_credentials", "client_id": client})
        with httpx.Client(verify=authority.ssl_context(), timeout=10) as client_:
            client_.get(f"{authority.base_url}/{path}/no/such/thing")
    text = scrape(authority, authority.admin_key()).text
    refused = samples(text, "keyless_tokens_refused_total")
    assert any(f'tenant="{federation.tenant_id}"' in k and 'client="unknown"' in k for k in refused), refused
    assert any('tenant="unknown"' in k and 'client="unknown"' in k for k in refused), refused
    assert not [value for value in chosen if value in text]
    assert "no/such" not in text
