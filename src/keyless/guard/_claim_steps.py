"""The claim checks after the signature, as one ordered tuple of named steps.

The verifier runs them in order and stops at the first refusal (``Verifier.check_claims_in_order``;
its inline fast path decides only the common case, and a test pins that both agree); ``explain``
runs every step that applies and reports each. Adding a step here adds it to both.

Each step's ``applies`` depends only on the issuer, the key and the configuration, never on the
token's claims, so the verifier can decide once per (issuer, key) kind which steps to run.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from keyless.guard._checks import (
    check_audience,
    check_expiry,
    check_not_before,
    check_required,
    check_subject,
)
from keyless.guard._config import PRESENT
from keyless.guard._issuers import TrustedIssuer, check_key_issuer, check_tenant
from keyless.jose import PublicKey

__all__ = ["CLAIM_STEPS", "ClaimInput", "ClaimRun", "ClaimStep", "key_names_issuer"]


@dataclass(slots=True)  # not frozen: a frozen dataclass is several times slower to build
class ClaimInput:
    """What the claim steps look at: the payload, the issuer it resolved to (None when untrusted,
    for explain), the verifying key (None when the signature was not checked), the clock."""

    payload: Mapping[str, Any]
    trusted: TrustedIssuer | None
    key: PublicKey | None
    now: float
    leeway: float
    audiences: Collection[str]
    required: tuple[tuple[str, Any], ...]
    expires: float = 0.0  # set by the expiry step


ClaimRun = Callable[[ClaimInput], Any]


@dataclass(frozen=True, slots=True)
class ClaimStep:
    """``run`` raises the refusal or returns its finding (for ``exp``, the expiry; for ``nbf``, it)."""

    name: str
    applies: Callable[[ClaimInput], bool]
    run: ClaimRun


def key_names_issuer(key: PublicKey | None) -> bool:
    return key is not None and bool(key.extra) and isinstance(key.extra.get("issuer"), str)


def _key_names_issuer(c: ClaimInput) -> bool:
    return c.trusted is not None and key_names_issuer(c.key)


def _key_issuer(c: ClaimInput) -> None:
    assert c.trusted is not None
    assert c.key is not None
    check_key_issuer(c.trusted, c.key, c.payload)


def _always(c: ClaimInput) -> bool:
    return True


def _expiry(c: ClaimInput) -> float:
    c.expires = check_expiry(c.payload, c.now, c.leeway)
    return c.expires


def _not_before(c: ClaimInput) -> float | None:
    return check_not_before(c.payload, c.now, c.leeway)


def _audience(c: ClaimInput) -> None:
    check_audience(c.payload, c.audiences)


def _has_tenant(c: ClaimInput) -> bool:
    return c.trusted is not None and c.trusted.tenant_id is not None


def _tenant(c: ClaimInput) -> None:
    assert c.trusted is not None
    check_tenant(c.trusted, c.payload)


def _subject(c: ClaimInput) -> None:
    check_subject(c.payload)


def _has_required(c: ClaimInput) -> bool:
    return bool(c.required)


def _required(c: ClaimInput) -> None:
    check_required(c.payload, c.required, PRESENT)


CLAIM_STEPS: tuple[ClaimStep, ...] = (
    ClaimStep("key issuer", _key_names_issuer, _key_issuer),
    ClaimStep("expiry", _always, _expiry),
    ClaimStep("not before", _always, _not_before),
    ClaimStep("audience", _always, _audience),
    ClaimStep("tenant", _has_tenant, _tenant),
    ClaimStep("subject", _always, _subject),
    ClaimStep("required claims", _has_required, _required),
)
