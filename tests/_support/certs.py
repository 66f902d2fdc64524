"""Client certificates for certificate-credential tests (RSA, self-signed, PEM)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ClientCertificate:
    key_pem: bytes
    cert_pem: bytes
    sha1_hex: str  # upper-case hex thumbprint, what MSAL Python's "thumbprint" wants
    sha256_hex: str


def make_client_certificate(common_name: str = "keyless test client", *, days: int = 30) -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ClientCertificate(
        key_pem=key_pem,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        sha1_hex=cert.fingerprint(hashes.SHA1()).hex().upper(),
        sha256_hex=cert.fingerprint(hashes.SHA256()).hex().upper(),
    )
