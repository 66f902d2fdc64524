"""Claim checks that explain failures: the time window (``exp``, ``nbf``) with an explicit clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyless.errors import ClaimError, TokenExpired, TokenNotYetValid

__all__ = ["TimeWindow", "check_time_window", "entra_time"]


@dataclass(frozen=True, slots=True)
class TimeWindow:
    not_before: float | None
    expires: float


def _numeric(payload: Mapping[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimError(claim, f"'{claim}' must be a number of seconds since the epoch")
    return float(value)


def check_time_window(payload: Mapping[str, Any], *, now: float, leeway: float) -> TimeWindow:
    """Require ``exp``; refuse ``now`` past ``exp`` or before ``nbf``, each give or take ``leeway``."""
    expires = _numeric(payload, "exp")
    if expires is None:
        raise ClaimError("exp", "the token has no 'exp' claim")
    not_before = _numeric(payload, "nbf")
    if now > expires + leeway:
        raise TokenExpired("exp", f"the token expired {now - expires:.0f} s ago (leeway {leeway:.0f} s)")
    if not_before is not None and now + leeway < not_before:
        raise TokenNotYetValid(
            "nbf", f"the token is not valid for another {not_before - now:.0f} s (leeway {leeway:.0f} s)"
        )
    return TimeWindow(not_before, expires)


def entra_time(epoch: float | None) -> str:
    """Entra's time format in AADSTS700024: ``2024-10-02T22:05:03.6755165Z`` (no ``nbf`` = 1970)."""
    moment = dt.datetime.fromtimestamp(epoch or 0, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"
