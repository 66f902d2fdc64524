"""The emulator's issuer, without HTTP: claim sets, reuse until close to expiry, key rotation and
retirement, and opaque access tokens. A fake clock stands in for time."""

from __future__ import annotations

import threading

import pytest

from keyless.jose import KeySet, parse_compact, verify_signature
from keyless.metadata import (
    DEFAULT_UNIQUE_ID,
    GOOGLE_ISSUER,
    MetadataConfig,
    MetadataIssuer,
    load_metadata_config,
)

BASE = "http://127.0.0.1:8080"
AUDIENCE = "api://AzureADTokenExchange"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def issuer_for(config: MetadataConfig | None = None, clock: Clock | None = None) -> MetadataIssuer:
    return MetadataIssuer(config or MetadataConfig(), base_url=BASE, clock=clock or Clock())


def verify(issuer: MetadataIssuer, token: str) -> None:
    verify_signature(parse_compact(token), KeySet.from_jwks(issuer.jwks()), algorithms=["RS256"])


def test_standard_claims_are_googles_with_the_unique_id_as_subject() -> None:
    clock = Clock()
    issuer = issuer_for(clock=clock)
    token = issuer.identity_token(issuer.config.default_account, AUDIENCE)
    parsed = parse_compact(token)
    assert parsed.header == {"typ": "JWT", "alg": "RS256", "kid": issuer.keys.current.kid}
    assert parsed.payload == {
        "aud": AUDIENCE,
        "azp": DEFAULT_UNIQUE_ID,
        "email": "default@keyless-local.iam.gserviceaccount.com",
        "email_verified": True,
        "exp": int(clock.now) + 3600,
        "iat": int(clock.now),
        "iss": BASE,
        "sub": DEFAULT_UNIQUE_ID,
    }
    verify(issuer, token)


def test_google_issuer_mode_mints_with_googles_issuer() -> None:
    issuer = issuer_for(load_metadata_config(issuer="google"))
    token = issuer.identity_token(issuer.config.default_account, AUDIENCE)
    assert parse_compact(token).payload["iss"] == GOOGLE_ISSUER
    assert issuer.discovery_document()["issuer"] == GOOGLE_ISSUER
    assert issuer.discovery_document()["jwks_uri"] == f"{BASE}/oauth2/v3/certs"


def test_licenses_only_count_with_the_full_format() -> None:
    issuer = issuer_for(load_metadata_config(license_ids=["7"]))
    account = issuer.config.default_account
    standard = issuer.identity_token(account, AUDIENCE, licenses=True)
    assert "google" not in parse_compact(standard).payload
    assert standard == issuer.identity_token(account, AUDIENCE)
    full = parse_compact(issuer.identity_token(account, AUDIENCE, format="full", licenses=True)).payload
    assert full["google"]["compute_engine"]["license_id"] == ["7"]


def test_a_token_is_reused_until_fewer_than_the_margin_seconds_remain() -> None:
    clock = Clock()
    issuer = issuer_for(clock=clock)
    account = issuer.config.default_account
    first = issuer.identity_token(account, AUDIENCE)
    clock.now += 3600 - 301
    assert issuer.identity_token(account, AUDIENCE) == first
    clock.now += 1
    assert issuer.identity_token(account, AUDIENCE) != first


def test_a_margin_as_long_as_the_lifetime_mints_every_time() -> None:
    clock = Clock()
    issuer = issuer_for(load_metadata_config(reuse_margin=3600), clock)
    tokens = set()
    for _ in range(3):
        tokens.add(issuer.identity_token(issuer.config.default_account, AUDIENCE))
        clock.now += 1
    assert len(tokens) == 3


def test_mint_with_a_past_clock_backdates_the_token_without_caching_it() -> None:
    clock = Clock()
    issuer = issuer_for(clock=clock)
    account = issuer.config.default_account
    token = issuer.mint_identity_token(account, AUDIENCE, now=clock.now - 7200)
    assert parse_compact(token).payload["exp"] == int(clock.now) - 3600
    assert parse_compact(issuer.identity_token(account, AUDIENCE)).payload["iat"] == int(clock.now)


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire() -> None:
    clock = Clock()
    issuer = issuer_for(clock=clock)
    account = issuer.config.default_account
    old_token = issuer.identity_token(account, AUDIENCE)
    old_kid = issuer.keys.current.kid
    new_kid = issuer.rotate_keys()
    new_token = issuer.identity_token(account, AUDIENCE)
    assert parse_compact(new_token).kid == new_kid != old_kid
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [new_kid, old_kid]
    verify(issuer, old_token)
    clock.now += 3600 + 300
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [new_kid, old_kid]
    clock.now += 1
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [new_kid]
    assert list(issuer.pem_certificates()) == [new_kid]


def test_keys_rotate_on_their_own_when_an_interval_is_set() -> None:
    clock = Clock()
    issuer = issuer_for(load_metadata_config(key_rotation_interval=600), clock)
    first = issuer.keys.current.kid
    clock.now += 599
    assert [k["kid"] for k in issuer.jwks()["keys"]] == [first]
    clock.now += 1
    token = issuer.identity_token(issuer.config.default_account, AUDIENCE)
    assert parse_compact(token).kid != first
    assert len(issuer.jwks()["keys"]) == 2


def test_access_tokens_are_opaque_reused_and_described() -> None:
    clock = Clock()
    issuer = issuer_for(clock=clock)
    account = issuer.config.default_account
    token = issuer.access_token(account)
    assert token.token.startswith("ya29.")
    assert token.scopes == account.scopes
    assert token.expires_in(clock.now) == 3600
    assert issuer.access_token(account) is token
    assert issuer.access_token(account, ["b", "a"]) is issuer.access_token(account, ["a", "b"])
    assert issuer.access_token(account, ["a"]) is not token
    assert issuer.access_token_info(token.token) == token
    clock.now += 3600
    assert issuer.access_token_info(token.token) is None
    assert issuer.access_token_info("ya29.unknown") is None


def test_concurrent_requests_for_one_token_all_get_a_valid_token() -> None:
    issuer = issuer_for()
    account = issuer.config.default_account
    tokens: list[str] = []
    lock = threading.Lock()

    def fetch() -> None:
        for _ in range(20):
            token = issuer.identity_token(account, AUDIENCE)
            with lock:
                tokens.append(token)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 160
    for token in set(tokens):
        verify(issuer, token)


@pytest.mark.parametrize("format", ["standard", "full"])
def test_every_account_gets_tokens_with_its_own_subject(format: str) -> None:
    config = load_metadata_config(
        service_accounts=[
            {"email": "a@p-123456.iam.gserviceaccount.com", "unique_id": "100000000000000000001"},
            {"email": "b@p-123456.iam.gserviceaccount.com", "unique_id": "100000000000000000002"},
        ]
    )
    issuer = issuer_for(config)
    subjects = [
        parse_compact(
            issuer.identity_token(a, AUDIENCE, format="full" if format == "full" else "standard")
        ).payload["sub"]
        for a in config.service_accounts
    ]
    assert subjects == ["100000000000000000001", "100000000000000000002"]
