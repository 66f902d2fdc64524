"""Claim checks that explain failures: the time window (``exp``, ``nbf``) with an explicit clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyless.errors import ClaimError, TokenExpired, TokenNotYetValid

__all__ = ["TimeWindow", "check_expiry", "check_not_before", "check_time_window", "entra_time"]


@dataclass(frozen=True, slots=True)
class TimeWindow:
    not_before: float | None
    expires: float


def _not_seconds(claim: str) -> ClaimError:
    return ClaimError(claim, f"'{claim}' must be a number of seconds since the epoch")


def _seconds(payload: Mapping[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is not None and type(value) is not int and type(value) is not float:  # bool is no number
        raise _not_seconds(claim)
    return value


def check_expiry(payload: Mapping[str, Any], now: float, leeway: float) -> float:
    """``exp`` is required; ``now`` must not be past it by more than ``leeway``. Returns ``exp``.

    Written for the guard's hot path: type checks inline, no helper calls on success.
    """
    expires = payload.get("exp")
    if type(expires) is not int and type(expires) is not float:
        if expires is None:
            raise ClaimError("exp", "the token has no 'exp' claim")
        raise _not_seconds("exp")
    if now > expires + leeway:
        raise TokenExpired("exp", f"the token expired {now - expires:.0f} s ago (leeway {leeway:.0f} s)")
    return expires


def check_not_before(payload: Mapping[str, Any], now: float, leeway: float) -> float | None:
    """If the token has ``nbf``, ``now`` must not be before it by more than ``leeway``."""
    not_before = payload.get("nbf")
    if not_before is None:
        return None
    if type(not_before) is not int and type(not_before) is not float:
        raise _not_seconds("nbf")
    if now + leeway < not_before:
        raise TokenNotYetValid(
            "nbf", f"the token is not valid for another {not_before - now:.0f} s (leeway {leeway:.0f} s)"
        )
    return not_before


def check_time_window(payload: Mapping[str, Any], *, now: float, leeway: float) -> TimeWindow:
    """Require ``exp``; refuse ``now`` past ``exp`` or before ``nbf``, each give or take ``leeway``.

    Malformed claims are reported before time problems (a missing or non-numeric ``exp``, then a
    non-numeric ``nbf``), then expiry, then not-yet-valid.
    """
    if payload.get("exp") is None:
        raise ClaimError("exp", "the token has no 'exp' claim")
    _seconds(payload, "exp")
    _seconds(payload, "nbf")
    expires = check_expiry(payload, now, leeway)
    return TimeWindow(check_not_before(payload, now, leeway), expires)


def entra_time(epoch: float | None) -> str:
    """Entra's time format in AADSTS700024: ``2024-10-02T22:05:03.6755165Z`` (no ``nbf`` = 1970)."""
    moment = dt.datetime.fromtimestamp(epoch or 0, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"
