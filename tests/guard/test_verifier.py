"""The verifier against real issuers on 127.0.0.1: each kind of trusted issuer, the identity it
builds, required claims, the injectable clock, and the cache of verified tokens."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from tests._support.oidc_issuer import TestIssuer
from tests.guard.conftest import AUDIENCE, OTHER_TENANT, TENANT, FakeClock, guard_config

from keyless.errors import ClaimError, InvalidSignature, TokenExpired, VerificationError
from keyless.guard import Identity, IssuerUnavailable, TokenCache, Verifier
from keyless.jose import KeySet, PublicKey, Signer
from keyless.trust import IssuerKeyCache

CLIENT_ID = "6f2f3a1e-52a5-4c1e-9d1f-0b5b6c2d9e11"


@pytest.fixture
def entra_v2() -> Iterator[TestIssuer]:
    """An Entra-shaped v2 issuer: http://127.0.0.1:PORT/{tid}/v2.0."""
    with TestIssuer(path=f"/{TENANT}/v2.0") as running:
        yield running


# -- issuer kinds ----------------------------------------------------------------------------------


async def test_oidc_issuer_token_gives_the_identity(verifier: Verifier, issuer: TestIssuer) -> None:
    token = issuer.mint(sub="repo:org/app", aud=AUDIENCE, roles=["Blob.Read"], scp="read write", azp="cli")
    identity = await verifier.verify(token)
    assert isinstance(identity, Identity)
    assert identity.subject == "repo:org/app"
    assert identity.issuer == issuer.url
    assert identity.roles == ("Blob.Read",)
    assert identity.scopes == ("read", "write")
    assert identity.app_id == "cli"
    assert identity.issuer_kind == "oidc"
    assert identity.claims["aud"] == AUDIENCE


async def test_entra_v2_token_for_a_configured_tenant_is_accepted(entra_v2: TestIssuer) -> None:
    config = guard_config(
        audiences=[CLIENT_ID],
        issuers=[{"kind": "entra", "tenants": [TENANT], "versions": [2], "instance": entra_v2.base_url}],
    )
    oid = str(uuid.uuid4())
    token = entra_v2.mint(
        aud=CLIENT_ID, sub=oid, oid=oid, tid=TENANT, azp="caller-app", roles=["Blob.Read"], ver="2.0"
    )
    async with Verifier(config) as verifier:
        identity = await verifier.verify(token)
    assert (identity.tenant_id, identity.object_id, identity.app_id) == (TENANT, oid, "caller-app")
    assert identity.issuer == f"{entra_v2.base_url}/{TENANT}/v2.0"


async def test_entra_v1_token_uses_the_sts_shaped_issuer_and_appid() -> None:
    with TestIssuer(path=f"/{TENANT}") as v1:
        v1.patch_metadata(issuer=v1.url + "/")  # https://sts.windows.net/{tid}/ has a trailing slash
        config = guard_config(
            audiences=[AUDIENCE],
            issuers=[
                {
                    "kind": "entra",
                    "tenants": [TENANT],
                    "versions": [1],
                    "instance": v1.base_url,
                    "v1_instance": v1.base_url,
                }
            ],
        )
        token = v1.mint(iss=v1.url + "/", aud=AUDIENCE, tid=TENANT, appid="caller-app", ver="1.0")
        async with Verifier(config) as verifier:
            identity = await verifier.verify(token)
    assert identity.app_id == "caller-app"
    assert identity.issuer == f"{v1.base_url}/{TENANT}/"


async def test_entra_version_not_configured_is_refused(entra_v2: TestIssuer) -> None:
    config = guard_config(
        audiences=[CLIENT_ID],
        issuers=[{"kind": "entra", "tenants": [TENANT], "versions": [1], "instance": entra_v2.base_url}],
    )
    async with Verifier(config) as verifier:
        with pytest.raises(ClaimError) as refused:
            await verifier.verify(entra_v2.mint(aud=CLIENT_ID, tid=TENANT))
    assert refused.value.claim == "iss"


async def test_entra_token_whose_tid_differs_from_its_issuer_is_refused(entra_v2: TestIssuer) -> None:
    config = guard_config(
        audiences=[CLIENT_ID],
        issuers=[{"kind": "entra", "tenants": [TENANT], "instance": entra_v2.base_url}],
    )
    async with Verifier(config) as verifier:
        with pytest.raises(ClaimError, match="does not match") as refused:
            await verifier.verify(entra_v2.mint(aud=CLIENT_ID, tid=OTHER_TENANT))
    assert refused.value.claim == "tid"


@pytest.fixture
def common_v2() -> Iterator[TestIssuer]:
    """Entra's /common: discovery names the templated issuer, and each key names it too."""
    with TestIssuer(path="/common/v2.0") as common:
        template = f"{common.base_url}/{{tenantid}}/v2.0"
        common.patch_metadata(issuer=template)
        jwks = common.jwks()
        for key in jwks["keys"]:
            key["issuer"] = template
        common.set_body(common.jwks_path, jwks)
        yield common


def _multi_tenant(common: TestIssuer) -> Verifier:
    config = guard_config(
        audiences=[CLIENT_ID],
        issuers=[
            {
                "kind": "entra",
                "multi_tenant": True,
                "tenants": [TENANT, OTHER_TENANT],
                "versions": [2],
                "instance": common.base_url,
            }
        ],
    )
    return Verifier(config)


async def test_multi_tenant_accepts_every_allowed_tenant_with_one_key_set(common_v2: TestIssuer) -> None:
    async with _multi_tenant(common_v2) as verifier:
        for tid in (TENANT, OTHER_TENANT):
            iss = f"{common_v2.base_url}/{tid}/v2.0"
            identity = await verifier.verify(common_v2.mint(iss=iss, aud=CLIENT_ID, tid=tid))
            assert identity.tenant_id == tid
    assert common_v2.requests[common_v2.jwks_path] == 1


async def test_multi_tenant_refuses_a_tenant_off_the_allow_list(common_v2: TestIssuer) -> None:
    stranger = str(uuid.uuid4())
    token = common_v2.mint(iss=f"{common_v2.base_url}/{stranger}/v2.0", aud=CLIENT_ID, tid=stranger)
    async with _multi_tenant(common_v2) as verifier:
        with pytest.raises(ClaimError, match="not trusted") as refused:
            await verifier.verify(token)
    assert refused.value.claim == "tid"
    assert common_v2.requests[common_v2.jwks_path] == 0  # refused before any key was fetched


async def test_multi_tenant_key_published_for_another_issuer_is_refused(common_v2: TestIssuer) -> None:
    jwks = common_v2.jwks()
    for key in jwks["keys"]:
        key["issuer"] = "https://elsewhere.example/{tenantid}/v2.0"
    common_v2.set_body(common_v2.jwks_path, jwks)
    token = common_v2.mint(iss=f"{common_v2.base_url}/{TENANT}/v2.0", aud=CLIENT_ID, tid=TENANT)
    async with _multi_tenant(common_v2) as verifier:
        with pytest.raises(ClaimError, match="signing key belongs to issuer") as refused:
            await verifier.verify(token)
    assert refused.value.claim == "iss"


async def test_google_id_token_in_front_of_a_cloud_run_style_service(issuer: TestIssuer) -> None:
    # A local stand-in for accounts.google.com: same iss, keys from 127.0.0.1 (development only).
    issuer.patch_metadata(issuer="https://accounts.google.com")
    service_url = "https://blob-api-abc123-uc.a.run.app"
    config = guard_config(
        audiences=[service_url, "https://blob.example.com"],
        issuers=[{"kind": "google", "discovery_url": issuer.discovery_url}],
    )
    claims = {
        "iss": "https://accounts.google.com",
        "azp": "112233445566778899001",
        "email": "caller@proj.iam.gserviceaccount.com",
        "email_verified": True,
        "google": {"compute_engine": {"project_id": "proj", "project_number": 716149158341}},
    }
    async with Verifier(config) as verifier:
        identity = await verifier.verify(issuer.mint(claims, sub="112233445566778899001", aud=service_url))
        custom = await verifier.verify(issuer.mint(claims, aud="https://blob.example.com"))
        slash = await verifier.verify(issuer.mint(claims, aud=service_url + "/"))
    assert identity.email == "caller@proj.iam.gserviceaccount.com"
    assert identity.app_id == "112233445566778899001"
    assert identity.issuer_kind == "google"
    assert custom.subject == slash.subject == "sa-123"


async def test_per_issuer_audiences_replace_the_global_ones(issuer: TestIssuer) -> None:
    config = guard_config(issuers=[{"kind": "oidc", "issuer": issuer.url, "audiences": ["only-this"]}])
    async with Verifier(config) as verifier:
        assert (await verifier.verify(issuer.mint(aud="only-this"))).subject == "sa-123"
        with pytest.raises(ClaimError):
            await verifier.verify(issuer.mint(aud=AUDIENCE))


# -- claims ----------------------------------------------------------------------------------------


async def test_required_claims_by_name_and_by_value(issuer: TestIssuer) -> None:
    config = guard_config(issuer, required_claims={"idtyp": "app", "oid": None})
    async with Verifier(config) as verifier:
        assert await verifier.verify(issuer.mint(aud=AUDIENCE, idtyp="app", oid="o"))
        with pytest.raises(ClaimError, match="requires 'app'") as wrong:
            await verifier.verify(issuer.mint(aud=AUDIENCE, idtyp="user", oid="o"))
        with pytest.raises(ClaimError, match="no 'oid' claim") as missing:
            await verifier.verify(issuer.mint(aud=AUDIENCE, idtyp="app"))
    assert (wrong.value.claim, missing.value.claim) == ("idtyp", "oid")


async def test_the_clock_is_injected_and_the_leeway_applies(verifier: Verifier, issuer: TestIssuer) -> None:
    token = issuer.mint(aud=AUDIENCE, now=1_000_000, lifetime=600)
    assert await verifier.verify(token, now=1_000_000 + 600 + 59)  # leeway 60 s
    with pytest.raises(TokenExpired):
        await verifier.verify(token, now=1_000_000 + 600 + 61)


async def test_a_token_without_sub_is_refused(verifier: Verifier, issuer: TestIssuer) -> None:
    with pytest.raises(ClaimError, match="'sub'"):
        await verifier.verify(issuer.mint({"sub": None}, aud=AUDIENCE))


async def test_unreachable_issuer_without_cached_keys_is_unavailable_not_invalid() -> None:
    with TestIssuer() as issuer:
        config = guard_config(issuer, keys={"timeout": 1})
        token = issuer.mint(aud=AUDIENCE)
        issuer.down()
        async with Verifier(config) as verifier:
            with pytest.raises(IssuerUnavailable) as unavailable:
                await verifier.verify(token)
    assert unavailable.value.code == "issuer_unavailable"


# -- the cache of verified tokens ------------------------------------------------------------------


async def test_a_repeated_token_skips_the_signature_check(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer)) as verifier:
        token = issuer.mint(aud=AUDIENCE)
        first = await verifier.verify(token)
        assert verifier.token_cache is not None
        hits = verifier.token_cache.hits
        keys_for = verifier.keys_for

        async def no_keys(*args: object) -> KeySet:
            raise AssertionError("the signature was checked again")

        verifier.keys_for = no_keys  # type: ignore[method-assign]
        verifier._fresh.clear()
        assert await verifier.verify(token) is first
        assert verifier.token_cache.hits == hits + 1
        verifier.keys_for = keys_for  # type: ignore[method-assign]


async def test_a_cached_token_is_refused_once_expired(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer)) as verifier:
        now = time.time()
        token = issuer.mint(aud=AUDIENCE, now=now, lifetime=100)
        await verifier.verify(token, now=now)
        assert await verifier.verify(token, now=now + 99)
        with pytest.raises(TokenExpired):
            await verifier.verify(token, now=now + 100 + 61)


async def test_the_cache_does_not_hide_a_tampered_token(issuer: TestIssuer) -> None:
    async with Verifier(guard_config(issuer)) as verifier:
        token = issuer.mint(aud=AUDIENCE)
        await verifier.verify(token)
        header, _, signature = token.split(".")
        forged = f"{header}.{issuer.mint(aud=AUDIENCE, sub='admin').split('.')[1]}.{signature}"
        with pytest.raises(InvalidSignature):
            await verifier.verify(forged)


def test_token_cache_is_bounded_least_recently_used_first() -> None:
    cache = TokenCache(2)
    identity = Identity("s", "i", None, None, None, (), (), None, 2e9, {}, "oidc")
    cache.put("a", identity)
    cache.put("b", identity)
    assert cache.get("a", 0) is identity  # "a" is now the most recent
    cache.put("c", identity)
    assert len(cache) == 2
    assert cache.get("b", 0) is None
    assert cache.get("a", 0) is identity


def test_token_cache_keys_are_hashes_not_tokens() -> None:
    cache = TokenCache(4)
    cache.put("secret.token.value", Identity("s", "i", None, None, None, (), (), None, 2e9, {}, "x"))
    assert all(len(key) == 32 and b"secret" not in key for key in cache.entries)


async def test_verifier_shares_a_key_cache_and_leaves_it_open(
    issuer: TestIssuer, key_clock: FakeClock
) -> None:
    async with IssuerKeyCache(allow_http_loopback=True, clock=key_clock) as keys:
        async with Verifier(guard_config(issuer), key_cache=keys) as one:
            await one.verify(issuer.mint(aud=AUDIENCE))
        async with Verifier(guard_config(issuer), key_cache=keys) as two:
            await two.verify(issuer.mint(aud=AUDIENCE))
        assert issuer.requests[issuer.jwks_path] == 1
        assert keys.issuers == [issuer.url]


# -- the inline claims path ------------------------------------------------------------------------

_NOW = 1_800_000_000.0
_CLAIM_GRID: dict[str, list[object]] = {
    "exp": [_NOW + 600, _NOW - 60, _NOW - 61, _NOW - 60.5, int(_NOW) + 1, None, "soon", True],
    "nbf": [None, _NOW - 300, _NOW + 60, _NOW + 61, float(_NOW), "now", False],
    "aud": [AUDIENCE, "api://other", [AUDIENCE], ["api://other"], [], None, 7],
    "sub": ["caller", "", None, 3],
}


def _outcome(check: Callable[..., Identity], *args: object) -> object:
    try:
        return check(*args)
    except VerificationError as exc:  # the refusal itself is the outcome compared
        return (type(exc).__name__, exc.code, str(exc))


@pytest.mark.parametrize("key_extra", [{}, {"issuer": "http://127.0.0.1:1"}])
@pytest.mark.parametrize("required", [(), (("sub", "caller"),)])
async def test_the_inline_claims_path_agrees_with_the_checks_one_by_one(
    key_extra: dict[str, str], required: tuple[tuple[str, str], ...]
) -> None:
    """check_claims decides the common case inline: for every combination of exp/nbf/aud/sub around
    the window's edges and of wrong types, it gives what the ordered checks give (identity or error)."""
    issuer_url = "http://127.0.0.1:1"
    config = guard_config(
        issuers=[{"kind": "oidc", "issuer": issuer_url}],
        leeway=60,
        required_claims=dict(required),
    )
    key = PublicKey(Signer.generate("ES256").public_key().key, kid="k", extra=key_extra)
    async with Verifier(config) as verifier:
        trusted = verifier.issuers.resolve({"iss": issuer_url})
        names = list(_CLAIM_GRID)
        accepted = 0
        for values in itertools.product(*_CLAIM_GRID.values()):
            payload = {"iss": issuer_url} | {
                n: v for n, v in zip(names, values, strict=True) if v is not None
            }
            inline = _outcome(verifier.check_claims, payload, trusted, key, _NOW)
            ordered = _outcome(verifier.check_claims_in_order, payload, trusted, key, _NOW)
            assert inline == ordered, payload
            accepted += isinstance(inline, Identity)
    assert accepted > 0
