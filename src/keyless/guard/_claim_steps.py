"""The claim checks after the signature, as one ordered tuple of named steps.

The verifier runs them in order and stops at the first refusal (``Verifier.check_claims_in_order``;
its inline fast path decides only the common case, and a test pins that both agree); ``explain``
runs every step that applies and reports each. Adding a step here adds it to both.
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

__all__ = ["CLAIM_STEPS", "ClaimInput", "ClaimStep"]


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class ClaimStep:
    """``run`` raises the refusal or returns its finding (for ``exp``, the expiry; for ``nbf``, it)."""

    name: str
    applies: Callable[[ClaimInput], bool]
    run: Callable[[ClaimInput], Any]


def _key_names_issuer(c: ClaimInput) -> bool:
    return c.trusted is not None and c.key is not None and isinstance((c.key.extra or {}).get("issuer"), str)


def _key_issuer(c: ClaimInput) -> None:
    assert c.trusted is not None
    assert c.key is not None
    check_key_issuer(c.trusted, c.key, c.payload)


def _always(c: ClaimInput) -> bool:
    return True


def _has_tenant(c: ClaimInput) -> bool:
    return c.trusted is not None and c.trusted.tenant_id is not None


def _tenant(c: ClaimInput) -> None:
    assert c.trusted is not None
    check_tenant(c.trusted, c.payload)


def _has_required(c: ClaimInput) -> bool:
    return bool(c.required)


CLAIM_STEPS: tuple[ClaimStep, ...] = (
    ClaimStep("key issuer", _key_names_issuer, _key_issuer),
    ClaimStep("expiry", _always, lambda c: check_expiry(c.payload, c.now, c.leeway)),
    ClaimStep("not before", _always, lambda c: check_not_before(c.payload, c.now, c.leeway)),
    ClaimStep("audience", _always, lambda c: check_audience(c.payload, c.audiences)),
    ClaimStep("tenant", _has_tenant, _tenant),
    ClaimStep("subject", _always, lambda c: check_subject(c.payload)),
    ClaimStep("required claims", _has_required, lambda c: check_required(c.payload, c.required, PRESENT)),
)
