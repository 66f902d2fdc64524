"""Flexible federated credentials end to end: unmodified MSAL and azure-identity exchange a
GitHub-Actions-shaped token (sub, repository_owner, ref, job_workflow_ref) against an expression
credential with a CEL condition; each near miss is refused with Entra's code and the exact reason;
the refusal store and the audit event name the credential."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import msal
import pytest
from azure.identity import ClientAssertionCredential
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer

from keyless.authority.explain.dry_run import explain_assertion

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
EXPRESSION = (
    "claims['sub'] matches 'repo:contoso/*:ref:refs/heads/release/*' and "
    "claims['job_workflow_ref'] matches 'contoso/shared/.github/workflows/*@refs/heads/main'"
)
CONDITION = "claims.repository_owner == 'contoso' && claims.ref.startsWith('refs/heads/release/')"


def github_claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "sub": "repo:contoso/payments:ref:refs/heads/release/2.1",
        "repository_owner": "contoso",
        "repository": "contoso/payments",
        "ref": "refs/heads/release/2.1",
        "job_workflow_ref": "contoso/shared/.github/workflows/deploy.yml@refs/heads/main",
        "event_name": "push",
    }
    claims.update(changes)
    return claims


@pytest.fixture
def flexible(authority: RunningAuthority, federation: Federation, issuer: TestIssuer) -> Federation:
    """The seed scenario's caller, trusting the issuer's GitHub-shaped tokens by expression."""
    authority.admin.create_fic(
        federation.client,
        name="gh-releases",
        issuer=issuer.url,
        subject=None,
        claims_matching_expression=EXPRESSION,
        condition=CONDITION,
    )
    return federation


def exchange(authority: RunningAuthority, federation: Federation, assertion: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "scope": federation.scope,
    }
    with httpx.Client(verify=authority.ssl_context(), timeout=15) as client:
        return client.post(authority.token_url(federation.tenant_id), data=form)


def test_msal_exchanges_a_github_token_against_an_expression_credential(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer
) -> None:
    app = msal.ConfidentialClientApplication(
        flexible.client.app_id,
        authority=f"{authority.base_url}/{flexible.tenant_id}",
        client_credential={"client_assertion": lambda: issuer.mint(github_claims())},
        instance_discovery=False,
        verify=str(authority.ca_file),
    )
    result = app.acquire_token_for_client(scopes=[flexible.scope])
    assert "access_token" in result, result


def test_azure_identity_exchanges_a_github_token_against_an_expression_credential(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer
) -> None:
    credential = ClientAssertionCredential(
        flexible.tenant_id,
        flexible.client.app_id,
        lambda: issuer.mint(github_claims()),
        authority=authority.base_url,
        connection_verify=str(authority.ca_file),
    )
    assert credential.get_token(flexible.scope).token.count(".") == 2


def test_the_audit_event_names_the_flexible_credential_that_matched(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="keyless.audit"):
        assert exchange(authority, flexible, issuer.mint(github_claims())).status_code == 200
    events = [r.__dict__["audit"] for r in caplog.records if "audit" in r.__dict__]
    issued = [e for e in events if e["event"] == "token.issued"]
    assert issued and issued[-1]["credential"]["name"] == "gh-releases"


@pytest.mark.parametrize(
    ("changes", "code", "reason"),
    [
        # a case difference in the owner
        (
            {"sub": "repo:Contoso/payments:ref:refs/heads/release/2.1"},
            700213,
            "almost matches credential 'gh-releases'",
        ),
        # a branch ref without refs/heads/ (the token's sub names a tag instead)
        ({"sub": "repo:contoso/payments:ref:release/2.1"}, 700213, "repo:contoso/payments:ref:release/2.1"),
        # pull_request vs pull-request: a subject no credential names
        ({"sub": "repo:contoso/payments:pull-request"}, 700213, "repo:contoso/payments:pull-request"),
        # the expression matches, the reusable workflow is another one
        (
            {"job_workflow_ref": "contoso/shared/.github/workflows/deploy.yml@refs/heads/feature"},
            700213,
            "gh-releases: clause claims['job_workflow_ref'] matches",
        ),
        # expression and audience match, the CEL condition does not hold
        ({"repository_owner": "contoso-forks"}, 700213, "condition"),
    ],
)
def test_each_near_miss_is_refused_with_entras_code_and_the_exact_reason(
    authority: RunningAuthority,
    flexible: Federation,
    issuer: TestIssuer,
    changes: dict[str, Any],
    code: int,
    reason: str,
) -> None:
    response = exchange(authority, flexible, issuer.mint(github_claims(**changes)))
    assert response.status_code == 401
    assert response.json()["error_codes"] == [code]
    authority.authority.refusals.flush()
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    assert reason in refusal.reason


def test_a_condition_refusal_records_the_credential_it_concerned(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer
) -> None:
    exchange(authority, flexible, issuer.mint(github_claims(repository_owner="contoso-forks")))
    authority.authority.refusals.flush()
    (refusal,) = authority.authority.refusals.recent(None, limit=1)
    fic = next(f for f in authority.admin.list_fics(flexible.client) if f.name == "gh-releases")
    assert refusal.credential == f"gh-releases ({fic.id})"


def test_explain_shows_each_clause_and_the_condition_with_the_fix(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer
) -> None:
    token = issuer.mint(github_claims(sub="repo:contoso/payments:ref:release/2.1"))
    fics = authority.admin.list_fics(flexible.client)
    explanation = explain_assertion(token, fics, now=__import__("time").time(), keys=None)
    clauses = [c for c in explanation.comparisons if c.credential == "gh-releases"]
    fields = [c.field for c in clauses]
    assert fields == ["issuer", "claims['sub']", "claims['job_workflow_ref']", "condition", "audience"]
    sub = clauses[1]
    assert sub.verdict == "near miss" and "not qualified with 'refs/heads/'" in (sub.why or "")
    assert explanation.aadsts == 700213
    (fix,) = explanation.fixes
    assert fix.keyless is not None and "--expression" in fix.keyless


def test_a_refusal_keeps_the_verified_claims_and_only_those(
    authority: RunningAuthority, flexible: Federation, issuer: TestIssuer
) -> None:
    exchange(authority, flexible, issuer.mint(github_claims(sub="repo:contoso/payments:pull_request")))
    authority.authority.refusals.flush()
    (verified,) = authority.authority.refusals.recent(None, limit=1)
    assert verified.presented == {
        "iss": issuer.url,
        "sub": "repo:contoso/payments:pull_request",
        "aud": ["api://AzureADTokenExchange"],
    }
    forged = issuer.mint(github_claims(sub="planted-value"), kid="not-a-key-of-the-issuer")
    exchange(authority, flexible, forged)
    authority.authority.refusals.flush()
    (unverified,) = authority.authority.refusals.recent(None, limit=1)
    assert unverified.aadsts == 7000272 and unverified.presented is None
