"""Big trust documents, for tests and the apply bench: one tenant with ``apps`` applications, each
with two app roles, two federated credentials and a role on the application before it."""

from __future__ import annotations

import uuid
from typing import Any

TENANT_ID = "6a1c0d7e-2b3f-4c5d-8e9f-0a1b2c3d4e5f"


def _guid(kind: str, n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"keyless-bench/{kind}/{n}"))


def big_trust_document(
    apps: int, *, tenant_id: str = TENANT_ID, subject_prefix: str = "sub"
) -> dict[str, Any]:
    """A trust document as plain data (what ``parse_trust_document`` or the admin API take)."""
    applications: list[dict[str, Any]] = []
    for n in range(apps):
        app: dict[str, Any] = {
            "displayName": f"app-{n:04d}",
            "appId": _guid("app", n),
            "identifierUris": [f"api://app-{n:04d}"],
            "appRoles": [
                {
                    "id": _guid(f"role-{value}", n),
                    "value": value,
                    "displayName": value,
                    "allowedMemberTypes": ["Application"],
                }
                for value in ("Data.Read", "Data.Write")
            ],
            "federatedIdentityCredentials": [
                {
                    "name": f"{kind}-{n}",
                    "issuer": f"https://{kind}.example.com",
                    "subject": f"{subject_prefix}-{kind}-{n}",
                    "audiences": ["api://AzureADTokenExchange"],
                }
                for kind in ("ci", "k8s")
            ],
        }
        if n:
            app["appRoleAssignments"] = [
                {"resource": f"app-{n - 1:04d}", "appRole": "Data.Read"},
                {"resource": f"app-{n - 1:04d}", "appRole": "Data.Write"},
            ]
        applications.append(app)
    tenant = {
        "id": tenant_id,
        "displayName": "Bench tenant",
        "domains": ["bench.example"],
        "applications": applications,
    }
    return {"tenants": [tenant]}
