"""The public surface is small and pinned: a change to ``__all__`` is a deliberate act."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import keyless.errors
import keyless.jose

EXPECTED = {
    "keyless.jose": {
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
    },
    "keyless.errors": {
        "AlreadyExists",
        "ClaimError",
        "ConfigurationError",
        "Conflict",
        "InvalidSignature",
        "KeylessError",
        "LimitReached",
        "Locked",
        "MalformedToken",
        "NotFound",
        "OAuthError",
        "StorageError",
        "StoreUnavailable",
        "TokenExpired",
        "TokenNotYetValid",
        "TransportError",
        "UnknownKey",
        "UnsupportedAlgorithm",
        "VerificationError",
    },
}


@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_all_is_pinned(module: str) -> None:
    assert set(importlib.import_module(module).__all__) == EXPECTED[module]


def test_every_error_has_a_stable_distinct_code() -> None:
    classes = [getattr(keyless.errors, name) for name in keyless.errors.__all__]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))


def test_jose_and_trust_import_without_server_packages() -> None:
    blocked = ["starlette", "fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic_settings", "typer"]
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import keyless.jose, keyless.trust, keyless.errors\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
