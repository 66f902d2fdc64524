"""Signing keys of each tenant: creation, rotation, promotion, retirement.

Lifecycle of a key: PENDING (published in the JWKS, not signing) -> ACTIVE at ``activates_at``
-> RETIRED when a newer key activates -> deleted once every token it signed has expired
(``retired_at + longest token lifetime``). Private keys are sealed with the key-encryption key;
the ``kid`` is bound into the seal so rows cannot be swapped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from keyless.authority.model import KeyState, SigningKeyRecord
from keyless.authority.store._protocol import Store
from keyless.errors import Conflict, NotFound
from keyless.jose import KeyEncryptionKey, Signer, SignerAlg

__all__ = ["KeyManager", "current_signer_record", "published_records"]

log = logging.getLogger("keyless.keys")


def _aad(kid: str) -> bytes:
    return b"keyless-signing-key:" + kid.encode()


class KeyManager:
    def __init__(self, store: Store, kek: KeyEncryptionKey, *, max_token_lifetime: int) -> None:
        self._store = store
        self._kek = kek
        self._max_token_lifetime = max_token_lifetime
        # Loaded signers by kid, with the sealed key they came from: loading an RSA key (with
        # cryptography's key validation) costs ~10-40 ms, and every snapshot rebuild needs them all.
        self._signers: dict[str, tuple[bytes, Signer]] = {}

    def new_key(self, tenant_id: str, alg: SignerAlg, *, now: float, activates_at: float) -> SigningKeyRecord:
        """Generate and store a key that becomes the signing key at ``activates_at``."""
        signer = Signer.generate(alg, common_name=f"keyless {tenant_id}")
        state = KeyState.ACTIVE if activates_at <= now else KeyState.PENDING
        record = SigningKeyRecord(
            kid=signer.kid,
            tenant_id=tenant_id,
            alg=alg,
            private_key_encrypted=self._kek.seal(signer.private_pkcs8(), aad=_aad(signer.kid)),
            cert_der=signer.cert_der,
            state=state,
            created_at=now,
            activates_at=activates_at,
        )
        return self._store.add_signing_key(record)

    def ensure_key(self, tenant_id: str, alg: SignerAlg, *, now: float) -> None:
        """Give a tenant its first key if it has none that can sign with ``alg``."""
        live = [k for k in self._store.list_signing_keys(tenant_id) if k.state != KeyState.RETIRED]
        if not any(k.alg == alg for k in live):
            self.new_key(tenant_id, alg, now=now, activates_at=now)

    def rotate(self, tenant_id: str, alg: SignerAlg, *, now: float, publish_delay: float) -> SigningKeyRecord:
        """Add a key published now that starts signing after ``publish_delay`` seconds."""
        return self.new_key(tenant_id, alg, now=now, activates_at=now + publish_delay)

    def signer(self, record: SigningKeyRecord) -> Signer:
        """The loaded signer of ``record``: decrypted and loaded once per process, then reused."""
        cached = self._signers.get(record.kid)
        if cached is not None and cached[0] == record.private_key_encrypted:
            return cached[1]
        pkcs8 = self._kek.open(record.private_key_encrypted, aad=_aad(record.kid))
        signer = Signer.from_pkcs8(pkcs8, record.cert_der, record.alg)
        self._signers[record.kid] = (record.private_key_encrypted, signer)
        return signer

    def retain(self, kids: Iterable[str]) -> None:
        """Forget loaded signers whose keys are gone from the store (deleted after retirement)."""
        keep = set(kids)
        for kid in [k for k in self._signers if k not in keep]:
            self._signers.pop(kid, None)

    def tick(self, tenant_ids: Iterable[str], *, now: float) -> int:
        """Promote due keys, retire the ones they replace, delete expired retirees. Returns changes."""
        changes = 0
        for tenant_id in tenant_ids:
            changes += self._tick_tenant(tenant_id, now)
        return changes

    def _tick_tenant(self, tenant_id: str, now: float) -> int:
        keys = self._store.list_signing_keys(tenant_id)
        current = current_signer_record(keys, now)
        changes = 0
        for key in keys:
            try:
                changes += self._settle(key, current, now)
            except (Conflict, NotFound):
                continue  # another node got there first
        return changes

    def _settle(self, key: SigningKeyRecord, current: SigningKeyRecord | None, now: float) -> int:
        if current is not None and key.kid == current.kid:
            if key.state != KeyState.ACTIVE:
                self._store.update_signing_key(dataclasses.replace(key, state=KeyState.ACTIVE))
                log.info("signing key %s of tenant %s is now active", key.kid, key.tenant_id)
                return 1
            return 0
        if key.state == KeyState.ACTIVE and current is not None:
            self._store.update_signing_key(dataclasses.replace(key, state=KeyState.RETIRED, retired_at=now))
            log.info("signing key %s of tenant %s retired", key.kid, key.tenant_id)
            return 1
        if key.state == KeyState.RETIRED and (key.retired_at or 0) + self._max_token_lifetime < now:
            self._store.delete_signing_key(key.kid)
            log.info("retired signing key %s of tenant %s removed", key.kid, key.tenant_id)
            return 1
        return 0


def current_signer_record(keys: Iterable[SigningKeyRecord], now: float) -> SigningKeyRecord | None:
    """The key that signs at ``now``: the latest-activated non-retired key already due."""
    due = [k for k in keys if k.state != KeyState.RETIRED and k.activates_at <= now]
    return max(due, key=lambda k: (k.activates_at, k.created_at), default=None)


def published_records(keys: Iterable[SigningKeyRecord]) -> list[SigningKeyRecord]:
    """Every stored key is published: pending (before it signs), active, retired (until deleted)."""
    return sorted(keys, key=lambda k: (k.activates_at, k.kid))
