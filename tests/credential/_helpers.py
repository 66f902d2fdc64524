"""Small helpers for the credential's tests: unsigned-but-well-formed JWTs and a fake clock."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def fake_jwt(*, exp: float | None = None, lifetime: float = 3600, **claims: Any) -> str:
    """A JWT-shaped assertion (the signature is junk: the SDK never checks it; servers would)."""
    payload: dict[str, Any] = {
        "iss": "https://issuer.example",
        "sub": "workload",
        "aud": "api://AzureADTokenExchange",
    }
    payload["exp"] = int(exp if exp is not None else time.time() + lifetime)
    payload.update(claims)
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(payload)}.c2lnbmF0dXJl"


class FakeTime:
    """A clock that only moves when told to (or when something sleeps on it)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
