"""keyless.authority's front door is pinned, resolves every name, and is cheap to import."""

from __future__ import annotations

import subprocess
import sys

import keyless.authority


def test_the_public_names_are_pinned() -> None:
    assert set(keyless.authority.__all__) == {
        "ADMIN_KEY_FILE",
        "FIC_AUDIENCE_DEFAULT",
        "URL_FILE",
        "AppRole",
        "AppRoleAssignment",
        "Application",
        "Authority",
        "Certificate",
        "ClientSecret",
        "DirectoryAdmin",
        "Explanation",
        "FederatedIdentityCredential",
        "Plan",
        "Refusal",
        "Step",
        "Tenant",
        "TrustDocument",
        "app_from_env",
        "apply",
        "catalogue_markdown",
        "compile_condition",
        "create_app",
        "explain_assertion",
        "issuer_to_fetch",
        "load_trust_file",
        "localize_problems",
        "near_miss",
        "new_id",
        "parse_expression",
        "plan",
        "to_wire",
    }


def test_every_public_name_resolves() -> None:
    for name in keyless.authority.__all__:
        assert getattr(keyless.authority, name) is not None


def test_importing_the_front_door_loads_no_server_package() -> None:
    code = (
        "import sys, keyless.authority\n"
        "loaded = [m for m in ('starlette', 'fastapi', 'sqlalchemy', 'alembic') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
