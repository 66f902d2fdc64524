"""``keyless keys``: list and rotate a tenant's signing keys."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from keyless.cli._common import Target, new_table, out, progress

app = typer.Typer(help="Signing keys of a tenant.", no_args_is_help=True)

_URL = typer.Option(None, "--url", help="Authority base URL [env KEYLESS_URL; default: the local one].")
_KEY = typer.Option(
    None, "--admin-key", help="Admin key [env KEYLESS_ADMIN_KEY; default: DATA_DIR/admin.key]."
)
_DATA = typer.Option(None, "--data-dir", help="Data directory of the local authority.")
_JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


@app.command("list")
def list_keys(
    tenant: str = typer.Argument(..., help="Tenant GUID or domain."),
    url: str = _URL,
    admin_key: str = _KEY,
    data_dir: Path = _DATA,
    as_json: bool = _JSON,
) -> None:
    """Show the tenant's published keys and which one signs.

    \b
    Example: keyless keys list contoso.example
    """
    keys = Target(url, admin_key, data_dir).call("GET", f"/tenants/{tenant}/signingKeys")["value"]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    table = new_table(("kid", "alg", "state", "created", "activates", "retired"))
    for key in keys:
        table.add_row(
            key["kid"],
            key["alg"],
            key["state"],
            key["createdDateTime"],
            key["activatesDateTime"],
            key.get("retiredDateTime") or "",
        )
    out().print(table)


@app.command("rotate")
def rotate(
    tenant: str = typer.Argument(..., help="Tenant GUID or domain."),
    publish_delay: int = typer.Option(
        None,
        "--publish-delay",
        help="Seconds the new key is published before it signs [default: KEYLESS_KEY_PUBLISH_DELAY, 3600]; "
        "never less than KEYLESS_KEY_PROPAGATION_SECONDS (5), so every node serves it first.",
    ),
    url: str = _URL,
    admin_key: str = _KEY,
    data_dir: Path = _DATA,
    as_json: bool = _JSON,
) -> None:
    """Add a signing key: published at once, signing after the publish delay.

    An emergency rotation (--publish-delay 0) signs with the new key as soon as every node and
    worker publishes it: after KEYLESS_KEY_PROPAGATION_SECONDS.

    \b
    Example: keyless keys rotate contoso.example --publish-delay 0
    """
    body = {} if publish_delay is None else {"publishDelaySeconds": publish_delay}
    with progress(f"rotating the signing keys of {tenant} ..."):
        key = Target(url, admin_key, data_dir).call(
            "POST", f"/tenants/{tenant}/signingKeys/rotate", json=body
        )
    if as_json:
        typer.echo(json.dumps(key, indent=2))
        return
    out().print(
        f"new key [bold]{key['kid']}[/] ({key['alg']}): {key['state']}, signs from {key['activatesDateTime']}"
    )
