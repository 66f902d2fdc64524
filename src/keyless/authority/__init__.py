"""The keyless token authority: an Entra-compatible OAuth token service.

The front door: other packages import only from here. The implementation is grouped by what it
does (see docs/architecture.md):

* ``token/``: everything ``POST /token`` runs, in order, and the AADSTS catalogue;
* ``directory/``: the directory snapshot the token path reads, and ``DirectoryAdmin``, its one writer;
* ``trustfile/``: trust as code (read, write, plan and apply a document);
* ``explain/``: the dry run of a federated client assertion;
* ``store/``: persistence; ``http/``: the protocol endpoints and the admin API.

Names are imported on first use, so ``import keyless.authority`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyless.authority._paths import ADMIN_KEY_FILE, URL_FILE
    from keyless.authority._service import Authority
    from keyless.authority.directory.admin import DirectoryAdmin
    from keyless.authority.explain.dry_run import Explanation, Step, explain_assertion, issuer_to_fetch
    from keyless.authority.http.app import app_from_env, create_app
    from keyless.authority.model import (
        FIC_AUDIENCE_DEFAULT,
        Application,
        AppRole,
        AppRoleAssignment,
        Certificate,
        ClientSecret,
        FederatedIdentityCredential,
        Refusal,
        Tenant,
        new_id,
    )
    from keyless.authority.token.aadsts import catalogue_markdown
    from keyless.authority.token.conditions import compile_condition
    from keyless.authority.token.expressions import parse_expression
    from keyless.authority.token.matching import near_miss
    from keyless.authority.trustfile.read import load_trust_file
    from keyless.authority.trustfile.reconcile import Plan, apply, plan
    from keyless.authority.trustfile.schema import TrustDocument
    from keyless.authority.trustfile.wire import localize_problems, to_wire

__all__ = [
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
]

_LAZY = {
    "ADMIN_KEY_FILE": "keyless.authority._paths",
    "URL_FILE": "keyless.authority._paths",
    "Authority": "keyless.authority._service",
    "DirectoryAdmin": "keyless.authority.directory.admin",
    "Explanation": "keyless.authority.explain.dry_run",
    "Step": "keyless.authority.explain.dry_run",
    "explain_assertion": "keyless.authority.explain.dry_run",
    "issuer_to_fetch": "keyless.authority.explain.dry_run",
    "app_from_env": "keyless.authority.http.app",
    "create_app": "keyless.authority.http.app",
    "FIC_AUDIENCE_DEFAULT": "keyless.authority.model",
    "AppRole": "keyless.authority.model",
    "AppRoleAssignment": "keyless.authority.model",
    "Application": "keyless.authority.model",
    "Certificate": "keyless.authority.model",
    "ClientSecret": "keyless.authority.model",
    "FederatedIdentityCredential": "keyless.authority.model",
    "Refusal": "keyless.authority.model",
    "Tenant": "keyless.authority.model",
    "new_id": "keyless.authority.model",
    "catalogue_markdown": "keyless.authority.token.aadsts",
    "compile_condition": "keyless.authority.token.conditions",
    "parse_expression": "keyless.authority.token.expressions",
    "near_miss": "keyless.authority.token.matching",
    "load_trust_file": "keyless.authority.trustfile.read",
    "Plan": "keyless.authority.trustfile.reconcile",
    "apply": "keyless.authority.trustfile.reconcile",
    "plan": "keyless.authority.trustfile.reconcile",
    "TrustDocument": "keyless.authority.trustfile.schema",
    "localize_problems": "keyless.authority.trustfile.wire",
    "to_wire": "keyless.authority.trustfile.wire",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
