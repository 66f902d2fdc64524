"""The token path as a library, without HTTPS: ``TokenService.issue`` and ``ClientAuthenticator``
over a real SQLite store and a real issuer on loopback HTTP. The federated checks are one ordered
tuple of named steps that the endpoint and ``explain`` both run."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless.authority import Authority, explain_assertion
from keyless.authority.model import FIC_AUDIENCE_DEFAULT, AppRole
from keyless.authority.token import federated
from keyless.authority.token.aadsts import refuse
from keyless.authority.token.client_credentials import TokenRequest
from keyless.authority.token.federated import FEDERATED_CHECKS, Check, FederatedAssertion
from keyless.authority.token.tenants import resolve_tenant
from keyless.config import load_authority_settings
from keyless.errors import OAuthError

TENANT = "8d3c1f5e-2b4a-4c6d-9e8f-0a1b2c3d4e5f"
API = "11111111-2222-4333-8444-555555555555"
CALLER = "66666666-7777-4888-9999-aaaaaaaaaaaa"
ROLE = "0f6e7c9a-1b2d-4e3f-8a9b-0c1d2e3f4a5b"
SCOPE = "api://blob-api/.default"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as running:
        yield running


@pytest.fixture
async def authority(tmp_path: Path, issuer: TestIssuer) -> AsyncIterator[Authority]:
    settings = load_authority_settings(
        data_dir=tmp_path / "data", port=0, dev_mode=True, allow_http_loopback_issuers=True
    )
    opened = Authority.open(settings)
    admin = opened.admin
    admin.create_tenant("Fabrikam", tenant_id=TENANT, domains=["fabrikam.example"])
    role = AppRole(id=ROLE, value="Blob.Read", display_name="Read")
    admin.create_application(
        TENANT, "blob-api", app_id=API, identifier_uris=["api://blob-api"], app_roles=[role]
    )
    caller = admin.create_application(TENANT, "caller", app_id=CALLER)
    admin.create_fic(caller, name="cloud-run", issuer=issuer.url, subject="sa-1")
    yield opened
    await opened.aclose()


def request(
    authority: Authority, form: dict[str, str], *, basic: tuple[str, str] | None = None
) -> TokenRequest:
    tenant = resolve_tenant(authority.directory(), TENANT)
    return TokenRequest(tenant=tenant, endpoint_version=2, form=form, basic=basic)


def assertion_form(token: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": CALLER,
        "scope": SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
        **extra,
    }


async def refused(authority: Authority, token_request: TokenRequest) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        await authority.tokens.issue(token_request)
    return caught.value


# -- TokenService -------------------------------------------------------------------------------------


async def test_a_federated_assertion_gets_a_token_for_the_resource(
    authority: Authority, issuer: TestIssuer
) -> None:
    result = await authority.tokens.issue(request(authority, assertion_form(issuer.mint(sub="sa-1"))))
    assert result.tenant_id == TENANT and result.client_id == CALLER
    assert result.claims["aud"] == "api://blob-api" and result.claims["appidacr"] == "2"


async def test_a_client_secret_in_the_body_or_in_basic_gets_a_token(authority: Authority) -> None:
    caller = authority.admin.find_application(TENANT, "caller")
    secret = authority.admin.add_secret(caller, "ci").value
    form = {"grant_type": "client_credentials", "client_id": CALLER, "scope": SCOPE}
    in_body = await authority.tokens.issue(request(authority, {**form, "client_secret": secret}))
    in_basic = await authority.tokens.issue(request(authority, form, basic=(CALLER, secret)))
    assert in_body.claims["appidacr"] == in_basic.claims["appidacr"] == "1"


async def test_more_than_one_client_authentication_is_refused(
    authority: Authority, issuer: TestIssuer
) -> None:
    both = assertion_form(issuer.mint(sub="sa-1"), client_secret="also-a-secret")
    assert (await refused(authority, request(authority, both))).aadsts == 9002313
    form = {"grant_type": "client_credentials", "client_id": CALLER, "scope": SCOPE, "client_secret": "x"}
    assert (await refused(authority, request(authority, form, basic=(CALLER, "y")))).aadsts == 9002313


async def test_a_client_id_that_differs_from_basic_is_refused(authority: Authority) -> None:
    form = {"grant_type": "client_credentials", "client_id": API, "scope": SCOPE}
    error = await refused(authority, request(authority, form, basic=(CALLER, "secret")))
    assert error.aadsts == 9002313
    assert "differs" in error.error_description


async def test_tenant_and_target_problems_come_before_authentication(authority: Authority) -> None:
    form = {"grant_type": "client_credentials", "client_id": CALLER, "client_secret": "wrong"}
    with pytest.raises(OAuthError) as unknown:
        resolve_tenant(authority.directory(), "nobody.example")
    assert unknown.value.aadsts == 90002
    assert (
        await refused(authority, request(authority, form))
    ).aadsts == 900144  # no scope, before the secret
    assert (await refused(authority, request(authority, {**form, "scope": SCOPE}))).aadsts == 7000215


# -- ClientAuthenticator and the federated steps --------------------------------------------------------


async def test_keys_of_an_issuer_the_application_does_not_name_are_never_fetched(
    authority: Authority,
) -> None:
    with TestIssuer() as stranger:
        error = await refused(authority, request(authority, assertion_form(stranger.mint(sub="sa-1"))))
        assert error.aadsts == 700211
        assert stranger.requests[stranger.jwks_path] == 0
        assert stranger.requests[stranger.discovery_path] == 0


async def test_the_endpoint_and_explain_run_the_same_named_steps(
    authority: Authority, issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []

    def recording(check: Check) -> Check:
        def run(a: FederatedAssertion) -> str:
            ran.append(check.name)
            return check.run(a)

        return dataclasses.replace(check, run=run)

    monkeypatch.setattr(federated, "FEDERATED_CHECKS", tuple(recording(c) for c in FEDERATED_CHECKS))
    names = [c.name for c in FEDERATED_CHECKS]
    assert names == [
        "format",
        "claims",
        "own issuer",
        "issuer",
        "signature",
        "subject and audience",
        "time window",
    ]

    token = issuer.mint(sub="sa-1")
    await authority.tokens.issue(request(authority, assertion_form(token)))
    assert ran == names

    ran.clear()
    caller = authority.admin.find_application(TENANT, "caller")
    keys = await authority.issuer_keys.get(issuer.url, None)
    explained = explain_assertion(
        token,
        authority.admin.list_fics(caller),
        now=authority.clock(),
        keys=keys,
        own_issuer_prefix="https://x/",
    )
    assert explained.accepted and list(explained.checks) == names and ran == names


async def test_a_step_added_to_the_tuple_is_run_by_both_paths(
    authority: Authority, issuer: TestIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_subject_named_blocked(a: FederatedAssertion) -> str:
        if a.sub == "sa-1":
            raise refuse(50027, detail="this subject is blocked")
        return "not blocked"

    extra = Check("blocked subject", lambda a: bool(a.sub), no_subject_named_blocked)
    monkeypatch.setattr(federated, "FEDERATED_CHECKS", (*FEDERATED_CHECKS, extra))
    token = issuer.mint(sub="sa-1")

    error = await refused(authority, request(authority, assertion_form(token)))
    assert error.aadsts == 50027
    assert "this subject is blocked" in error.error_description

    caller = authority.admin.find_application(TENANT, "caller")
    explained = explain_assertion(token, authority.admin.list_fics(caller), now=authority.clock())
    assert explained.aadsts == 50027
    assert [s.name for s in explained.steps if s.ok is False] == ["blocked subject"]
    assert explained.checks[-1] == "blocked subject"


def test_a_certificate_assertion_is_recognised_the_same_way_everywhere() -> None:
    header = {"alg": "RS256", "x5t": "abc"}
    assert federated.is_certificate_assertion(header, {"iss": CALLER, "sub": CALLER}, CALLER)
    assert federated.is_certificate_assertion(header, {"iss": CALLER, "sub": CALLER}, None)
    assert not federated.is_certificate_assertion(header, {"iss": "https://issuer", "sub": CALLER}, CALLER)
    assert not federated.is_certificate_assertion({"alg": "RS256"}, {"iss": CALLER, "sub": CALLER}, CALLER)
    assert FIC_AUDIENCE_DEFAULT == "api://AzureADTokenExchange"
