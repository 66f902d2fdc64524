"""The decision for one HTTP request, shared by the middleware and the proxy.

In order: a path that cannot be matched safely is refused (400, see ``_request_safety``); an
anonymous path passes (``forward_authorization`` says whether the caller's unverified
``Authorization`` may go on with it); the
bearer token is taken from ``X-Serverless-Authorization`` if present (as Cloud Run does, leaving
``Authorization`` to the application) or else from ``Authorization``; no token is 401 with a bare
``Bearer`` challenge (RFC 6750 §3.1: no error code when no credentials were sent), a token that
fails verification is 401 ``invalid_token``, an issuer whose keys cannot be had is 503, and a
verified caller the policy does not allow is 403 ``insufficient_scope``.

Pure ASGI data (lists of byte pairs): no server package is imported.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from keyless.errors import VerificationError
from keyless.guard._identity import Identity
from keyless.guard._policy import Policy
from keyless.guard._request_safety import unsafe_path
from keyless.guard._verifier import IssuerUnavailable, Verifier

__all__ = [
    "AUTHORIZATION",
    "SERVERLESS_AUTHORIZATION",
    "Gate",
    "Outcome",
    "access_logger",
    "bearer_token",
    "log_access",
    "refusal",
]

AUTHORIZATION = b"authorization"
SERVERLESS_AUTHORIZATION = b"x-serverless-authorization"
access_logger = logging.getLogger("keyless.guard.access")
NO_TOKEN = "no bearer token (Authorization or X-Serverless-Authorization)"


@dataclass(slots=True)
class Outcome:
    """What the gate decided. ``code`` is for machines, ``reason`` for people (never the token)."""

    allowed: bool
    status: int
    code: str  # allowed, anonymous, no_token, invalid_request, bad_path, forbidden, issuer_unavailable, or
    reason: str  # a VerificationError code (malformed, expired, ...)
    identity: Identity | None = None
    token_header: bytes | None = None  # the header the token came from (the proxy strips it)
    error: str | None = None  # RFC 6750 error: invalid_request, invalid_token, insufficient_scope
    scope: tuple[str, ...] = ()
    forward_authorization: bool = False  # an anonymous path whose rule lets Authorization through

    @property
    def strips_tokens(self) -> bool:
        """Whether the caller's ``Authorization`` / ``X-Serverless-Authorization`` must not go on:
        an anonymous path (nothing verified them) whose rule does not say ``forward_authorization``."""
        return self.code == "anonymous" and not self.forward_authorization


def _split_bearer(value: bytes) -> tuple[str | None, str | None]:
    scheme, _, rest = value.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None, None
    token = rest.strip()
    if not token or b" " in token:
        return None, "the Bearer credentials are malformed"
    try:
        return token.decode("ascii"), None
    except UnicodeDecodeError:
        return None, "the bearer token is not ASCII"


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None, str | None]:
    """``(token, header name, problem)`` from ASGI headers (lower-case names).

    ``X-Serverless-Authorization`` wins over ``Authorization``. A header given twice, or a malformed
    ``Bearer`` value, is a problem (400 ``invalid_request``); another scheme (``Basic``) is no token.
    """
    serverless: list[bytes] = []
    authorization: list[bytes] = []
    for name, value in headers:
        if name == SERVERLESS_AUTHORIZATION:
            serverless.append(value)
        elif name == AUTHORIZATION:
            authorization.append(value)
    for name, values in ((SERVERLESS_AUTHORIZATION, serverless), (AUTHORIZATION, authorization)):
        if not values:
            continue
        if len(values) > 1:
            return None, name, f"more than one {name.decode()} header"
        token, problem = _split_bearer(values[0])
        if problem is not None:
            return None, name, problem
        if token is not None:
            return token, name, None
        if name == SERVERLESS_AUTHORIZATION:
            return None, name, "X-Serverless-Authorization must carry a Bearer token"
    return None, None, None


class Gate:
    """Authenticate (verifier) and authorize (policy) one request."""

    def __init__(self, verifier: Verifier, policy: Policy | None = None, *, realm: str = "keyless") -> None:
        self.verifier = verifier
        self.policy = policy if policy is not None else verifier.config.policy
        self.realm = realm

    async def check(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[bytes, bytes]],
        raw_path: bytes | None = None,
    ) -> Outcome:
        policy = self.policy
        bad = unsafe_path(path, raw_path, case_insensitive=policy.case_insensitive_paths)
        if bad is not None:
            return Outcome(False, 400, "bad_path", bad, error="invalid_request")
        rule = policy.match(method, path)
        if rule is not None and rule.allow == "anonymous":
            return Outcome(
                True,
                200,
                "anonymous",
                f"anonymous path ({rule.where})",
                forward_authorization=rule.forward_authorization,
            )
        token, header, problem = bearer_token(headers)
        if problem is not None:
            return Outcome(
                False, 400, "invalid_request", problem, token_header=header, error="invalid_request"
            )
        if token is None:
            return Outcome(False, 401, "no_token", NO_TOKEN)
        try:
            identity = await self.verifier.verify(token)
        except IssuerUnavailable as exc:
            return Outcome(False, 503, exc.code, exc.reason, token_header=header)
        except VerificationError as exc:
            return Outcome(False, 401, exc.code, exc.reason, token_header=header, error="invalid_token")
        decision = policy.decide_rule(rule, identity, method.upper(), path)
        if decision.allowed:
            return Outcome(True, 200, "allowed", decision.reason, identity, header)
        return Outcome(
            False,
            403,
            "forbidden",
            decision.reason,
            identity,
            header,
            error="insufficient_scope",
            scope=decision.required,
        )


_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def _quoted(text: str, limit: int = 300) -> str:
    """A value for an RFC 6750 auth-param: its allowed characters only, cut short."""
    text = text.replace('"', "'").replace("\\", "/")
    text = _UNSAFE.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def challenge(outcome: Outcome, realm: str) -> bytes:
    """The ``WWW-Authenticate`` value for a refusal (RFC 6750 §3)."""
    parts = [f'Bearer realm="{_quoted(realm)}"']
    if outcome.error is not None:
        parts.append(f'error="{outcome.error}"')
        parts.append(f'error_description="{_quoted(outcome.reason)}"')
        if outcome.scope:
            parts.append(f'scope="{_quoted(" ".join(outcome.scope))}"')
    return ", ".join(parts).encode("ascii")


_ERRORS = {502: "bad_gateway", 503: "temporarily_unavailable", 504: "gateway_timeout"}


def refusal(outcome: Outcome, realm: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and a small JSON body for a refused request."""
    error = outcome.error or _ERRORS.get(outcome.status, "unauthorized")
    body = json.dumps({"error": error, "error_description": outcome.reason, "code": outcome.code}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if outcome.status in (400, 401, 403):
        headers.append((b"www-authenticate", challenge(outcome, realm)))
    if outcome.status == 503:
        headers.append((b"retry-after", b"30"))
    return outcome.status, headers, body


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def log_access(
    method: str,
    path: str,
    status: int,
    outcome: Outcome,
    seconds: float,
    *,
    upstream: str | None = None,
) -> None:
    """One line per request: the decision and its reason, who called, never the token."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    identity = outcome.identity
    subject = identity.subject if identity is not None else "-"
    issuer = identity.issuer if identity is not None else "-"
    decision = "allow" if outcome.allowed else "deny"
    access_logger.info(
        '%s %s %d %s %s sub=%s iss=%s %.1fms%s reason="%s"',
        method,
        _CONTROL.sub("?", path),
        status,
        decision,
        outcome.code,
        _CONTROL.sub("?", subject),
        _CONTROL.sub("?", issuer),
        seconds * 1000,
        f" upstream={upstream}" if upstream else "",
        _CONTROL.sub("?", outcome.reason).replace('"', "'"),
        extra={
            "guard": {
                "method": method,
                "path": path,
                "status": status,
                "decision": decision,
                "code": outcome.code,
                "reason": outcome.reason,
                "subject": None if identity is None else identity.subject,
                "issuer": None if identity is None else identity.issuer,
                "duration_ms": round(seconds * 1000, 3),
            }
        },
    )
