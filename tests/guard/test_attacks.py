"""One test per attack on the guard: each is refused with the right code, before any work it could
abuse (key fetches, signature checks) where that is possible."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, TENANT, FakeClock, guard_config, serve

from keyless.errors import (
    ClaimError,
    InvalidSignature,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
    VerificationError,
)
from keyless.guard import GuardProxy, Verifier
from keyless.jose import b64url


def _segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def _claims(issuer: TestIssuer) -> dict[str, Any]:
    return {"iss": issuer.url, "sub": "attacker", "aud": AUDIENCE, "exp": 4_000_000_000}


async def _refused(verifier: Verifier, token: str) -> VerificationError:
    with pytest.raises(VerificationError) as refused:
        await verifier.verify(token)
    return refused.value


async def test_alg_none_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    token = _segment({"alg": "none", "typ": "JWT"}) + "." + _segment(_claims(issuer)) + "."
    error = await _refused(verifier, token)
    assert isinstance(error, MalformedToken | UnsupportedAlgorithm)
    unsigned = _segment({"alg": "none"}) + "." + _segment(_claims(issuer)) + ".c2ln"
    assert isinstance(await _refused(verifier, unsigned), UnsupportedAlgorithm)
    assert issuer.requests[issuer.jwks_path] == 0


async def test_hs256_keyed_with_the_public_key_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    pem = issuer.signer.public_key().key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _segment({"alg": "HS256", "kid": issuer.signer.kid}) + "." + _segment(_claims(issuer))
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    error = await _refused(verifier, signing_input + "." + b64url(mac))
    assert isinstance(error, UnsupportedAlgorithm)
    assert error.code == "alg_not_allowed"
    assert issuer.requests[issuer.jwks_path] == 0


async def test_unknown_kid_flood_refetches_at_most_once_per_cooldown(
    verifier: Verifier, issuer: TestIssuer, key_clock: FakeClock
) -> None:
    await verifier.verify(issuer.mint(aud=AUDIENCE))
    assert issuer.requests[issuer.jwks_path] == 1
    key_clock.advance(61)  # past the 60 s cooldown: one refetch is allowed
    for _ in range(50):
        error = await _refused(verifier, issuer.mint(aud=AUDIENCE, kid=uuid.uuid4().hex))
        assert isinstance(error, UnknownKey)
    assert issuer.requests[issuer.jwks_path] == 2
    key_clock.advance(30)  # still inside the cooldown of that refetch
    for _ in range(20):
        await _refused(verifier, issuer.mint(aud=AUDIENCE, kid=uuid.uuid4().hex))
    assert issuer.requests[issuer.jwks_path] == 2


async def test_expired_token_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    error = await _refused(verifier, issuer.mint(aud=AUDIENCE, now=1_000_000, lifetime=600))
    assert isinstance(error, TokenExpired)
    assert (error.code, error.claim) == ("expired", "exp")
    assert "expired" in error.reason


async def test_token_not_yet_valid_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    import time

    error = await _refused(verifier, issuer.mint(aud=AUDIENCE, now=time.time() + 3600))
    assert isinstance(error, TokenNotYetValid)
    assert (error.code, error.claim) == ("not_yet_valid", "nbf")


async def test_wrong_audience_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    error = await _refused(verifier, issuer.mint(aud="api://some-other-service"))
    assert isinstance(error, ClaimError)
    assert (error.code, error.claim) == ("claim_invalid", "aud")
    assert "api://some-other-service" in error.reason


async def test_wrong_issuer_is_refused_without_fetching_its_keys(verifier: Verifier) -> None:
    with TestIssuer() as stranger:
        error = await _refused(verifier, stranger.mint(aud=AUDIENCE))
        assert stranger.requests[stranger.discovery_path] == 0
    assert isinstance(error, ClaimError)
    assert error.claim == "iss"


async def test_token_of_another_tenant_is_refused() -> None:
    other = str(uuid.uuid4())
    with TestIssuer(path=f"/{other}/v2.0") as foreign:
        config = guard_config(
            issuers=[{"kind": "entra", "tenants": [TENANT], "instance": foreign.base_url}],
        )
        async with Verifier(config) as verifier:
            error = await _refused(verifier, foreign.mint(aud=AUDIENCE, tid=other))
        assert foreign.requests[foreign.discovery_path] == 0
    assert isinstance(error, ClaimError)
    assert error.claim == "tid"
    assert other in error.reason


async def test_oversized_token_is_refused_before_decoding(verifier: Verifier, issuer: TestIssuer) -> None:
    huge = issuer.mint(aud=AUDIENCE, padding="x" * 20_000)
    error = await _refused(verifier, huge)
    assert isinstance(error, MalformedToken)
    assert "larger than 16384" in error.reason
    assert issuer.requests[issuer.jwks_path] == 0


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-token", "three"),
        ("e30.e30", "three"),
        ("!!!.e30.c2ln", "base64url"),
        ("eyJhbGciOiJSUzI1NiJ9.e30=.c2ln", "base64url"),
        ("eyJhbGciOiJSUzI1NiJ9.ZTMw.c2ln", "JSON"),  # "e30" is not JSON
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"[1,2]") + ".c2ln", "object"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b'{"exp":NaN}') + ".c2ln", "JSON"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b'{"sub":"a","sub":"b"}') + ".c2ln", "duplicate"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"\xff\xfe{}") + ".c2ln", "JSON"),
        ("é" + b64url(b'{"alg":"RS256"}') + ".e30.c2ln", "base64url"),
    ],
    ids=[
        "one-part",
        "two-parts",
        "bad-chars",
        "padding",
        "not-json",
        "array",
        "nan",
        "dup",
        "utf8",
        "unicode",
    ],
)
async def test_malformed_base64_or_json_is_refused(verifier: Verifier, token: str, reason: str) -> None:
    error = await _refused(verifier, token)
    assert isinstance(error, MalformedToken)
    assert reason in error.reason


async def test_crit_header_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    token = issuer.mint(aud=AUDIENCE, headers={"crit": ["exp"], "exp": 1})
    error = await _refused(verifier, token)
    assert isinstance(error, MalformedToken)
    assert "crit" in error.reason


async def test_jwe_is_refused(verifier: Verifier) -> None:
    header = _segment({"alg": "RSA-OAEP-256", "enc": "A256GCM"})
    error = await _refused(verifier, f"{header}.a2V5.aXY.Y2lwaGVy.dGFn")
    assert isinstance(error, MalformedToken)
    assert "JWE" in error.reason


async def test_tampered_payload_fails_the_signature(verifier: Verifier, issuer: TestIssuer) -> None:
    header, _, signature = issuer.mint(aud=AUDIENCE).split(".")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(issuer)).encode()).rstrip(b"=").decode()
    error = await _refused(verifier, f"{header}.{payload}.{signature}")
    assert isinstance(error, InvalidSignature)


async def test_issuer_down_during_a_rotation(
    verifier: Verifier, issuer: TestIssuer, key_clock: FakeClock
) -> None:
    old_token = issuer.mint(aud=AUDIENCE)
    await verifier.verify(old_token)  # the old key set is cached
    issuer.rotate()  # the issuer now signs with a key the guard has never seen...
    new_token = issuer.mint(aud=AUDIENCE)
    issuer.down()  # ...and cannot be reached to learn it
    key_clock.advance(61)
    error = await _refused(verifier, new_token)
    assert isinstance(error, UnknownKey)  # a refusal, not a crash or an outage for everyone
    assert verifier.token_cache is not None
    verifier.token_cache.clear()
    assert await verifier.verify(old_token)  # the last good set is still served
    issuer.up()
    key_clock.advance(61)
    assert (await verifier.verify(new_token)).subject == "sa-123"  # rotation picked up


async def test_spoofed_identity_headers_never_reach_the_upstream(issuer: TestIssuer) -> None:
    seen: list[dict[str, str]] = []

    async def upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    spoofed = {
        "X-Keyless-Subject": "admin",
        "X-Keyless-Roles": "Admin.All",
        "x-keyless-tenant-id": TENANT,
        "X-Keyless-Anything": "1",
    }
    policy = {"anonymous": ["/public"], "rules": [{"path": "/**", "allow": "authenticated"}]}
    with serve(upstream, lifespan="off") as upstream_url:
        proxy = GuardProxy(upstream_url, config=guard_config(issuer, policy=policy))
        with serve(proxy) as guard_url, httpx.Client(base_url=guard_url) as client:
            token = issuer.mint(aud=AUDIENCE, sub="real-caller", roles=["Blob.Read"])
            assert (
                client.get("/data", headers={"Authorization": f"Bearer {token}", **spoofed}).status_code
                == 200
            )
            assert client.get("/public", headers=spoofed).status_code == 200
            assert client.get("/data", headers=spoofed).status_code == 401
    authenticated, anonymous = seen
    assert authenticated["x-keyless-subject"] == "real-caller"
    assert authenticated["x-keyless-roles"] == "Blob.Read"
    assert "x-keyless-tenant-id" not in authenticated
    assert "x-keyless-anything" not in authenticated
    assert not [name for name in anonymous if name.startswith("x-keyless-")]
