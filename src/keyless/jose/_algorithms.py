"""The asymmetric JWS algorithms keyless knows, and how each signs and verifies with `cryptography`.

There is deliberately no ``none`` and no HMAC: every key keyless meets is public, so a symmetric
algorithm could only ever be an attempt at key confusion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

__all__ = ["ALGORITHMS", "Algorithm", "PrivateKey", "PublicKeyType"]

PublicKeyType = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class Algorithm:
    name: str
    kty: str  # the JWK key type this algorithm needs
    verify: Callable[[Any, bytes, bytes], bool]
    sign: Callable[[Any, bytes], bytes]
    curve: str | None = None  # for EC: the curve the key must be on


def _rsa(hash_cls: type[hashes.HashAlgorithm], pss: bool) -> tuple[Callable[..., bool], Callable[..., bytes]]:
    def pad() -> padding.AsymmetricPadding:
        if pss:
            return padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=padding.PSS.DIGEST_LENGTH)
        return padding.PKCS1v15()

    def verify(key: rsa.RSAPublicKey, data: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, data, pad(), hash_cls())
        except _CryptoInvalidSignature:
            return False
        return True

    def sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
        return key.sign(data, pad(), hash_cls())

    return verify, sign


def _ec(hash_cls: type[hashes.HashAlgorithm], size: int) -> tuple[Callable[..., bool], Callable[..., bytes]]:
    def verify(key: ec.EllipticCurvePublicKey, data: bytes, sig: bytes) -> bool:
        if len(sig) != 2 * size:
            return False
        r = int.from_bytes(sig[:size], "big")
        s = int.from_bytes(sig[size:], "big")
        try:
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hash_cls()))
        except _CryptoInvalidSignature:
            return False
        return True

    def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_cls())))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return verify, sign


def _eddsa_verify(key: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey, data: bytes, sig: bytes) -> bool:
    try:
        key.verify(sig, data)
    except _CryptoInvalidSignature:
        return False
    return True


def _eddsa_sign(key: ed25519.Ed25519PrivateKey, data: bytes) -> bytes:
    return key.sign(data)


def _table() -> dict[str, Algorithm]:
    table: dict[str, Algorithm] = {}
    for bits, hash_cls in ((256, hashes.SHA256), (384, hashes.SHA384), (512, hashes.SHA512)):
        verify, sign = _rsa(hash_cls, pss=False)
        table[f"RS{bits}"] = Algorithm(f"RS{bits}", "RSA", verify, sign)
        verify, sign = _rsa(hash_cls, pss=True)
        table[f"PS{bits}"] = Algorithm(f"PS{bits}", "RSA", verify, sign)
    for name, hash_cls, size, curve in (
        ("ES256", hashes.SHA256, 32, "P-256"),
        ("ES384", hashes.SHA384, 48, "P-384"),
        ("ES512", hashes.SHA512, 66, "P-521"),
    ):
        verify, sign = _ec(hash_cls, size)
        table[name] = Algorithm(name, "EC", verify, sign, curve)
    table["EdDSA"] = Algorithm("EdDSA", "OKP", _eddsa_verify, _eddsa_sign)
    return table


ALGORITHMS: dict[str, Algorithm] = _table()
