"""Compact JWS: a strict parser, signature checks against an algorithm allow-list, and signing.

The parse refuses, before any cryptography runs: oversized tokens and headers, JWE (five parts),
anything but three strict base64url segments, non-object or duplicate-key JSON (and JSON's
non-standard ``NaN``/``Infinity``), ``alg: none``, ``crit``, unencoded payloads (``b64``), nested
JWTs (``cty: JWT``). Embedded key hints (``jwk``, ``jku``, ``x5u``) are never used: keys come only
from the caller's key set.

This is keyless's lean path over `cryptography`: it only does compact, asymmetric JWS, and the hot
path is written for it. Headers repeat across one issuer's tokens, so a checked header is
remembered per header segment; JSON goes straight to the C scanner; candidate keys are remembered
per key set; RS256/384/512 recover the signed DigestInfo with the RSA public key and compare it with
``hashlib``'s digest (the same acceptance as a ``verify`` call, without its per-call set-up).
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn

import orjson
import pybase64
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

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

_INF = float("inf")
_PADDING = (b"", b"", b"==", b"=")  # by len % 4; a remainder of 1 is never valid
_JSON_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_JSON_WHITESPACE = " \t\n\r"
_urlsafe_b64decode = pybase64.b64decode  # (data, altchars, validate)
_URLSAFE = b"-_"
_EQUALS, _PLUS, _SLASH = b"=+/"
_orjson_loads = orjson.loads
_orjson_dumps = orjson.dumps


class _Header(NamedTuple):
    """A checked header (read-only), with its ``alg`` and ``kid`` picked out once."""

    fields: Mapping[str, Any]
    alg: str
    kid: str | None


# The checked header of a short header segment, so that the common case costs one dict lookup.
# Bounded; cleared (atomically, so safe across threads) when full.
_HEADER_CACHE: dict[bytes, _Header] = {}
_HEADER_CACHE_SIZE = 256
_HEADER_CACHE_MAX_SEGMENT = 1024


@dataclass(frozen=True, slots=True)
class ParsedJWS:
    """A structurally valid compact JWS whose signature has not been checked yet.

    ``header`` is read-only: one checked header is shared by every token that carries it. ``alg``
    and ``kid`` (``None`` unless text) come from it.
    """

    header: Mapping[str, Any]
    payload: Mapping[str, Any]
    signing_input: bytes
    signature: bytes
    alg: str = field(init=False, compare=False)
    kid: str | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        alg, kid = self.header.get("alg"), self.header.get("kid")
        object.__setattr__(self, "alg", "" if alg is None else str(alg))
        object.__setattr__(self, "kid", kid if isinstance(kid, str) else None)


# A frozen dataclass's __init__ sets each field through object.__setattr__; parse_compact fills the
# slots directly instead (same object, half the cost).
_new = object.__new__
_SET_HEADER = vars(ParsedJWS)["header"].__set__
_SET_PAYLOAD = vars(ParsedJWS)["payload"].__set__
_SET_SIGNING_INPUT = vars(ParsedJWS)["signing_input"].__set__
_SET_SIGNATURE = vars(ParsedJWS)["signature"].__set__
_SET_ALG = vars(ParsedJWS)["alg"].__set__
_SET_KID = vars(ParsedJWS)["kid"].__set__


def _b64decode(segment: bytes, what: str) -> bytes:
    """Strict, unpadded base64url (RFC 7515 §2) of a segment of a token ``parse_compact`` checked.

    pybase64's SIMD decoder with ``validate`` refuses everything outside the alphabet except the
    standard alphabet's ``+`` and ``/`` (its ``altchars`` are added, not substituted) and ``=``
    padding: ``parse_compact`` refuses those for the whole token first, with three ``memchr`` scans.
    """
    try:
        return _urlsafe_b64decode(segment + _PADDING[len(segment) % 4], _URLSAFE, True)  # positional: faster
    except ValueError:  # binascii.Error; a length that leaves a remainder of 1 is one too
        raise MalformedToken(f"{what} is not valid base64url") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` refusing duplicate member names (building the dict stays in C)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedToken(f"duplicate JSON member {key!r}")
            seen.add(key)
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    """A JSON integer within 64 bits (orjson's range); a larger one is refused, since no claim needs
    it and an ``exp`` of ``10**30`` would never come."""
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise ValueError(f"{text} is out of range")
    return value


def _finite_float(text: str) -> float:
    """A JSON number with a fraction or exponent; one too large for a float (``1e400``) is refused,
    since it would become infinity (an ``exp`` that never comes). orjson refuses these as well."""
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError(f"{text} is out of range")
    return value


# The C scanner, called directly: json.loads adds two regex matches for surrounding whitespace.
_JSON_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_members,
    parse_constant=_no_constants,
    parse_float=_finite_float,
    parse_int=_bounded_int,
)
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_JSON_DECODER)  # type: ignore[arg-type]


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object from strict UTF-8; duplicate member names (at any depth) are refused.

    Fast path: orjson (strict RFC 8259: UTF-8, no ``NaN``, no trailing data), accepted only when
    re-encoding the result gives back exactly ``raw``. That proves there were no duplicate members,
    since orjson keeps the last of duplicates and the re-encoding would then be shorter. Compact
    tokens (what Entra, Google and keyless issue) take it; anything else (whitespace, escapes, big
    numbers, duplicates, errors) is decided by the strict standard-library decoder below.
    """
    try:
        value = _orjson_loads(raw)
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        pass
    else:
        if type(value) is dict and _orjson_dumps(value) == raw:
            return value
    return _json_object_strict(raw, what)


def _json_object_strict(raw: bytes, what: str) -> dict[str, Any]:
    """The standard-library decoder with duplicate members and non-standard constants refused."""
    try:
        text = raw.decode("utf-8")
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # leading whitespace, or not JSON: let the full decoder decide
            value, end = _JSON_DECODER.decode(text), len(text)
        if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
            raise ValueError("extra data")
    except MalformedToken:
        raise
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedToken(f"{what} is not valid JSON") from None
    if type(value) is not dict:
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


def _header(segment: bytes, max_header: int) -> _Header:
    """The checked header of ``segment`` (read-only, so that one copy serves every token)."""
    if len(segment) > max_header:
        raise MalformedToken(f"token header is larger than {max_header} bytes")
    cached = _HEADER_CACHE.get(segment)
    if cached is not None:
        return cached
    header = _json_object(_b64decode(segment, "header"), "header")
    _check_header(header)
    kid = header.get("kid")
    checked = _Header(MappingProxyType(header), header["alg"], kid if type(kid) is str else None)
    if len(segment) <= _HEADER_CACHE_MAX_SEGMENT:
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[segment] = checked
    return checked


def _refuse_shape(token: str) -> NoReturn:
    """Raise the ``MalformedToken`` that says why ``token`` is not three base64url segments.

    (Called when the token is not ASCII, has other than three parts, or holds ``=``, ``+`` or ``/``.)
    """
    texts = token.split(".")
    if len(texts) == 5:
        raise MalformedToken("encrypted tokens (JWE) are not accepted")
    if len(texts) != 3:
        raise MalformedToken("token is not a compact JWS (three dot-separated parts)")
    for text, what in zip(texts, ("header", "payload", "signature"), strict=True):
        if not text.isascii() or "=" in text or "+" in text or "/" in text:
            raise MalformedToken(f"{what} is not valid base64url")
    raise AssertionError("unreachable: the token has three base64url-shaped parts")  # pragma: no cover


def parse_compact(
    token: str,
    *,
    max_size: int = DEFAULT_MAX_TOKEN,
    max_header: int = DEFAULT_MAX_HEADER,
) -> ParsedJWS:
    """Split and decode a compact JWS; every structural problem raises ``MalformedToken``.

    On every uncached request: the split, the character check and the header cache are inline, and
    the result's slots are filled directly.
    """
    if type(token) is not str:
        raise MalformedToken("token must be text")
    if len(token) > max_size:
        raise MalformedToken(f"token is larger than {max_size} bytes")
    data = token.encode("ascii") if token.isascii() else b""
    parts = data.split(b".")
    # Byte values, not b"=": ``bytes in bytes`` first tries the needle as an int and formats a
    # TypeError, ten times the cost of the search.
    if len(parts) != 3 or _EQUALS in data or _PLUS in data or _SLASH in data:
        _refuse_shape(token)
    header_b64, payload_b64, signature_b64 = parts
    header = _HEADER_CACHE.get(header_b64)
    if header is None or len(header_b64) > max_header:
        header = _header(header_b64, max_header)
    payload = _json_object(_b64decode(payload_b64, "payload"), "payload")
    signature = _b64decode(signature_b64, "signature")
    if not signature:
        raise MalformedToken("token has no signature")
    parsed: ParsedJWS = _new(ParsedJWS)
    _SET_HEADER(parsed, header.fields)
    _SET_ALG(parsed, header.alg)
    _SET_KID(parsed, header.kid)
    _SET_PAYLOAD(parsed, payload)
    _SET_SIGNING_INPUT(parsed, data[: len(header_b64) + 1 + len(payload_b64)])
    _SET_SIGNATURE(parsed, signature)
    return parsed


# -- signature checks ----------------------------------------------------------------------------------
Verify = Callable[[Any, bytes, bytes], bool]

_PKCS1 = padding.PKCS1v15()
# RFC 8017 §9.2 note 1: the DER DigestInfo prefixes of EMSA-PKCS1-v1_5.
_DIGEST_INFO = {
    256: (bytes.fromhex("3031300d060960864801650304020105000420"), hashlib.sha256),
    384: (bytes.fromhex("3041300d060960864801650304020205000430"), hashlib.sha384),
    512: (bytes.fromhex("3051300d060960864801650304020305000440"), hashlib.sha512),
}


def _rsa_pkcs1_verify(prefix: bytes, digest: Callable[[bytes], Any]) -> Verify:
    """RSASSA-PKCS1-v1_5: recover the signed DigestInfo and compare it with the expected one.

    The signature must be exactly as long as the modulus (as ``verify`` requires); the public
    operation and the ``00 01 FF.. 00`` padding check are OpenSSL's; the whole remainder must equal
    the DigestInfo of this hash over the data.
    """

    def verify(key: rsa.RSAPublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != (key.key_size + 7) // 8:
            return False
        try:
            recovered = key.recover_data_from_signature(sig, _PKCS1, None)
        except _CryptoInvalidSignature:
            return False
        expected: bytes = prefix + digest(data).digest()
        return recovered == expected

    return verify


def _rsa_verify(pad: padding.AsymmetricPadding, hash_alg: hashes.HashAlgorithm) -> Verify:
    def verify(key: rsa.RSAPublicKey, data: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, data, pad, hash_alg)
        except _CryptoInvalidSignature:
            return False
        return True

    return verify


def _ec_verify(hash_alg: hashes.HashAlgorithm, size: int) -> Verify:
    ecdsa = ec.ECDSA(hash_alg)

    def verify(key: ec.EllipticCurvePublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != 2 * size:
            return False
        der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
        try:
            key.verify(der, data, ecdsa)
        except _CryptoInvalidSignature:
            return False
        return True

    return verify


def _fast_verifiers() -> dict[str, Verify]:
    """The same acceptance as ``ALGORITHMS[alg].verify``, with the per-call set-up done once."""
    table: dict[str, Verify] = {}
    for bits, hash_cls in ((256, hashes.SHA256), (384, hashes.SHA384), (512, hashes.SHA512)):
        table[f"RS{bits}"] = _rsa_pkcs1_verify(*_DIGEST_INFO[bits])
        pss = padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=padding.PSS.DIGEST_LENGTH)
        table[f"PS{bits}"] = _rsa_verify(pss, hash_cls())
    for name, hash_cls, size in (
        ("ES256", hashes.SHA256, 32),
        ("ES384", hashes.SHA384, 48),
        ("ES512", hashes.SHA512, 66),
    ):
        table[name] = _ec_verify(hash_cls(), size)
    return table


_VERIFY: dict[str, Verify] = {alg: spec.verify for alg, spec in ALGORITHMS.items()}
_VERIFY.update(_fast_verifiers())


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
    if alg not in algorithms or alg not in _VERIFY:
        allowed = ", ".join(sorted(algorithms))
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not allowed (allowed: {allowed})")
    verify = _VERIFY[alg]
    kid = parsed.kid
    candidates = keys.candidates(kid, alg)
    if not candidates:
        if kid is not None and not keys.has_kid(kid):
            raise UnknownKey(f"no key with kid {kid!r} in the issuer's key set")
        raise UnknownKey(f"no key in the issuer's key set can verify {alg}")
    signing_input, signature = parsed.signing_input, parsed.signature
    for key in candidates:
        if verify(key.key, signing_input, signature):
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
