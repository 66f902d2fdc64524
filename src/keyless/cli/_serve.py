"""``keyless serve``: the token service over HTTPS, seeded from a trust file if given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from keyless.authority import ADMIN_KEY_FILE

if TYPE_CHECKING:  # the server stack is imported when `serve` runs, not for every CLI command
    from keyless.config import AuthoritySettings
    from keyless.tls import TLSFiles

HELP = """Run the token service (HTTPS by default, SQLite in the data directory).

Examples:

\b
  keyless serve                              # https://localhost:8443
  keyless serve --trust examples/trust.yaml  # seed tenants, apps, trusts
  KEYLESS_DATABASE_URL=postgresql+psycopg://u@db/keyless \\
      keyless serve --workers 2
"""

console = Console(stderr=True)
log = logging.getLogger("keyless.serve")


def _note(message: str) -> None:
    """A start-up line for people, or a log record when the logs are JSON (nothing else on stderr)."""
    from keyless._logging import log_format

    if log_format() == "json":
        log.info(message)
    else:
        console.print(message, highlight=False, markup=False)


def _tls(settings: AuthoritySettings) -> TLSFiles | None:
    from keyless.tls import ensure_local_tls, user_tls

    if not settings.tls:
        return None
    if settings.tls_cert and settings.tls_key:
        return user_tls(settings.tls_cert, settings.tls_key)
    host = settings.base_url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
    names = sorted({"localhost", "127.0.0.1", "::1", host, settings.host} - {"0.0.0.0", "::"})  # noqa: S104
    return ensure_local_tls(settings.data_dir, names)


def authority_app(settings: AuthoritySettings) -> Any:
    """The token service's application, built in each ``--workers N`` process from the parent's
    resolved settings (every flag and environment variable, as one object; the worker has already
    set up logging from them)."""
    from keyless.authority import Authority, create_app

    return create_app(Authority.open(settings))


def serve(
    host: str = typer.Option(None, help="Address to listen on [env KEYLESS_HOST; default 127.0.0.1]."),
    port: int = typer.Option(None, min=0, max=65535, help="Port [env KEYLESS_PORT; default 8443]."),
    data_dir: Path = typer.Option(None, help="Data directory [env KEYLESS_DATA_DIR; default ./.keyless]."),
    trust: Path = typer.Option(None, "--trust", "-t", help="Apply this trust file at start (idempotent)."),
    workers: int = typer.Option(
        None, min=1, max=64, help="Server processes [env KEYLESS_WORKERS; default 1]."
    ),
    public_url: str = typer.Option(None, help="Base URL clients use [env KEYLESS_PUBLIC_URL]."),
    dev: bool = typer.Option(False, "--dev", help="Development mode (allows http issuers on loopback)."),
    forwarded_allow_ips: str = typer.Option(
        None,
        "--forwarded-allow-ips",
        help="Proxies trusted for X-Forwarded-For/-Proto, comma-separated [env KEYLESS_FORWARDED_ALLOW_IPS; "
        "default: none].",
    ),
) -> None:
    from keyless._boundedhttp import server_options
    from keyless._net import bind_socket
    from keyless._workers import run_workers, serve_here
    from keyless.authority import Authority, create_app
    from keyless.config import load_authority_settings

    overrides = {
        k: v
        for k, v in {
            "host": host,
            "port": port,
            "data_dir": data_dir,
            "workers": workers,
            "public_url": public_url,
            "forwarded_allow_ips": forwarded_allow_ips,
        }.items()
        if v is not None
    }
    if dev:
        overrides.update(dev_mode=True, allow_http_loopback_issuers=True)
    settings = load_authority_settings(**overrides)
    sock = bind_socket(settings.host, settings.port)  # without SO_REUSEPORT: a busy port is refused
    tls = _tls(settings)
    authority = Authority.open(settings)
    if trust is not None:
        from keyless.authority import apply, load_trust_file

        changes = apply(authority.admin, load_trust_file(trust), lock_timeout=settings.apply_lock_timeout)
        _note(f"trust file {trust}: {len(changes.changes)} change(s) applied")
    _announce(settings, tls)
    if settings.metrics_address:
        from keyless._metrics import serve_metrics

        serve_metrics(settings.metrics_address)
        _note(f"metrics: http://{settings.metrics_address}/metrics (no authentication: keep it private)")
    ssl = {"ssl_certfile": str(tls.cert), "ssl_keyfile": str(tls.key)} if tls else {}
    limits = server_options(settings.server_limits, forwarded_allow_ips=settings.forwarded_allow_ips)
    options = {**ssl, **limits}
    if settings.workers == 1:
        serve_here(
            create_app(authority),
            sock,
            log_level=settings.log_level,
            grace=settings.shutdown_grace,
            options=options,
        )
        return
    authority.store.close()
    sock.close()  # each worker slot binds its own SO_REUSEPORT socket
    status = run_workers(
        settings.workers,
        settings.host,
        settings.port,
        app_factory=authority_app,
        factory_args=(settings,),
        log_level=settings.log_level,
        grace=settings.shutdown_grace,
        options=options,
        name="keyless-serve",
    )
    if status:
        raise typer.Exit(status)


def _announce(settings: AuthoritySettings, tls: TLSFiles | None) -> None:
    from keyless._logging import log_format
    from keyless.tls import trust_instructions

    base = settings.base_url
    if log_format() == "json":
        _note(f"keyless authority at {base} (listening on {settings.host}:{settings.port})")
        return
    console.print(
        f"[bold green]keyless authority[/] at {base}  (listening on {settings.host}:{settings.port})"
    )
    console.print(f"  v2 token endpoint:  {base}/<tenant>/oauth2/v2.0/token", highlight=False)
    console.print(
        f"  v2 discovery:       {base}/<tenant>/v2.0/.well-known/openid-configuration", highlight=False
    )
    console.print(f"  admin API:          {base}/admin/docs", highlight=False)
    console.print(f"  admin key:          {settings.data_dir / ADMIN_KEY_FILE}", highlight=False)
    if tls is not None and tls.ca_cert is not None:
        console.print("To trust its certificate:")
        console.print(trust_instructions(tls), highlight=False, markup=False)
