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

import binascii
import hashlib
import json
import json.scanner
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

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

# base64url -> standard alphabet, with every character that is not base64url ("+", "/", "=")
# mapped to "!" so that the strict decoder refuses it.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_PADDING = (b"", b"", b"==", b"=")  # by len % 4; a remainder of 1 is never valid
_JSON_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_JSON_WHITESPACE = " \t\n\r"

# The checked header of a short header segment, so that the common case costs one dict lookup.
# Bounded; cleared (atomically, so safe across threads) when full.
_HEADER_CACHE: dict[bytes, dict[str, Any]] = {}
_HEADER_CACHE_SIZE = 256
_HEADER_CACHE_MAX_SEGMENT = 1024


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


# A frozen dataclass's __init__ sets each field through object.__setattr__; the parser fills the
# slots directly instead (same object, half the cost).
_new = object.__new__
_SET_HEADER = vars(ParsedJWS)["header"].__set__
_SET_PAYLOAD = vars(ParsedJWS)["payload"].__set__
_SET_SIGNING_INPUT = vars(ParsedJWS)["signing_input"].__set__
_SET_SIGNATURE = vars(ParsedJWS)["signature"].__set__


def _parsed(
    header: dict[str, Any], payload: dict[str, Any], signing_input: bytes, signature: bytes
) -> ParsedJWS:
    parsed: ParsedJWS = _new(ParsedJWS)
    _SET_HEADER(parsed, header)
    _SET_PAYLOAD(parsed, payload)
    _SET_SIGNING_INPUT(parsed, signing_input)
    _SET_SIGNATURE(parsed, signature)
    return parsed


def _b64decode(segment: bytes, what: str) -> bytes:
    """Strict, unpadded base64url (RFC 7515 §2): any other character or padding is refused."""
    remainder = len(segment) % 4
    if remainder == 1:
        raise MalformedToken(f"{what} is not valid base64url")
    try:
        return binascii.a2b_base64(segment.translate(_TO_STD) + _PADDING[remainder], strict_mode=True)
    except (binascii.Error, ValueError):
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


# The C scanner, called directly: json.loads adds two regex matches for surrounding whitespace.
_JSON_DECODER = json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_no_constants)
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(_JSON_DECODER)  # type: ignore[arg-type]


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object from strict UTF-8; duplicate member names (at any depth) are refused."""
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


def _header(segment: bytes, max_header: int) -> dict[str, Any]:
    """The checked header of ``segment`` (a fresh dict: callers may change it)."""
    if len(segment) > max_header:
        raise MalformedToken(f"token header is larger than {max_header} bytes")
    cached = _HEADER_CACHE.get(segment)
    if cached is not None:
        return cached.copy()
    header = _json_object(_b64decode(segment, "header"), "header")
    _check_header(header)
    if len(segment) <= _HEADER_CACHE_MAX_SEGMENT:
        if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
            _HEADER_CACHE.clear()
        _HEADER_CACHE[segment] = header.copy()
    return header


def _split(token: str) -> list[bytes]:
    try:
        parts = token.encode("ascii").split(b".")
    except UnicodeEncodeError:
        parts = []
    if len(parts) == 3:
        return parts
    texts = token.split(".")
    if len(texts) == 5:
        raise MalformedToken("encrypted tokens (JWE) are not accepted")
    if len(texts) != 3:
        raise MalformedToken("token is not a compact JWS (three dot-separated parts)")
    what = next(w for t, w in zip(texts, ("header", "payload", "signature"), strict=True) if not t.isascii())
    raise MalformedToken(f"{what} is not valid base64url")


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
    header_b64, payload_b64, signature_b64 = _split(token)
    header = _header(header_b64, max_header)
    payload = _json_object(_b64decode(payload_b64, "payload"), "payload")
    signature = _b64decode(signature_b64, "signature")
    if not signature:
        raise MalformedToken("token has no signature")
    signing_input = token[: len(header_b64) + 1 + len(payload_b64)].encode("ascii")
    return _parsed(header, payload, signing_input, signature)


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

# Candidate keys per key set and (kid, alg). Key sets are immutable; only kids the set holds are
# remembered, and at most _CANDIDATE_SETS sets (the entry keeps its set, so ids are not reused).
_CANDIDATES: dict[int, tuple[KeySet, dict[tuple[str | None, str], list[PublicKey]]]] = {}
_CANDIDATE_SETS = 64


def _candidates(keys: KeySet, kid: str | None, alg: str) -> list[PublicKey]:
    entry = _CANDIDATES.get(id(keys))
    if entry is None or entry[0] is not keys:
        if len(_CANDIDATES) >= _CANDIDATE_SETS:
            _CANDIDATES.clear()
        entry = _CANDIDATES[id(keys)] = (keys, {})
    memo = entry[1]
    found = memo.get((kid, alg))
    if found is None:
        found = keys.candidates(kid, alg)
        if kid is None or keys.has_kid(kid):
            memo[(kid, alg)] = found
    return found


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
    header = parsed.header
    alg = header.get("alg")
    if type(alg) is not str:
        alg = str(alg)
    verify = _VERIFY.get(alg)
    if verify is None or alg not in algorithms:
        allowed = ", ".join(sorted(algorithms))
        raise UnsupportedAlgorithm(f"algorithm {alg!r} is not allowed (allowed: {allowed})")
    kid = header.get("kid")
    if type(kid) is not str:
        kid = None
    candidates = _candidates(keys, kid, alg)
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
