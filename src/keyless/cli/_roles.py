"""``keyless role``: app role assignments (a client application holds a role of a resource)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from keyless.cli._common import (
    ADMIN_KEY,
    DATA_DIR,
    JSON,
    URL,
    Session,
    Target,
    escape,
    out,
    print_json,
    show_fields,
    table,
)
from keyless.cli._directory import TENANT, tenant_path
from keyless.errors import ConfigurationError, NotFound

__all__ = ["role_app"]

role_app = typer.Typer(
    help="App role assignments: which client holds which role of which resource.", no_args_is_help=True
)

ASSIGNMENT = typer.Argument(..., help="Assignment id (see list).")


def _assignments(session: Session, tenant: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = session.call("GET", tenant_path(tenant) + "/appRoleAssignments")["value"]
    return items


def _find(items: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    for item in items:
        if item["id"].lower() == ref.lower():
            return item
    raise NotFound(f"no app role assignment {ref!r} (see keyless role list)")


def _rows(items: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            a["id"],
            a["principalDisplayName"] or a["principalId"],
            a["resourceDisplayName"] or "",
            a["appRoleValue"] or "",
        )
        for a in items
    ]


@role_app.command("list")
def role_list(
    tenant: str = TENANT,
    client: str | None = typer.Option(None, "--client", help="Only this client (display name)."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List the tenant's app role assignments.

    \b
    Example: keyless role list contoso.example --client cloud-run-caller
    """
    with Target(url, admin_key, data_dir).session() as session:
        items = _assignments(session, tenant)
    if client is not None:
        items = [a for a in items if client in (a["principalDisplayName"], a["principalId"])]
    if as_json:
        print_json(items)
        return
    table(("id", "client", "resource", "role"), _rows(items))


@role_app.command("show")
def role_show(
    tenant: str = TENANT,
    assignment: str = ASSIGNMENT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show one app role assignment.

    \b
    Example: keyless role show contoso.example 6f1c...
    """
    with Target(url, admin_key, data_dir).session() as session:
        found = _find(_assignments(session, tenant), assignment)
    show_fields(found, title="app role assignment", as_json=as_json)


@role_app.command("create")
def role_create(
    tenant: str = TENANT,
    client: str = typer.Option(..., "--client", help="Client application: appId, object id or display name."),
    resource: str = typer.Option(
        ..., "--resource", help="Resource application: appId, object id or display name."
    ),
    role: str = typer.Option(..., "--role", help="The resource's app role: value (e.g. Blob.Read) or id."),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Grant CLIENT the app role ROLE of RESOURCE (it appears in the client's tokens' roles claim).

    \b
    Example:
      keyless role create contoso.example --client my-caller \\
          --resource blob-api --role Blob.Read
    """
    body = {"client": client, "resource": resource, "appRole": role}
    created = Target(url, admin_key, data_dir).call(
        "POST", tenant_path(tenant) + "/appRoleAssignments", json=body
    )
    if as_json:
        print_json(created)
        return
    out().print(
        f"[green]assigned[/] {escape(created['principalDisplayName'] or client)} -> "
        f"{escape(created['resourceDisplayName'] or resource)}/{escape(created['appRoleValue'] or role)} "
        f"({created['id']})"
    )


@role_app.command("delete")
def role_delete(
    tenant: str = TENANT,
    assignment: str | None = typer.Argument(
        None, help="Assignment id; or give --client, --resource, --role."
    ),
    client: str | None = typer.Option(None, "--client"),
    resource: str | None = typer.Option(None, "--resource"),
    role: str | None = typer.Option(None, "--role"),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Remove an app role assignment, by id or by client, resource and role.

    \b
    Example:
      keyless role delete contoso.example --client my-caller \\
          --resource blob-api --role Blob.Write
    """
    with Target(url, admin_key, data_dir).session() as session:
        items = _assignments(session, tenant)
        if assignment is not None:
            found = _find(items, assignment)
        elif client and resource and role:
            matches = [
                a
                for a in items
                if client in (a["principalDisplayName"], a["principalId"])
                and resource in (a["resourceDisplayName"], a["resourceId"])
                and role in (a["appRoleValue"], a["appRoleId"])
            ]
            if not matches:
                raise NotFound(f"{client} holds no role {role!r} of {resource}")
            found = matches[0]
        else:
            raise ConfigurationError("give the assignment id, or --client, --resource and --role")
        session.call("DELETE", f"{tenant_path(tenant)}/appRoleAssignments/{found['id']}")
    if as_json:
        print_json({"deleted": found["id"]})
        return
    out().print(f"[green]deleted[/] app role assignment {found['id']}")
