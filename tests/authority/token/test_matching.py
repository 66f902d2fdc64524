"""Federated-credential matching and its near-miss explanations (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token import matching
from keyless.authority.token.fic_index import FicIndex
from keyless.authority.token.matching import near_miss, refuse_issuer
from keyless.errors import OAuthError

GITHUB = "https://token.actions.githubusercontent.com"


def fic(
    issuer: str = "https://token.actions.githubusercontent.com",
    subject: str = "repo:org/app:ref:refs/heads/main",
    audience: str = "api://AzureADTokenExchange",
) -> FederatedIdentityCredential:
    return FederatedIdentityCredential(
        id="1", application_id="a", name="gh", issuer=issuer, subject=subject, audiences=(audience,)
    )


@pytest.mark.parametrize(
    ("presented", "configured", "why"),
    [
        ("https://issuer/", "https://issuer", "trailing slash"),
        ("Repo:Org/App", "repo:org/app", "letter case"),
        (" https://issuer", "https://issuer", "whitespace"),
        ("http://issuer", "https://issuer", "scheme"),
        ("repo:o/a:pull-request", "repo:o/a:pull_request", "pull-request vs pull_request"),
    ],
)
def test_near_miss_names_the_difference(presented: str, configured: str, why: str) -> None:
    assert why in (near_miss(presented, configured) or "")


def match_fic(
    credentials: list[FederatedIdentityCredential],
    *,
    sub: str,
    audiences: list[str],
    claims: Mapping[str, Any] | None = None,
) -> FederatedIdentityCredential:
    """The matcher over an index of ``credentials`` (all of one issuer)."""
    index = FicIndex.build(credentials).issuer(credentials[0].issuer)
    assert index is not None
    return matching.match_fic(index, sub=sub, audiences=audiences, claims=claims or {"sub": sub})


def test_unrelated_values_are_not_a_near_miss() -> None:
    assert near_miss("abc", "xyz") is None


def test_exact_match_returns_the_credential() -> None:
    credential = fic()
    assert (
        match_fic([credential], sub=credential.subject or "", audiences=[credential.audiences[0]])
        is credential
    )


def test_audience_in_a_list_matches() -> None:
    credential = fic()
    assert (
        match_fic(
            [credential], sub=credential.subject or "", audiences=["other", "api://AzureADTokenExchange"]
        )
        is credential
    )


def test_subject_mismatch_is_700213_and_case_only_is_7002138() -> None:
    with pytest.raises(OAuthError) as wrong:
        match_fic([fic()], sub="repo:org/other", audiences=["api://AzureADTokenExchange"])
    assert wrong.value.aadsts == 700213
    with pytest.raises(OAuthError) as case:
        match_fic([fic()], sub="repo:ORG/app:ref:refs/heads/main", audiences=["api://AzureADTokenExchange"])
    assert case.value.aadsts == 7002138
    assert "letter case" in (case.value.detail or "")


def test_audience_mismatch_is_700212_with_detail() -> None:
    with pytest.raises(OAuthError) as refused:
        match_fic([fic()], sub=fic().subject or "", audiences=["api://AzureADTokenExchange/"])
    assert refused.value.aadsts == 700212
    assert "trailing slash" in (refused.value.detail or "")


def test_issuer_refusal_is_70021_without_credentials_and_700211_otherwise() -> None:
    assert refuse_issuer(FicIndex.build([]), "https://x", "s", "a").aadsts == 70021
    refusal = refuse_issuer(FicIndex.build([fic()]), "https://token.actions.githubusercontent.com/", "s", "a")
    assert refusal.aadsts == 700211
    assert "trailing slash" in (refusal.detail or "")


# -- flexible credentials and conditions ---------------------------------------------------------------


def flexible(
    expression: str, *, name: str = "flex", condition: str | None = None, id: str = "2"
) -> FederatedIdentityCredential:
    return FederatedIdentityCredential(
        id=id,
        application_id="a",
        name=name,
        issuer=GITHUB,
        subject=None,
        claims_matching_expression=expression,
        condition=condition,
    )


def github_claims(sub: str = "repo:contoso/app:ref:refs/heads/release/1.2", **extra: Any) -> dict[str, Any]:
    claims = {
        "sub": sub,
        "repository_owner": "contoso",
        "ref": "refs/heads/release/1.2",
        "job_workflow_ref": "contoso/shared/.github/workflows/deploy.yml@refs/heads/main",
    }
    claims.update(extra)
    return claims


AUD = ["api://AzureADTokenExchange"]


def test_an_expression_credential_matches_a_token_its_pattern_covers() -> None:
    credential = flexible("claims['sub'] matches 'repo:contoso/*:ref:refs/heads/release/*'")
    claims = github_claims()
    assert match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims) is credential


def test_every_clause_of_an_expression_must_hold() -> None:
    credential = flexible(
        "claims['sub'] matches 'repo:contoso/*' and "
        "claims['job_workflow_ref'] eq 'contoso/shared/.github/workflows/deploy.yml@refs/heads/main'"
    )
    claims = github_claims()
    assert match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims) is credential
    other = github_claims(job_workflow_ref="contoso/shared/.github/workflows/evil.yml@refs/heads/main")
    with pytest.raises(OAuthError) as refused:
        match_fic([credential], sub=other["sub"], audiences=AUD, claims=other)
    assert refused.value.aadsts == 700213


def test_an_exact_credential_wins_over_a_flexible_one() -> None:
    claims = github_claims()
    exact = fic(subject=claims["sub"])
    broad = flexible("claims['sub'] matches 'repo:contoso/*'")
    assert match_fic([broad, exact], sub=claims["sub"], audiences=AUD, claims=claims) is exact


def test_a_false_condition_refuses_with_700213_naming_the_credential() -> None:
    credential = flexible(
        "claims['sub'] matches 'repo:contoso/*'", condition="claims.ref == 'refs/heads/main'"
    )
    claims = github_claims()
    with pytest.raises(OAuthError) as refused:
        match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims)
    assert refused.value.aadsts == 700213
    assert "condition" in (refused.value.detail or "")
    assert refused.value.credential == "flex (2)"


def test_a_condition_that_fails_to_evaluate_refuses() -> None:
    credential = flexible("claims['sub'] matches 'repo:contoso/*'", condition="claims.environment == 'prod'")
    claims = github_claims()
    with pytest.raises(OAuthError) as refused:
        match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims)
    assert "no claim 'environment'" in (refused.value.detail or "")


def test_a_true_condition_accepts() -> None:
    credential = flexible(
        "claims['sub'] matches 'repo:contoso/*'",
        condition="claims.repository_owner == 'contoso' && claims.ref.startsWith('refs/heads/release/')",
    )
    claims = github_claims()
    assert match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims) is credential


def test_a_case_near_miss_of_an_expression_is_in_the_detail() -> None:
    credential = flexible("claims['sub'] matches 'repo:contoso/*'")
    claims = github_claims(sub="repo:Contoso/app:ref:refs/heads/main")
    with pytest.raises(OAuthError) as refused:
        match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims)
    assert refused.value.aadsts == 700213
    assert "almost matches credential 'flex'" in (refused.value.detail or "")


def test_a_claim_that_is_not_a_string_matches_nothing() -> None:
    credential = flexible("claims['groups'] matches '*admin*'")
    claims = github_claims(groups=["admin"])
    with pytest.raises(OAuthError):
        match_fic([credential], sub=claims["sub"], audiences=AUD, claims=claims)


def test_the_refusal_detail_lists_a_bounded_number_of_subjects() -> None:
    many = [fic(subject=f"repo:contoso/app{i}:ref:refs/heads/main") for i in range(500)]
    many = [
        FederatedIdentityCredential(**{**_fields(f), "id": str(i), "name": f"c{i}"})
        for i, f in enumerate(many)
    ]
    with pytest.raises(OAuthError) as refused:
        match_fic(many, sub="repo:fabrikam/x", audiences=AUD)
    assert "and 495 more" in (refused.value.detail or "")


def _fields(credential: FederatedIdentityCredential) -> dict[str, Any]:
    return {name: getattr(credential, name) for name in credential.__dataclass_fields__}
