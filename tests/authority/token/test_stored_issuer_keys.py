"""External issuers' keys kept in the store: a node started while the issuer is down still
exchanges its tokens, and a hung issuer never makes a request wait while a key set is at hand."""

from __future__ import annotations

import time
from pathlib import Path

from tests._support.authority_server import run_authority, seed_federation
from tests._support.oidc_issuer import TestIssuer
from tests.authority.test_token_errors import SUBJECT, federated_form, post

from keyless.authority.store import SqlStore

DEV = {"dev_mode": True, "allow_http_loopback_issuers": True}


def _stored(data_dir: Path, issuer: str) -> tuple[str, float] | None:
    store = SqlStore.from_url(f"sqlite:///{data_dir / 'keyless.db'}")
    try:
        return store.load_issuer_keys(issuer)
    finally:
        store.close()


def test_a_node_started_during_the_issuers_outage_uses_the_stored_key_set(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    with TestIssuer() as issuer:
        with run_authority(data_dir, **DEV) as first:
            federation = seed_federation(first.admin, issuer=issuer.url, subject=SUBJECT)
            assertion = issuer.mint(sub=SUBJECT, lifetime=600)
            assert post(first, federation.tenant_id, federated_form(federation, assertion)).status_code == 200
            deadline = time.monotonic() + 5
            while _stored(data_dir, issuer.url) is None and time.monotonic() < deadline:
                time.sleep(0.05)
        assert _stored(data_dir, issuer.url) is not None
        issuer.down()
        issuer.reset_counts()
        with run_authority(data_dir, **DEV) as restarted:
            answer = post(restarted, federation.tenant_id, federated_form(federation, assertion))
            assert answer.status_code == 200, answer.text


def test_a_hung_issuer_does_not_delay_requests_while_a_key_set_is_at_hand(tmp_path: Path) -> None:
    with (
        TestIssuer() as issuer,
        run_authority(tmp_path / "a", jwks_max_age=1, jwks_refresh_cooldown=0.5, **DEV) as authority,
    ):
        federation = seed_federation(authority.admin, issuer=issuer.url, subject=SUBJECT)
        assertion = issuer.mint(sub=SUBJECT, lifetime=600)
        assert post(authority, federation.tenant_id, federated_form(federation, assertion)).status_code == 200
        for path in (issuer.discovery_path, issuer.jwks_path):
            issuer.set_delay(path, 30)  # accepts the connection, then answers nothing in time
        time.sleep(1.1)  # the key set is past its max age: a refresh is due
        for _ in range(5):
            started = time.monotonic()
            answer = post(authority, federation.tenant_id, federated_form(federation, assertion))
            took = time.monotonic() - started
            assert answer.status_code == 200, answer.text
            assert took < 1.0, f"a request waited {took:.1f} s for the hung issuer"


def test_the_store_keeps_the_newest_key_set_of_each_issuer(tmp_path: Path) -> None:
    store = SqlStore.from_url(f"sqlite:///{tmp_path / 'k.db'}", migrate=True)
    try:
        store.save_issuer_keys("https://issuer.example", '{"keys": [1]}', 100.0)
        store.save_issuer_keys("https://issuer.example", '{"keys": [2]}', 200.0)
        store.save_issuer_keys("https://issuer.example", '{"keys": [0]}', 50.0)  # older: ignored
        assert store.load_issuer_keys("https://issuer.example") == ('{"keys": [2]}', 200.0)
        assert store.load_issuer_keys("https://other.example") is None
    finally:
        store.close()
