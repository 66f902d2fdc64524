"""``keyless tenant`` and ``keyless app``: list, show, create and delete over the admin API."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import typer

from keyless.cli._common import ADMIN_KEY, DATA_DIR, JSON, URL, Target, out, print_json, show_fields, table

__all__ = ["app_app", "app_path", "tenant_app", "tenant_path"]

tenant_app = typer.Typer(help="Tenants: list, show, create, delete.", no_args_is_help=True)
app_app = typer.Typer(help="Applications (app registrations) of a tenant.", no_args_is_help=True)

TENANT = typer.Argument(..., help="Tenant GUID or domain.")
APP = typer.Argument(..., help="Application: appId, object id or display name.")


def tenant_path(tenant: str) -> str:
    return f"/tenants/{quote(tenant, safe='')}"


def app_path(tenant: str, app: str) -> str:
    return f"{tenant_path(tenant)}/applications/{quote(app, safe='')}"


# -- tenants ------------------------------------------------------------------------------------------


@tenant_app.command("list")
def tenant_list(
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List the tenants.

    \b
    Example: keyless tenant list --json
    """
    tenants = Target(url, admin_key, data_dir).call("GET", "/tenants")["value"]
    if as_json:
        print_json(tenants)
        return
    rows = [
        (t["id"], t["displayName"], ", ".join(t["domains"]), t["signingAlgorithm"], str(t["detailedErrors"]))
        for t in tenants
    ]
    table(("id", "displayName", "domains", "signing", "detailedErrors"), rows)


@tenant_app.command("show")
def tenant_show(
    tenant: str = TENANT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show a tenant and its applications.

    \b
    Example: keyless tenant show contoso.example
    """
    with Target(url, admin_key, data_dir).session() as session:
        found = session.call("GET", tenant_path(tenant))
        apps = session.call("GET", tenant_path(tenant) + "/applications")["value"]
    if as_json:
        print_json({**found, "applications": apps})
        return
    show_fields(found, title=f"tenant {found['displayName']}")
    table(("appId", "displayName"), [(a["appId"], a["displayName"]) for a in apps], title="applications")


@tenant_app.command("create")
def tenant_create(
    display_name: str = typer.Argument(..., help="Display name."),
    tenant_id: str | None = typer.Option(None, "--id", help="Tenant GUID (default: a new one)."),
    domains: list[str] | None = typer.Option(None, "--domain", help="A domain name; repeat for more."),
    signing_algorithm: str = typer.Option("RS256", "--signing-algorithm", help="RS256 or ES256."),
    detailed_errors: bool | None = typer.Option(
        None,
        "--detailed-errors/--entra-errors",
        help="Append the exact mismatch to error_description (default: on in development mode).",
    ),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Create a tenant.

    \b
    Example:
      keyless tenant create "Contoso" --domain contoso.example --detailed-errors
    """
    body: dict[str, object] = {
        "displayName": display_name,
        "domains": domains or [],
        "signingAlgorithm": signing_algorithm,
    }
    if tenant_id is not None:
        body["id"] = tenant_id
    if detailed_errors is not None:
        body["detailedErrors"] = detailed_errors
    created = Target(url, admin_key, data_dir).call("POST", "/tenants", json=body)
    if as_json:
        print_json(created)
        return
    out().print(f"[green]created[/] tenant {created['displayName']} ({created['id']})")


@tenant_app.command("delete")
def tenant_delete(
    tenant: str = TENANT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Delete a tenant with everything in it.

    \b
    Example: keyless tenant delete contoso.example
    """
    Target(url, admin_key, data_dir).call("DELETE", tenant_path(tenant))
    if as_json:
        print_json({"deleted": tenant})
        return
    out().print(f"[green]deleted[/] tenant {tenant}")


# -- applications -------------------------------------------------------------------------------------


@app_app.command("list")
def app_list(
    tenant: str = TENANT,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """List a tenant's applications.

    \b
    Example: keyless app list contoso.example
    """
    apps = Target(url, admin_key, data_dir).call("GET", tenant_path(tenant) + "/applications")["value"]
    if as_json:
        print_json(apps)
        return
    rows = [
        (
            a["appId"],
            a["displayName"],
            ", ".join(a["identifierUris"]),
            ", ".join(r["value"] for r in a["appRoles"]),
            str(a["appRoleAssignmentRequired"]),
        )
        for a in apps
    ]
    table(("appId", "displayName", "identifierUris", "appRoles", "assignmentRequired"), rows)


@app_app.command("show")
def app_show(
    tenant: str = TENANT,
    app: str = APP,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Show an application with its credentials (never secret values).

    \b
    Example: keyless app show contoso.example cloud-run-caller
    """
    path = app_path(tenant, app)
    with Target(url, admin_key, data_dir).session() as session:
        found = session.call("GET", path)
        fics = session.call("GET", path + "/federatedIdentityCredentials")["value"]
        secrets = session.call("GET", path + "/passwordCredentials")["value"]
        certs = session.call("GET", path + "/keyCredentials")["value"]
    if as_json:
        print_json(
            {
                **found,
                "federatedIdentityCredentials": fics,
                "passwordCredentials": secrets,
                "keyCredentials": certs,
            }
        )
        return
    show_fields(found, title=f"application {found['displayName']}")
    if fics:
        rows = [
            (
                f["name"],
                f["issuer"],
                f["subject"] or f.get("claimsMatchingExpression", {}).get("value", ""),
                ", ".join(f["audiences"]),
            )
            for f in fics
        ]
        table(("name", "issuer", "subject", "audiences"), rows, title="federated identity credentials")
    if secrets:
        rows = [(s["keyId"], s["displayName"], s["hint"], s["endDateTime"]) for s in secrets]
        table(("keyId", "displayName", "hint", "expires"), rows, title="client secrets")
    if certs:
        rows = [(c["keyId"], c["displayName"], c["customKeyIdentifier"], c["endDateTime"]) for c in certs]
        table(("keyId", "displayName", "thumbprint", "expires"), rows, title="certificates")


@app_app.command("create")
def app_create(
    tenant: str = TENANT,
    display_name: str = typer.Argument(..., help="Display name."),
    app_id: str | None = typer.Option(None, "--app-id", help="Client id GUID (default: a new one)."),
    identifier_uris: list[str] | None = typer.Option(
        None, "--identifier-uri", help="e.g. api://blob-api; repeat for more."
    ),
    roles: list[str] | None = typer.Option(None, "--role", help="An app role value, e.g. Blob.Read; repeat."),
    token_version: int | None = typer.Option(None, "--token-version", help="Access token version: 1 or 2."),
    assignment_required: bool = typer.Option(
        False, "--assignment-required", help="Refuse clients holding no app role on it (AADSTS501051)."
    ),
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Create an application (with its service principal).

    \b
    Example:
      keyless app create contoso.example blob-api \\
          --identifier-uri api://blob-api --role Blob.Read
    """
    body: dict[str, object] = {
        "displayName": display_name,
        "identifierUris": identifier_uris or [],
        "appRoles": [{"value": r, "displayName": r} for r in roles or []],
        "appRoleAssignmentRequired": assignment_required,
    }
    if app_id is not None:
        body["appId"] = app_id
    if token_version is not None:
        body["api"] = {"requestedAccessTokenVersion": token_version}
    created = Target(url, admin_key, data_dir).call("POST", tenant_path(tenant) + "/applications", json=body)
    if as_json:
        print_json(created)
        return
    out().print(f"[green]created[/] application {created['displayName']}: appId {created['appId']}")


@app_app.command("delete")
def app_delete(
    tenant: str = TENANT,
    app: str = APP,
    url: str | None = URL,
    admin_key: str | None = ADMIN_KEY,
    data_dir: Path | None = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Delete an application with its credentials and role assignments.

    \b
    Example: keyless app delete contoso.example cloud-run-caller
    """
    Target(url, admin_key, data_dir).call("DELETE", app_path(tenant, app))
    if as_json:
        print_json({"deleted": app})
        return
    out().print(f"[green]deleted[/] application {app}")
