"""keyless.metadata's public surface is pinned, and it imports without the authority."""

from __future__ import annotations

import subprocess
import sys

import keyless.metadata


def test_the_public_names_are_pinned() -> None:
    assert sorted(keyless.metadata.__all__) == sorted(
        [
            "COMMON_HEADERS",
            "DEFAULT_ACCOUNT_EMAIL",
            "DEFAULT_UNIQUE_ID",
            "GOOGLE_ISSUER",
            "AccessToken",
            "IdentityFormat",
            "IssuerMode",
            "KeyRing",
            "MetadataConfig",
            "MetadataIssuer",
            "MetadataServer",
            "ServiceAccount",
            "SigningKey",
            "create_app",
            "google_mode_warning",
            "load_metadata_config",
        ]
    )
    for name in keyless.metadata.__all__:
        assert hasattr(keyless.metadata, name)


def test_the_emulator_imports_without_the_authority_or_the_cli() -> None:
    code = (
        "import sys, keyless.metadata; "
        "prefixes = ('keyless.authority', 'keyless.cli', 'sqlalchemy'); "
        "loaded = [m for m in sys.modules if m.startswith(prefixes)]; "
        "print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
