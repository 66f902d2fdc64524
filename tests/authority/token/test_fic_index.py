"""The per-application credential index: lookups touch candidates, not every credential."""

from __future__ import annotations

from keyless.authority.model import FederatedIdentityCredential
from keyless.authority.token.fic_index import FicIndex

GITHUB = "https://token.actions.githubusercontent.com"


def _expression(i: int, owner: str, pattern: str) -> FederatedIdentityCredential:
    return FederatedIdentityCredential(
        str(i), "a", f"c{i}", GITHUB, None, claims_matching_expression=f"claims['sub'] matches '{pattern}'"
    )


def test_exact_credentials_are_found_by_subject() -> None:
    fics = [
        FederatedIdentityCredential(str(i), "a", f"c{i}", GITHUB, f"repo:o/r{i}:ref:x") for i in range(1000)
    ]
    index = FicIndex.build(fics).issuer(GITHUB)
    assert index is not None
    found = index.candidates("repo:o/r777:ref:x", {"sub": "repo:o/r777:ref:x"})
    assert [c.fic.name for c in found] == ["c777"]


def test_expression_candidates_come_from_the_literal_prefix_only() -> None:
    fics = [
        _expression(i, f"owner{i % 1000}", f"repo:owner{i % 1000}/app{i // 1000}:*") for i in range(10_000)
    ]
    index = FicIndex.build(fics).issuer(GITHUB)
    assert index is not None
    sub = "repo:owner42/app3:ref:refs/heads/main"
    looked_at = [
        c
        for length, bucket in index.prefixes["sub"].items()
        for p, cs in bucket.items()
        if sub.startswith(p)
        for c in cs
    ]
    assert len(looked_at) == 1  # of 10,000
    assert [c.fic.name for c in index.candidates(sub, {"sub": sub})] == ["c3042"]


def test_a_pattern_without_a_literal_prefix_is_always_a_candidate() -> None:
    fics = [_expression(1, "", "*:environment:prod"), _expression(2, "x", "repo:x/*")]
    index = FicIndex.build(fics).issuer(GITHUB)
    assert index is not None
    sub = "repo:y/z:environment:prod"
    assert [c.fic.name for c in index.candidates(sub, {"sub": sub})] == ["c1"]


def test_candidates_keep_creation_order_among_flexible_credentials() -> None:
    fics = [_expression(1, "x", "repo:x/*"), _expression(2, "x", "repo:x/app:*"), _expression(3, "x", "*")]
    index = FicIndex.build(fics).issuer(GITHUB)
    assert index is not None
    sub = "repo:x/app:ref:main"
    assert [c.fic.name for c in index.candidates(sub, {"sub": sub})] == ["c1", "c2", "c3"]


def test_near_misses_are_found_by_folded_value() -> None:
    fics = [FederatedIdentityCredential("1", "a", "c1", GITHUB, "repo:Contoso/App:pull_request")]
    index = FicIndex.build(fics).issuer(GITHUB)
    assert index is not None
    assert [c.fic.name for c in index.near("repo:contoso/app:pull-request", {})] == ["c1"]
