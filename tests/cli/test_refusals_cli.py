"""Error detail policy: Entra's error by default, the exact mismatch for tenants with detailed
errors (the default in development mode), and every refusal recorded with its full reason for
admins (``keyless refusals``), whatever the caller saw, and never the token."""

from __future__ import annotations

import json

import httpx
from tests._support.authority_server import RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.cli.conftest import Cli, Names

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _setup(cli: Cli, names: Names, issuer: TestIssuer, *tenant_flags: str) -> None:
    for args in (
        ("tenant", "create", "Refusals", "--id", names.tenant_id, "--domain", names.domain, *tenant_flags),
        ("app", "create", names.domain, "caller", "--app-id", names.caller_app),
        (
            "fic",
            "create",
            names.domain,
            "caller",
            "--name",
            "gh-pr",
            "--issuer",
            issuer.url,
            "--subject",
            "repo:o/r:pull_request",
        ),
    ):
        assert cli(*args).exit_code == 0


def _exchange(live: RunningAuthority, names: Names, assertion: str) -> httpx.Response:
    return httpx.post(
        live.token_url(names.domain),
        data={
            "grant_type": "client_credentials",
            "client_id": names.caller_app,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
            "scope": "api://anything/.default",
        },
        verify=live.ssl_context(),
    )


def test_a_development_tenant_tells_the_caller_the_exact_mismatch_and_admins_see_it_too(
    cli: Cli, live: RunningAuthority, issuer: TestIssuer, names: Names
) -> None:
    _setup(cli, names, issuer)
    assertion = issuer.mint(sub="repo:o/r:pull-request")
    response = _exchange(live, names, assertion)
    assert response.status_code == 401
    body = response.json()
    assert body["error_codes"] == [700213]
    assert (
        "[keyless detail: presented subject 'repo:o/r:pull-request' almost matches"
        in body["error_description"]
    )
    [refusal] = json.loads(cli("refusals", names.domain, "--json").stdout)
    assert refusal["aadsts"] == 700213
    assert refusal["clientId"] == names.caller_app
    assert refusal["traceId"] == body["trace_id"] and refusal["correlationId"] == body["correlation_id"]
    assert "'-' versus '_'" in refusal["reason"]
    assert assertion not in json.dumps(refusal)
    table = cli("refusals", names.tenant_id)  # by GUID as well as by domain
    assert "700213" in table.stdout and names.caller_app in table.stdout


def test_an_entra_errors_tenant_tells_the_caller_nothing_more_but_admins_get_the_full_reason(
    cli: Cli, live: RunningAuthority, issuer: TestIssuer, names: Names
) -> None:
    _setup(cli, names, issuer, "--entra-errors")
    response = _exchange(live, names, issuer.mint(sub="repo:O/R:pull_request"))
    description = response.json()["error_description"]
    assert description.startswith("AADSTS7002138: ") and "keyless detail" not in description
    [refusal] = json.loads(cli("refusals", names.domain, "--json").stdout)
    assert refusal["aadsts"] == 7002138 and "letter case" in refusal["reason"]


def test_refusals_of_other_tenants_are_not_shown(cli: Cli, names: Names) -> None:
    assert cli("tenant", "create", "Quiet", "--id", names.tenant_id).exit_code == 0
    result = cli("refusals", names.tenant_id)
    assert result.exit_code == 0 and "no refusals recorded" in result.stdout
    assert cli("refusals", "nowhere.example").exit_code == 1
