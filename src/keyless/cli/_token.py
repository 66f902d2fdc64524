"""``keyless token``: get an access token through any assertion source and print it, or its decoded
header and claims (for reading only: the signature is not checked)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import ssl
import time
from pathlib import Path
from typing import Any, Literal

import typer
from rich.console import Console

from keyless.credential import WorkloadIdentityCredential, decode_unverified

__all__ = ["HELP", "SourceChoice", "describe_times", "token"]

HELP = """Get an access token with workload identity federation and print it (or its claims).

The tenant, client id, authority and assertion source come from the same environment variables
as WorkloadIdentityCredential (AZURE_* or KEYLESS_*) unless given here. --decode does not check
the signature.

Examples:

\b
  keyless token api://blob-api/.default                 # for scripts
  keyless token api://blob-api/.default --decode        # readable claims
  keyless token api://blob-api/.default --assertion -d  # what is presented
  keyless token api://blob-api/.default --source metadata \\
      --tenant contoso.example --client-id <app id> \\
      --authority https://localhost:8443 --ca-file .keyless/tls/ca.pem
"""

err = Console(stderr=True)
_TIME_CLAIMS = ("iat", "nbf", "exp")


class SourceChoice(enum.StrEnum):
    auto = "auto"
    metadata = "metadata"
    file = "file"
    github = "github"
    env = "env"


_SOURCES: dict[SourceChoice, Literal["auto", "metadata", "file", "github", "env"]] = {
    SourceChoice.auto: "auto",
    SourceChoice.metadata: "metadata",
    SourceChoice.file: "file",
    SourceChoice.github: "github",
    SourceChoice.env: "env",
}


def _relative(seconds: float) -> str:
    amount = abs(seconds)
    if amount < 120:
        text = f"{amount:.0f} s"
    elif amount < 7200:
        text = f"{amount / 60:.0f} min"
    else:
        text = f"{amount / 3600:.1f} h"
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def describe_times(claims: dict[str, Any], now: float) -> list[str]:
    """``iat``/``nbf``/``exp`` as UTC dates with how far they are from ``now``."""
    lines = []
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            when = dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            lines.append(f"{name}  {int(value)}  {when} ({_relative(value - now)})")
    return lines


def _decoded(value: str) -> dict[str, Any]:
    header, claims = decode_unverified(value)
    return {"header": header, "claims": claims}


def _print_decoded(value: str, what: str) -> None:
    err.print(f"[yellow]{what} decoded for reading only: its signature is NOT checked[/]")
    decoded = _decoded(value)
    typer.echo("header:")
    typer.echo(json.dumps(decoded["header"], indent=2))
    typer.echo("claims:")
    typer.echo(json.dumps(decoded["claims"], indent=2))
    times = describe_times(decoded["claims"], time.time())
    if times:
        typer.echo("times:")
        for line in times:
            typer.echo(f"  {line}")


def token(
    scope: str = typer.Argument(..., help="The scope to ask for, like api://blob-api/.default."),
    tenant: str = typer.Option(
        None, "--tenant", "-t", help="Tenant id or domain [env KEYLESS_TENANT_ID / AZURE_TENANT_ID]."
    ),
    client_id: str = typer.Option(
        None, "--client-id", "-c", help="Application (client) id [env KEYLESS_CLIENT_ID / AZURE_CLIENT_ID]."
    ),
    authority: str = typer.Option(
        None,
        "--authority",
        help="https://host[:port] [env KEYLESS_AUTHORITY_HOST / AZURE_AUTHORITY_HOST; "
        "default https://login.microsoftonline.com].",
    ),
    source: SourceChoice = typer.Option(
        SourceChoice.auto, "--source", "-s", help="Where the assertion comes from (auto: detect)."
    ),
    audience: str = typer.Option(
        None,
        "--audience",
        help="Audience of the assertion (metadata, github) [default api://AzureADTokenExchange].",
    ),
    file: Path = typer.Option(
        None, "--file", "-f", help="Token file (implies --source file) [env AZURE_FEDERATED_TOKEN_FILE]."
    ),
    ca_file: Path = typer.Option(
        None,
        "--ca-file",
        help="CA to trust for the authority (keyless: <data dir>/tls/ca.pem) [SSL_CERT_FILE].",
    ),
    decode: bool = typer.Option(
        False,
        "--decode",
        "-d",
        help="Print the header and claims with readable times (signature NOT checked).",
    ),
    assertion: bool = typer.Option(
        False, "--assertion", help="Show the assertion the source gives instead of exchanging it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    credential = WorkloadIdentityCredential(
        tenant_id=tenant,
        client_id=client_id,
        token_file_path=file,
        source=_SOURCES[SourceChoice.file if file is not None and source is SourceChoice.auto else source],
        audience=audience,
        authority=authority,
        verify=verify,
    )
    described = getattr(credential.source, "description", repr(credential.source))
    result: dict[str, Any]
    with credential:
        if assertion:
            value = credential.source.get()
            result = {"assertion": value, "source": described}
        else:
            info = credential.get_token_info(scope)
            value = info.token
            result = {
                "access_token": info.token,
                "token_type": info.token_type,
                "expires_on": info.expires_on,
                "refresh_on": info.refresh_on,
                "tenant_id": credential.tenant_id,
                "client_id": credential.client_id,
                "authority": credential.authority,
                "source": described,
            }
    if as_json:
        if decode:
            result.update(_decoded(value), signature_checked=False)
        typer.echo(json.dumps(result, indent=2))
    elif decode:
        err.print(f"source: {described}", highlight=False)
        _print_decoded(value, "assertion" if assertion else "access token")
    else:
        typer.echo(value)
