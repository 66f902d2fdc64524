"""Key material, local key sets, and compact JWS sign/verify with an algorithm allow-list."""

from keyless.jose._algorithms import ALGORITHMS
from keyless.jose._jws import (
    DEFAULT_MAX_HEADER,
    DEFAULT_MAX_TOKEN,
    ParsedJWS,
    encode_jwt,
    parse_compact,
    verify_signature,
)
from keyless.jose._keys import KeySet, PublicKey, Signer, SignerAlg
from keyless.jose._sealing import KeyEncryptionKey
from keyless.jose._unverified import decode_unverified
from keyless.jose._x509 import b64url, load_certificate, x5t_sha1, x5t_sha256

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_HEADER",
    "DEFAULT_MAX_TOKEN",
    "KeyEncryptionKey",
    "KeySet",
    "ParsedJWS",
    "PublicKey",
    "Signer",
    "SignerAlg",
    "b64url",
    "decode_unverified",
    "encode_jwt",
    "load_certificate",
    "parse_compact",
    "verify_signature",
    "x5t_sha1",
    "x5t_sha256",
]
