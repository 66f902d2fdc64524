"""Key material: public keys from JWKs or certificates, key sets, and signers that hold a private key.

JWK parsing is joserfc's; what keyless keeps is the `cryptography` key plus the few JWK members
that matter for selection (``kid``, ``alg``, ``use``, ``x5t``).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc.jwk import import_key

from keyless.jose._algorithms import ALGORITHMS, PrivateKey, PublicKeyType
from keyless.jose._x509 import (
    b64url,
    load_certificate,
    self_signed_certificate,
    x5t_sha1,
    x5t_sha256,
)

__all__ = ["KeySet", "PublicKey", "Signer", "SignerAlg"]

SignerAlg = Literal["RS256", "ES256"]

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def _kty_of(key: PublicKeyType) -> tuple[str, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", _CURVES.get(key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "OKP", None
    raise TypeError(f"unsupported public key type {type(key).__name__}")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key with the JWK members used to pick it."""

    key: PublicKeyType
    kid: str | None = None
    alg: str | None = None
    use: str | None = None
    x5t: str | None = None
    x5c: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kty(self) -> str:
        return _kty_of(self.key)[0]

    @property
    def curve(self) -> str | None:
        return _kty_of(self.key)[1]

    def can_verify(self, alg: str) -> bool:
        """True if this key's type (and curve) fits ``alg`` and its own ``alg``/``use`` allow it."""
        spec = ALGORITHMS.get(alg)
        if spec is None or spec.kty != self.kty:
            return False
        if spec.curve is not None and spec.curve != self.curve:
            return False
        if self.alg is not None and self.alg != alg:
            return False
        return self.use in (None, "sig")

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> PublicKey:
        """Import one public JWK; raises ``ValueError`` for anything that is not a usable public key."""
        if jwk.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError(f"unsupported kty {jwk.get('kty')!r}")
        public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
        try:
            imported = import_key(dict(public))
        except Exception as exc:  # joserfc raises assorted errors for bad members
            raise ValueError(f"bad JWK: {exc}") from exc
        key = imported.public_key
        if not isinstance(key, PublicKeyType):
            raise ValueError("JWK is not an asymmetric public key")
        x5c = tuple(str(c) for c in jwk.get("x5c", ()) if isinstance(c, str))
        return cls(
            key=key,
            kid=_opt_str(jwk.get("kid")),
            alg=_opt_str(jwk.get("alg")),
            use=_opt_str(jwk.get("use")),
            x5t=_opt_str(jwk.get("x5t")),
            x5c=x5c,
            extra={k: v for k, v in jwk.items() if k in ("issuer", "cloud_instance_name")},
        )

    @classmethod
    def from_certificate(cls, cert: bytes | str, *, kid: str | None = None) -> PublicKey:
        """A key from a PEM/DER certificate; ``x5t`` (and by default ``kid``) is its SHA-1 thumbprint."""
        parsed = load_certificate(cert)
        der = parsed.public_bytes(serialization.Encoding.DER)
        key = parsed.public_key()
        if not isinstance(key, PublicKeyType):
            raise ValueError("certificate key type is not supported")
        thumb = x5t_sha1(der)
        return cls(key=key, kid=kid or thumb, x5t=thumb, x5c=(base64.b64encode(der).decode(),))

    def to_jwk(self) -> dict[str, Any]:
        """The public JWK, with ``kid``, ``use``, ``x5t``, ``x5c`` and extras when known."""
        jwk: dict[str, Any] = {}
        numbers: dict[str, Any]
        if isinstance(self.key, rsa.RSAPublicKey):
            n = self.key.public_numbers()
            numbers = {"kty": "RSA", "n": _uint(n.n), "e": _uint(n.e)}
        elif isinstance(self.key, ec.EllipticCurvePublicKey):
            n2 = self.key.public_numbers()
            size = (self.key.curve.key_size + 7) // 8
            numbers = {
                "kty": "EC",
                "crv": self.curve,
                "x": b64url(n2.x.to_bytes(size, "big")),
                "y": b64url(n2.y.to_bytes(size, "big")),
            }
        else:
            raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            crv = "Ed25519" if isinstance(self.key, ed25519.Ed25519PublicKey) else "Ed448"
            numbers = {"kty": "OKP", "crv": crv, "x": b64url(raw)}
        jwk["kty"] = numbers.pop("kty")
        jwk["use"] = self.use or "sig"
        if self.kid is not None:
            jwk["kid"] = self.kid
        if self.x5t is not None:
            jwk["x5t"] = self.x5t
        jwk.update(numbers)
        if self.alg is not None:
            jwk["alg"] = self.alg
        if self.x5c:
            jwk["x5c"] = list(self.x5c)
        jwk.update(self.extra)
        return jwk


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


class KeySet:
    """An immutable set of public keys, looked up by ``kid``."""

    def __init__(self, keys: Iterable[PublicKey] = ()) -> None:
        self._keys = tuple(keys)
        by_kid: dict[str | None, list[PublicKey]] = {}
        for key in self._keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {kid: tuple(found) for kid, found in by_kid.items()}
        # candidates() per (kid, alg) for kids this set holds (and no kid): bounded by the set's kids
        # times the algorithms callers allow, since only allowed algorithms are looked up.
        self._memo: dict[tuple[str | None, str], tuple[PublicKey, ...]] = {}

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], *, max_keys: int = 100) -> KeySet:
        """Import a JWKS document, skipping keys that cannot be used (as Entra, keeps the first 100)."""
        raw = jwks.get("keys")
        if not isinstance(raw, list):
            raise ValueError("JWKS has no 'keys' array")
        keys: list[PublicKey] = []
        for entry in raw[:max_keys]:
            if not isinstance(entry, dict):
                continue
            try:
                keys.append(PublicKey.from_jwk(entry))
            except ValueError:
                continue
        return cls(keys)

    def candidates(self, kid: str | None, alg: str) -> tuple[PublicKey, ...]:
        """Keys that may have signed a token with this ``kid`` and ``alg``.

        A token without ``kid`` may be checked against every key that fits the algorithm.
        """
        found = self._memo.get((kid, alg))
        if found is None:
            pool: Iterable[PublicKey] = self._keys if kid is None else self._by_kid.get(kid, ())
            found = tuple(k for k in pool if k.can_verify(alg))
            if (kid is None or kid in self._by_kid) and alg in ALGORITHMS:
                self._memo[(kid, alg)] = found
        return found

    def has_kid(self, kid: str) -> bool:
        return kid in self._by_kid

    def to_jwks(self) -> dict[str, Any]:
        return {"keys": [k.to_jwk() for k in self._keys]}

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Signer:
    """A private signing key with its self-signed certificate: ``kid`` = ``x5t`` = SHA-1 thumbprint."""

    __slots__ = ("_private", "_sign", "algorithm", "cert_der", "kid", "x5t_s256")

    def __init__(self, private_key: PrivateKey, cert_der: bytes, algorithm: str) -> None:
        spec = ALGORITHMS.get(algorithm)
        if spec is None:
            raise ValueError(f"unknown algorithm {algorithm!r}")
        self._private = private_key
        self._sign = spec.sign
        self.algorithm = algorithm
        self.cert_der = cert_der
        self.kid = x5t_sha1(cert_der)
        self.x5t_s256 = x5t_sha256(cert_der)

    @classmethod
    def generate(cls, algorithm: SignerAlg = "RS256", *, common_name: str = "keyless") -> Signer:
        """A fresh RSA-2048 (RS256) or P-256 (ES256) key with a self-signed certificate."""
        private: PrivateKey
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            raise ValueError(f"cannot generate keys for {algorithm!r}")
        return cls(private, self_signed_certificate(private, common_name), algorithm)

    @classmethod
    def from_pkcs8(cls, der: bytes, cert_der: bytes, algorithm: str) -> Signer:
        private = serialization.load_der_private_key(der, password=None)
        if not isinstance(
            private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
        ):
            raise ValueError("unsupported private key type")
        return cls(private, cert_der, algorithm)

    def private_pkcs8(self) -> bytes:
        """The private key as unencrypted PKCS#8 DER: seal it before it touches a disk."""
        return self._private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, signing_input: bytes) -> bytes:
        return self._sign(self._private, signing_input)

    def public_key(self, **extra: Any) -> PublicKey:
        """The public half as published in a JWKS (with ``x5c``, ``x5t`` and any ``extra`` members)."""
        key = self._private.public_key()
        assert isinstance(key, PublicKeyType)
        return PublicKey(
            key=key,
            kid=self.kid,
            x5t=self.kid,
            x5c=(base64.b64encode(self.cert_der).decode("ascii"),),
            extra=extra,
        )
