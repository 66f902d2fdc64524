"""The explain dry run as pure functions: the order of checks and codes mirror the token endpoint,
GitHub subject formats are understood, and the refusal log keeps only what admins need."""

from __future__ import annotations

import time

import pytest
from tests._support.oidc_issuer import TestIssuer

from keyless._time import human_time
from keyless.authority.directory.refusals import Refusal, RefusalLog
from keyless.authority.explain.dry_run import explain_assertion, issuer_to_fetch
from keyless.authority.explain.github import (
    describe_github_subject,
    github_other_workload,
    github_subject_mismatch,
    parse_github_subject,
)
from keyless.authority.model import FederatedIdentityCredential
from keyless.errors import MalformedToken
from keyless.jose import KeySet, Signer, decode_unverified, encode_jwt

NOW = 1_750_000_000.0


def fic(
    name: str, issuer: str, subject: str, audience: str = "api://AzureADTokenExchange"
) -> FederatedIdentityCredential:
    return FederatedIdentityCredential("", "", name, issuer, subject, (audience,))


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate("RS256")


def token(signer: Signer, **claims: object) -> str:
    payload: dict[str, object] = {
        "iss": "https://issuer.example",
        "sub": "sa-1",
        "aud": "api://AzureADTokenExchange",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 600,
    }
    payload.update(claims)
    return encode_jwt({k: v for k, v in payload.items() if v is not None}, signer)


def test_the_first_failure_in_the_endpoints_order_decides_the_code(signer: Signer) -> None:
    # wrong issuer AND expired: the issuer is checked first, as the token endpoint does
    assertion = token(signer, iss="https://other.example", exp=int(NOW) - 3600)
    result = explain_assertion(assertion, [fic("a-b", "https://issuer.example", "sa-1")], now=NOW)
    assert result.aadsts == 700211
    assert [s.name for s in result.steps if s.ok is False] == ["issuer", "time window"]


def test_signature_is_checked_only_with_keys_and_reported_otherwise(signer: Signer) -> None:
    credentials = [fic("a-b", "https://issuer.example", "sa-1")]
    offline = explain_assertion(token(signer), credentials, now=NOW)
    assert offline.accepted and not offline.signature_checked
    verified = explain_assertion(token(signer), credentials, now=NOW, keys=KeySet([signer.public_key()]))
    assert verified.accepted and verified.signature_checked and verified.matched == "a-b"
    down = explain_assertion(token(signer), credentials, now=NOW, key_error="GET ... timed out")
    assert down.aadsts == 90061


def test_missing_claims_own_tokens_and_disallowed_algorithms(signer: Signer) -> None:
    credentials = [fic("a-b", "https://issuer.example", "sa-1")]
    assert explain_assertion(token(signer, sub=None), credentials, now=NOW).aadsts == 50027
    own = explain_assertion(
        token(signer, iss="https://keyless.local/tid/v2.0"),
        credentials,
        now=NOW,
        own_issuer_prefix="https://keyless.local/",
    )
    assert own.aadsts == 700222
    es = Signer.generate("ES256")
    refused = explain_assertion(token(es), credentials, now=NOW, keys=KeySet([es.public_key()]))
    assert refused.aadsts == 700027


def test_an_issuer_not_named_by_any_credential_is_never_fetched(signer: Signer) -> None:
    credentials = [fic("a-b", "https://issuer.example", "sa-1")]
    assert issuer_to_fetch(token(signer), credentials) == "https://issuer.example"
    assert issuer_to_fetch(token(signer, iss="https://evil.example"), credentials) is None
    assert issuer_to_fetch("garbage", credentials) is None


def test_decode_unverified_refuses_encrypted_tokens_and_garbage() -> None:
    with pytest.raises(MalformedToken, match="encrypted"):
        decode_unverified("a.b.c.d.e")
    with pytest.raises(MalformedToken, match="three"):
        decode_unverified("abc")


def test_human_time_reads_like_a_person() -> None:
    assert human_time(NOW - 200, NOW).endswith("(3m 20s ago)")
    assert human_time(NOW + 90061, NOW).endswith("(1d 1h 1m 1s from now)")
    assert human_time(NOW, NOW).endswith("(now)")


@pytest.mark.parametrize(
    ("sub", "described"),
    [
        ("repo:o/r:ref:refs/heads/main", "branch 'main' of o/r"),
        ("repo:o/r:ref:refs/tags/v1", "tag 'v1' of o/r"),
        ("repo:o/r:environment:prod", "environment 'prod' of o/r"),
        ("repo:o/r:pull_request", "pull requests of o/r"),
        ("repository_owner_id:1:repository_id:2:environment:prod", "environment 'prod' of repository id 2"),
    ],
)
def test_github_subject_formats_are_parsed(sub: str, described: str) -> None:
    parsed = parse_github_subject(sub)
    assert parsed is not None and describe_github_subject(parsed) == described


def test_github_mismatches_distinguish_typos_from_other_workloads() -> None:
    assert parse_github_subject("system:serviceaccount:ns:sa") is None
    assert (
        github_subject_mismatch("repo:a/b:pull_request", "repo:c/d:pull_request") is None
    )  # other repository
    assert github_other_workload("repo:o/r:pull_request", "repo:o/r:ref:refs/heads/main")
    assert not github_other_workload("repo:o/r:ref:refs/heads/main", "repo:o/r:ref:main")  # a typo
    why = github_subject_mismatch(
        "repo:o/r:ref:refs/heads/main", "repo:o/r:job_workflow_ref:x:ref:refs/heads/main"
    )
    assert why is not None and "different GitHub claims" in why


def test_the_refusal_log_is_bounded_newest_first_and_filtered_by_tenant() -> None:
    log = RefusalLog(buffer=3)
    for i in range(5):
        log.record(
            Refusal(
                float(i),
                700213,
                "invalid_client",
                "t.example" if i % 2 else "other",
                None,
                f"r{i}",
                "",
                "",
                "/",
            )
        )
    assert len(log) == 3
    assert [r.reason for r in log.recent()] == ["r4", "r3", "r2"]
    assert [r.reason for r in log.recent(["T.EXAMPLE"])] == ["r3"]
    assert log.recent(limit=1)[0].reason == "r4"


def test_time_window_uses_the_given_clock(signer: Signer) -> None:
    credentials = [fic("a-b", "https://issuer.example", "sa-1")]
    early = explain_assertion(token(signer, nbf=int(NOW) + 3600), credentials, now=NOW, leeway=300)
    assert early.aadsts == 700024
    assert "not valid for another" in next(s.detail for s in early.steps if s.name == "time window")
    assert explain_assertion(token(signer), credentials, now=time.time() + 10**6).aadsts == 700024


def test_test_issuer_tokens_round_trip(signer: Signer) -> None:
    with TestIssuer() as issuer:
        keys = KeySet.from_jwks(issuer.jwks())
        result = explain_assertion(
            issuer.mint(sub="x-1"), [fic("a-b", issuer.url, "x-1")], now=time.time(), keys=keys
        )
    assert result.accepted and result.signature_checked
