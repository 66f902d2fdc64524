"""Verify a token's signature with a key of its (remote) issuer.

Only the signature step: the caller checks claims (``iss``, ``aud``, ``exp`` ...) afterwards, and
decides beforehand that ``issuer`` is one it trusts.
"""

from __future__ import annotations

from collections.abc import Collection

from keyless.errors import UnsupportedAlgorithm
from keyless.jose import ALGORITHMS, ParsedJWS, PublicKey, verify_signature
from keyless.trust._keycache import IssuerKeyCache

__all__ = ["verify_remote"]


def _check_algorithm(token: ParsedJWS, algorithms: Collection[str]) -> None:
    """Refuse a disallowed ``alg`` before any network traffic."""
    if token.alg not in algorithms or token.alg not in ALGORITHMS:
        allowed = ", ".join(sorted(algorithms))
        raise UnsupportedAlgorithm(f"algorithm {token.alg!r} is not allowed (allowed: {allowed})")


async def verify_remote(
    token: ParsedJWS,
    issuer: str,
    cache: IssuerKeyCache,
    algorithms: Collection[str],
    *,
    discovery_url: str | None = None,
) -> PublicKey:
    """Check ``token``'s signature against ``issuer``'s keys; return the key that verified it.

    The key set is fetched for the token's ``kid``, so an unknown ``kid`` triggers one refetch
    (rotation pickup, rate limited by the cache). ``UnknownKey`` still raised after that refetch,
    ``UnsupportedAlgorithm`` and ``InvalidSignature`` propagate; an unreachable issuer with no
    cached keys raises ``TransportError``.
    """
    _check_algorithm(token, algorithms)
    keys = await cache.get(issuer, token.kid, discovery_url=discovery_url)
    return verify_signature(token, keys, algorithms=algorithms)
