"""Federated-credential matching and its near-miss explanations (pure functions)."""

from __future__ import annotations

import pytest

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.matching import match_fic, near_miss, refuse_issuer
from keyless.errors import OAuthError


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


def test_unrelated_values_are_not_a_near_miss() -> None:
    assert near_miss("abc", "xyz") is None


def test_exact_match_returns_the_credential() -> None:
    credential = fic()
    assert match_fic([credential], sub=credential.subject, audiences=[credential.audiences[0]]) is credential


def test_audience_in_a_list_matches() -> None:
    credential = fic()
    assert (
        match_fic([credential], sub=credential.subject, audiences=["other", "api://AzureADTokenExchange"])
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
        match_fic([fic()], sub=fic().subject, audiences=["api://AzureADTokenExchange/"])
    assert refused.value.aadsts == 700212
    assert "trailing slash" in (refused.value.detail or "")


def test_issuer_refusal_is_70021_without_credentials_and_700211_otherwise() -> None:
    assert refuse_issuer([], "https://x", "s", "a").aadsts == 70021
    refusal = refuse_issuer([fic()], "https://token.actions.githubusercontent.com/", "s", "a")
    assert refusal.aadsts == 700211
    assert "trailing slash" in (refusal.detail or "")
