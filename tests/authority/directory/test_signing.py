"""Signing-key lifecycle: a rotated key is published before it signs, the old one stays published
until its tokens have expired, and private keys are sealed at rest."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from tests._support.authority_server import Federation, RunningAuthority

from keyless.authority.directory.signing import KeyManager, current_signer_record
from keyless.authority.model import KeyState
from keyless.authority.store import SqlStore
from keyless.errors import ConfigurationError
from keyless.jose import KeyEncryptionKey


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    return SqlStore.from_url(f"sqlite:///{tmp_path / 'k.db'}", migrate=True)


def _tenant(store: SqlStore) -> str:
    from keyless.authority.model import Tenant

    return store.create_tenant(Tenant(id="7a9b3c1e-0000-4000-8000-000000000001", display_name="t")).id


def test_rotated_key_is_pending_until_its_activation_time(store: SqlStore) -> None:
    keys = KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=5400)
    tid = _tenant(store)
    first = keys.new_key(tid, "RS256", now=1000, activates_at=1000)
    second = keys.rotate(tid, "RS256", now=2000, publish_delay=3600)
    assert second.state == KeyState.PENDING
    assert current_signer_record(store.list_signing_keys(tid), 2000).kid == first.kid  # type: ignore[union-attr]
    assert current_signer_record(store.list_signing_keys(tid), 5600).kid == second.kid  # type: ignore[union-attr]


def test_tick_promotes_retires_and_finally_deletes(store: SqlStore) -> None:
    keys = KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=5400)
    tid = _tenant(store)
    first = keys.new_key(tid, "RS256", now=1000, activates_at=1000)
    second = keys.rotate(tid, "RS256", now=2000, publish_delay=100)
    keys.tick([tid], now=2100)
    states = {k.kid: k.state for k in store.list_signing_keys(tid)}
    assert states == {first.kid: KeyState.RETIRED, second.kid: KeyState.ACTIVE}
    keys.tick([tid], now=2100 + 5399)
    assert len(store.list_signing_keys(tid)) == 2  # tokens signed by the old key may still be alive
    keys.tick([tid], now=2100 + 5401)
    assert [k.kid for k in store.list_signing_keys(tid)] == [second.kid]


def test_private_keys_are_sealed_with_the_key_encryption_key(store: SqlStore) -> None:
    kek = KeyEncryptionKey.generate()
    keys = KeyManager(store, kek, max_token_lifetime=5400)
    record = keys.new_key(_tenant(store), "RS256", now=1, activates_at=1)
    assert b"PRIVATE" not in record.private_key_encrypted
    assert keys.signer(record).kid == record.kid
    with pytest.raises(ConfigurationError, match="key-encryption key"):
        KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=1).signer(record)


def test_sealed_key_cannot_be_moved_to_another_kid(store: SqlStore) -> None:
    import dataclasses

    kek = KeyEncryptionKey.generate()
    keys = KeyManager(store, kek, max_token_lifetime=5400)
    tid = _tenant(store)
    a = keys.new_key(tid, "RS256", now=1, activates_at=1)
    b = keys.new_key(tid, "RS256", now=2, activates_at=2)
    swapped = dataclasses.replace(b, private_key_encrypted=a.private_key_encrypted)
    with pytest.raises(ConfigurationError):
        keys.signer(swapped)


def _token(authority: RunningAuthority, federation: Federation, secret: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_secret": secret,
        "scope": federation.scope,
    }
    with httpx.Client(verify=authority.ssl_context()) as client:
        token: str = client.post(authority.token_url(federation.tenant_id), data=form).json()["access_token"]
        return token


def _published(authority: RunningAuthority, tenant: str) -> list[str]:
    with httpx.Client(verify=authority.ssl_context()) as client:
        return [
            k["kid"] for k in client.get(f"{authority.base_url}/{tenant}/discovery/v2.0/keys").json()["keys"]
        ]


def test_rotation_through_the_running_server_publishes_first_then_signs(
    authority: RunningAuthority, federation: Federation
) -> None:
    secret = authority.admin.add_secret(federation.client).value
    old_kid = jwt.get_unverified_header(_token(authority, federation, secret))["kid"]
    pending = authority.admin.rotate_keys(federation.tenant_id, publish_delay=3600)
    assert set(_published(authority, federation.tenant_id)) == {old_kid, pending.kid}
    assert jwt.get_unverified_header(_token(authority, federation, secret))["kid"] == old_kid
    now_active = authority.admin.rotate_keys(federation.tenant_id, publish_delay=0)
    # "0" is raised to the propagation time (KEYLESS_KEY_PROPAGATION_SECONDS): published
    # everywhere first, then signing
    assert now_active.activates_at == pytest.approx(now_active.created_at + 5.0)
    assert jwt.get_unverified_header(_token(authority, federation, secret))["kid"] == old_kid
    assert now_active.kid in _published(authority, federation.tenant_id)
    time.sleep(max(0.0, now_active.activates_at - time.time()) + 0.1)
    authority.admin.housekeeping()
    assert jwt.get_unverified_header(_token(authority, federation, secret))["kid"] == now_active.kid
    assert old_kid in _published(authority, federation.tenant_id)  # still published for its live tokens


def test_an_emergency_rotation_signs_only_with_a_key_every_node_already_publishes(tmp_path: Path) -> None:
    """Two nodes on one PostgreSQL, rotated with ``--publish-delay 0`` on the first: every token
    the first signs from then on names a kid the second node's JWKS already lists (a resource
    server may fetch the JWKS from either). Without the propagation floor the first tokens after
    the rotation carry a kid the second node learns only at its next poll."""
    import base64
    import os

    from tests._services import fresh_postgres_schema, postgres_url_or_skip
    from tests._support.authority_server import run_authority, seed_federation

    kek = base64.b64encode(os.urandom(32)).decode()
    with fresh_postgres_schema(postgres_url_or_skip()) as url:
        shared = {"database_url": url, "kek": kek, "cache_poll_interval": 1.0}
        with (
            run_authority(tmp_path / "a", **shared) as first,
            run_authority(tmp_path / "b", **shared) as second,
        ):
            federation = seed_federation(first.admin, issuer="https://token.actions.githubusercontent.com")
            secret = first.admin.add_secret(federation.client).value
            second.authority.cache.refresh(force=True)
            rotated = first.admin.rotate_keys(federation.tenant_id, publish_delay=0)
            deadline = rotated.activates_at + 3
            kids = set()
            while time.time() < deadline:
                kid = jwt.get_unverified_header(_token(first, federation, secret))["kid"]
                kids.add(kid)
                assert kid in _published(second, federation.tenant_id), (
                    f"{kid} not yet published by the other node"
                )
                first.admin.housekeeping()
                time.sleep(0.05)
            assert rotated.kid in kids  # it did start signing
