"""Compact JWS: a strict parser, signature checks against an algorithm allow-list, and signing.

The parse refuses, before any cryptography runs: oversized tokens and headers, JWE (five parts),
anything but three strict base64url segments, non-object or duplicate-key JSON, ``alg: none``,
``crit``, unencoded payloads (``b64``), nested JWTs (``cty: JWT``). Embedded key hints (``jwk``,
``jku``, ``x5u``) are never used: keys come only from the caller's key set.

This is keyless's lean path over `cryptography` (about 3x the throughput of general JOSE
libraries for RS256); it stays small because it only does compact, asymmetric JWS.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from keyless.errors import InvalidSignature, MalformedToken, UnknownKey, UnsupportedAlgorithm
from keyless.jose._algorithms import ALGORITHMS
from keyless.jose._keys import KeySet, PublicKey, Signer
from keyless.jose._x509 import b64url

__all__ = [
    "DEFAULT_MAX_HEADER",
    "DEFAULT_MAX_TOKEN",
    "ParsedJWS",
    "encode_jwt",
    "parse_compact",
    "verify_signature",
]

DEFAULT_MAX_TOKEN = 16 * 1024
# MSAL's certificate assertions carry the whole chain in x5c: 8 KiB fits real chains.
DEFAULT_MAX_HEADER = 8 * 1024

_TO_STD = str.maketrans({"-": "+", "_": "/", "+": "!", "/": "!", "=": "!"})
_JSON_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class ParsedJWS:
    """A structurally valid compact JWS whose signature has not been checked yet."""

    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def _b64decode(segment: str, what: str) -> bytes:
    if len(segment) % 4 == 1:
        raise MalformedToken(f"{what} is not valid base64url")
    std = segment.translate(_TO_STD) + "=" * (-len(segment) % 4)
    try:
        return binascii.a2b_base64(std, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedToken(f"{what} is not valid base64url") from None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedToken(f"duplicate JSON member {key!r}")
        result[key] = value
    return result


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw, object_pairs_hook=_reject_duplicates)
    except MalformedToken:
        raise
    except (ValueError, RecursionError):
        raise MalformedToken(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def _check_header(header: Mapping[str, Any]) -> None:
    if "enc" in header:
        raise MalformedToken("encrypted tokens (JWE) are not accepted")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise MalformedToken("header has no 'alg'")
    if alg.lower() == "none":
        raise UnsupportedAlgorithm("unsigned tokens (alg 'none') are never accepted")
    if "crit" in header:
        raise MalformedToken("critical header extensions ('crit') are not supported")
    if header.get("b64") is False:
        raise MalformedToken("unencoded payloads (b64=false) are not supported")
    cty = header.get("cty")
    if isinstance(cty, str) and cty.upper() in ("JWT", "APPLICATION/JWT"):
        raise MalformedToken("nested tokens (cty JWT) are not accepted")


def parse_compact(
    token: str,
    *,
    max_size: int = DEFAULT_MAX_TOKEN,
    max_header: int = DEFAULT_MAX_HEADER,
) -> ParsedJWS:
    """Split and decode a compact JWS; every structural problem raises ``MalformedToken``."""
    if not isinstance(token, str):
        raise MalformedToken("token must be text")
    if len(token) > max_size:
        raise MalformedToken(f"token is larger than {max_size} bytes")
    parts = token.split(".")
    if len(parts) == 5:
        raise MalformedToken("encrypted tokens (JWE) are not accepted")
    if len(parts) != 3:
        raise MalformedToken("token is not a compact JWS (three dot-separated parts)")
    header_b64, payload_b64, signature_b64 = parts
    if len(header_b64) > max_header:
        raise MalformedToken(f"token header is larger than {max_header} bytes")
    header = _json_object(_b64decode(header_b64, "header"), "header")
    _check_header(header)
    payload = _json_object(_b64decode(payload_b64, "payload"), "payload")
    signature = _b64decode(signature_b64, "signature")
    if not signature:
        raise MalformedToken("token has no signature")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return ParsedJWS(header, payload, signing_input, signature)


def verify_signature(
    parsed: ParsedJWS,
    keys: KeySet,
    *,
    algorithms: Collection[str],
) -> PublicKey:
    """Check the signature with a key of ``keys``; return the key that verified it.

    The algorithm must be in ``algorithms`` (the caller's allow-list) and fit the key's type, so an
    RSA public key can never be used as an HMAC secret.
    """
    alg = parsed.alg
    if alg not in algorithms or alg not in ALGORITHMS:
        allowed = ", ".join(sorted(algorithms))
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not allowed (allowed: {allowed})")
    candidates = keys.candidates(parsed.kid, alg)
    if not candidates:
        if parsed.kid is not None and not keys.has_kid(parsed.kid):
            raise UnknownKey(f"no key with kid {parsed.kid!r} in the issuer's key set")
        raise UnknownKey(f"no key in the issuer's key set can verify {alg}")
    verify = ALGORITHMS[alg].verify
    for key in candidates:
        if verify(key.key, parsed.signing_input, parsed.signature):
            return key
    raise InvalidSignature("signature verification failed")


def encode_jwt(
    claims: Mapping[str, Any],
    signer: Signer,
    *,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWS with ``typ``, ``alg`` and ``kid`` headers (plus ``headers``)."""
    header: dict[str, Any] = {"typ": "JWT", "alg": signer.algorithm, "kid": signer.kid}
    if headers:
        header.update(headers)
    signing_input = b64url(_JSON_DUMPS(header).encode()) + "." + b64url(_JSON_DUMPS(claims).encode())
    signature = signer.sign(signing_input.encode("ascii"))
    return signing_input + "." + b64url(signature)
