"""Certificates for signing keys: self-signed x5c material and JWS thumbprints (x5t, x5t#S256)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

__all__ = ["b64url", "load_certificate", "self_signed_certificate", "x5t_sha1", "x5t_sha256"]


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def x5t_sha1(cert_der: bytes) -> str:
    """The ``x5t`` thumbprint: base64url SHA-1 of the DER certificate (Entra's ``kid``)."""
    return b64url(hashlib.sha1(cert_der, usedforsecurity=False).digest())


def x5t_sha256(cert_der: bytes) -> str:
    """The ``x5t#S256`` thumbprint: base64url SHA-256 of the DER certificate."""
    return b64url(hashlib.sha256(cert_der).digest())


def load_certificate(data: bytes | str) -> x509.Certificate:
    """Load one certificate from PEM or DER bytes (or PEM text)."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    if raw.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(raw)
    return x509.load_der_x509_certificate(raw)


def self_signed_certificate(
    private_key: CertificateIssuerPrivateKeyTypes,
    common_name: str,
    *,
    valid_days: int = 3650,
    now: dt.datetime | None = None,
) -> bytes:
    """A minimal self-signed certificate (DER) that carries a signing key's public half."""
    start = now or dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - dt.timedelta(minutes=5))
        .not_valid_after(start + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)
