"""``keyless guard``: run the verifying reverse proxy, explain a token, check a configuration.

    keyless guard --upstream http://127.0.0.1:8080 --config guard.yaml --port 8000 [--workers 2]
    keyless guard explain "$TOKEN" --config guard.yaml [--method GET --path /blobs/a] [--json]
    keyless guard check --config guard.yaml

``explain`` exits 0 when the token would be accepted, 1 when refused, 2 for configuration problems,
3 when the issuer's keys cannot be fetched.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from keyless._logging import configure_logging, log_format
from keyless.cli._common import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, err, out, read_token
from keyless.errors import ConfigurationError
from keyless.guard import Explanation, GuardConfig, GuardProxy, Verifier, explain, load_config

__all__ = ["app", "check", "explain_token", "run"]

HELP = "Verify bearer tokens in front of a service: the reverse proxy, and tools to explain refusals."
app = typer.Typer(help=HELP, no_args_is_help=False, add_completion=False, pretty_exceptions_enable=False)

_CONFIG = typer.Option(
    ..., "--config", "-c", envvar="KEYLESS_GUARD_CONFIG", help="The guard's YAML configuration."
)
_OPTIONAL_CONFIG = typer.Option(None, "--config", "-c", help="The guard's YAML configuration.")
_UPSTREAM = typer.Option(
    None, "--upstream", "-u", help="URL of the protected service [default: config 'upstream']."
)
_HOST = typer.Option("127.0.0.1", "--host", envvar="HOST", help="Address to listen on.")
_PORT = typer.Option(8000, "--port", "-p", min=0, max=65535, envvar="PORT", help="Port to listen on.")
_LOG_LEVEL = typer.Option("info", "--log-level", help="debug, info, warning or error.")
_WORKERS = typer.Option(
    1, "--workers", "-w", min=1, help="Proxy processes, each accepting on its own SO_REUSEPORT socket."
)
_GRACE = typer.Option(
    10,
    "--shutdown-grace",
    min=0,
    envvar="KEYLESS_SHUTDOWN_GRACE",
    help="Seconds in-flight requests get to finish on SIGTERM.",
)
_MARKS = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]"}


def _load(config: Path) -> GuardConfig:
    try:
        return load_config(config)
    except ConfigurationError as exc:
        _config_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None


def _config_problems(exc: ConfigurationError) -> None:
    console = err()
    console.print("[bold red]configuration problem[/]" + ("s" if len(exc.problems) > 1 else "") + ":")
    for problem in exc.problems:
        console.print(f"  - {problem}", markup=False, highlight=False)


def _skip_missing_sniffio() -> None:
    """httpcore looks for ``sniffio`` on every lock it makes; newer anyio no longer brings it, and a
    failed import searches sys.path each time (about 0.2 ms per proxied request). When it is not
    installed, record that once. This process is the guard's own, so the choice is ours to make."""
    if importlib.util.find_spec("sniffio") is None:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


def _serve(
    upstream: str | None, config: Path, host: str, port: int, log_level: str, workers: int, grace: int
) -> None:
    from keyless.guard import proxy_from_file

    _skip_missing_sniffio()
    settings = _load(config)
    try:
        proxy = GuardProxy(upstream, config=settings)
    except (ValueError, ConfigurationError) as exc:
        if isinstance(exc, ConfigurationError):
            _config_problems(exc)
        else:
            err().print(f"[bold red]error[/]: {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from None
    many = f", {workers} processes" if workers > 1 else ""
    started = f"keyless guard: {host}:{port} -> {proxy.upstream} ({len(settings.issuers)} issuer(s){many})"
    _run(
        proxy,
        (proxy_from_file, (upstream, str(config))),
        settings,
        host,
        port,
        log_level,
        workers,
        grace,
        started,
    )


def _run(
    app: Any,
    factory: tuple[Any, tuple[Any, ...]],
    settings: GuardConfig,
    host: str,
    port: int,
    log_level: str,
    workers: int,
    grace: int,
    started: str,
) -> None:
    """Serve ``app`` here, or ``factory`` (a module-level function and its arguments) in workers."""
    from keyless._boundedhttp import server_options
    from keyless._net import bind_socket
    from keyless._workers import run_workers, serve_here

    try:
        sock = bind_socket(host, port)  # without SO_REUSEPORT: a busy port is refused, naming --port
    except ConfigurationError as exc:
        _config_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None
    configure_logging(log_level)  # the access log is keyless.guard.access, at info
    if log_format() == "json":
        logging.getLogger("keyless.guard").info(started)
    else:
        err().print(started, highlight=False, markup=False)
    # server_options turns uvicorn's proxy-headers rewrite off: the guard writes its own access log
    # (with the decision and its reason) and its own X-Forwarded-* headers, and that rewrite would
    # replace the real peer address with whatever a local client claims in X-Forwarded-For.
    options: dict[str, Any] = {"server_header": False, "lifespan": "on"}
    options.update(server_options(settings.server_limits))
    if workers == 1:
        serve_here(app, sock, log_level=log_level, grace=grace, options=options)
        return
    sock.close()  # each worker slot binds its own SO_REUSEPORT socket
    status = run_workers(
        workers,
        host,
        port,
        app_factory=factory[0],
        factory_args=factory[1],
        log_level=log_level,
        grace=grace,
        options=options,
        name="keyless-guard",
    )
    if status:
        raise typer.Exit(status)


@app.callback(invoke_without_command=True)
def _default(
    ctx: typer.Context,
    upstream: str | None = _UPSTREAM,
    config: Path | None = _OPTIONAL_CONFIG,
    host: str = _HOST,
    port: int = _PORT,
    log_level: str = _LOG_LEVEL,
    workers: int = _WORKERS,
    grace: int = _GRACE,
) -> None:
    """Without a sub-command: run the proxy (same as ``keyless guard run``)."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_USAGE)
    _serve(upstream, config, host, port, log_level, workers, grace)


@app.command("run")
def run(
    upstream: str | None = _UPSTREAM,
    config: Path = _CONFIG,
    host: str = _HOST,
    port: int = _PORT,
    log_level: str = _LOG_LEVEL,
    workers: int = _WORKERS,
    grace: int = _GRACE,
) -> None:
    """Run the reverse proxy: only verified, allowed requests reach the upstream.

    \b
    Example:
      keyless guard run --upstream http://127.0.0.1:8080 --config guard.yaml \\
          --port 8000 --workers 2
    """
    _serve(upstream, config, host, port, log_level, workers, grace)


@app.command("authz")
def authz(
    config: Path = _CONFIG,
    host: str = _HOST,
    port: int = typer.Option(
        9000, "--port", "-p", min=0, max=65535, envvar="PORT", help="Port to listen on."
    ),
    log_level: str = _LOG_LEVEL,
    workers: int = _WORKERS,
    grace: int = _GRACE,
    print_config: str | None = typer.Option(
        None,
        "--print-config",
        metavar="nginx|caddy|traefik|envoy",
        help="Print a data-plane configuration for this service and exit.",
    ),
    upstream: str | None = typer.Option(
        None,
        "--upstream",
        "-u",
        help="For --print-config: the service's host:port [default: config 'upstream'].",
    ),
    listen: int = typer.Option(
        8080, "--listen", min=1, max=65535, help="For --print-config: the data plane's port."
    ),
) -> None:
    """Run the forward-auth service that nginx (auth_request), Traefik (ForwardAuth), Caddy
    (forward_auth) and Envoy (ext_authz) ask before passing a request on.

    \b
    Example: keyless guard authz --config guard.yaml --port 9000
    Example: keyless guard authz --config guard.yaml --print-config nginx
    """
    from keyless.guard import SNIPPET_KINDS as KINDS
    from keyless.guard import ForwardAuth, forward_auth_from_file, snippet

    settings = _load(config)
    if print_config is not None:
        if print_config not in KINDS:
            err().print(f"[bold red]error[/]: --print-config takes one of {', '.join(KINDS)}")
            raise typer.Exit(EXIT_USAGE)
        target = upstream or settings.upstream
        if not target:
            err().print(
                "[bold red]error[/]: --print-config needs --upstream or 'upstream' in the configuration"
            )
            raise typer.Exit(EXIT_USAGE)
        address = target.split("://", 1)[-1].rstrip("/")
        out().print(
            snippet(print_config, authz=f"{host}:{port}", upstream=address, listen=listen),
            markup=False,
            highlight=False,
            end="",
        )
        return
    _skip_missing_sniffio()
    service = ForwardAuth(settings)
    many = f", {workers} processes" if workers > 1 else ""
    started = f"keyless guard authz: {host}:{port} ({len(settings.issuers)} issuer(s){many})"
    _run(
        service,
        (forward_auth_from_file, (str(config),)),
        settings,
        host,
        port,
        log_level,
        workers,
        grace,
        started,
    )


def _print(explanation: Explanation) -> None:
    console = out()
    width = max(len(step.name) for step in explanation.steps)
    for step in explanation.steps:
        code = f" [dim]({step.code})[/]" if step.code else ""
        console.print(
            f"{_MARKS[step.status]} {step.name:<{width}}  {escape(step.detail)}{code}", highlight=False
        )
    identity = explanation.identity
    if explanation.passed and identity is not None:
        roles = ", ".join(identity.roles) or "none"
        who = f"{escape(identity.subject)} from {escape(identity.issuer)}"
        console.print(f"[bold green]accepted[/]: {who} (roles: {escape(roles)})", highlight=False)
        return
    first = explanation.failures[0] if explanation.failures else None
    why = f"{first.name}: {escape(first.detail)}" if first else "not every check could run"
    console.print(f"[bold red]refused[/] - {why}", highlight=False)


@app.command("explain")
def explain_token(
    token: str = typer.Argument(..., help="The token, '-' to read it from stdin, or a file holding it."),
    config: Path = _CONFIG,
    method: str = typer.Option("GET", "--method", "-X", help="Request method for the policy check."),
    path: str | None = typer.Option(None, "--path", help="Request path: also check the policy for it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show every check the guard makes on TOKEN, which one fails, and why.

    Exit status: 0 accepted, 1 refused, 2 configuration problems, 3 the issuer's keys unreachable.

    \b
    Example: keyless guard explain "$TOKEN" --config guard.yaml --path /blobs/a
    """
    settings = _load(config)
    try:
        text = read_token(token)
    except ConfigurationError as exc:
        _config_problems(exc)
        raise typer.Exit(EXIT_USAGE) from None

    async def go() -> Explanation:
        async with Verifier(settings) as verifier:
            return await explain(text, verifier, method=method, path=path)

    explanation = asyncio.run(go())
    if as_json:
        typer.echo(json.dumps(explanation.to_dict(), indent=2, default=str))
    else:
        _print(explanation)
    if explanation.passed:
        raise typer.Exit(EXIT_OK)
    unreachable = any(step.code == "issuer_unavailable" for step in explanation.failures)
    raise typer.Exit(EXIT_UNREACHABLE if unreachable else EXIT_FAILED)


def _rule_json(rule: Any) -> dict[str, Any]:
    return {
        "methods": sorted(rule.methods) if rule.methods else ["*"],
        "paths": list(rule.patterns),
        "allow": rule.allow,
        "anyOf": list(rule.any_of),
        "allOf": list(rule.all_of),
        "principals": sorted(rule.principals),
        "forwardAuthorization": rule.forward_authorization,
        "where": rule.where,
    }


@app.command("check")
def check(
    config: Path = _CONFIG, as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")
) -> None:
    """Read the configuration and show what it trusts and allows (exit 2 if it has problems).

    Example: keyless guard check --config guard.yaml
    """
    settings = _load(config)
    verifier = Verifier(settings)
    asyncio.run(verifier.aclose())  # only its issuer registry is needed
    if as_json:
        policy = settings.policy
        typer.echo(
            json.dumps(
                {
                    "config": str(config),
                    "valid": True,
                    "issuers": list(verifier.issuers.trusted()),
                    "audiences": list(settings.audiences),
                    "algorithms": list(settings.algorithms),
                    "leeway": settings.leeway,
                    "policy": {
                        "default": policy.default,
                        "caseInsensitivePaths": policy.case_insensitive_paths,
                        "rules": [_rule_json(rule) for rule in policy.rules],
                    },
                    "forwardOverrideHeaders": sorted(h.decode() for h in settings.forward_override_headers),
                    "warnings": settings.development_warnings(),
                },
                indent=2,
            )
        )
        return
    console = out()
    console.print(f"[bold]{escape(str(config))}[/]: configuration is valid")
    console.print("trusted issuers:")
    for issuer in verifier.issuers.trusted():
        console.print(f"  {escape(issuer)}", highlight=False)
    console.print(f"audiences: {escape(', '.join(settings.audiences) or '(per issuer)')}", highlight=False)
    console.print(f"algorithms: {', '.join(settings.algorithms)}; leeway {settings.leeway:g} s")
    policy = settings.policy
    folded = ", paths matched ignoring case" if policy.case_insensitive_paths else ""
    console.print(f"policy: {len(policy.rules)} rule(s), default {policy.default}{folded}")
    for rule in policy.rules:
        methods = ",".join(sorted(rule.methods)) if rule.methods else "*"
        need = rule.allow or " ".join(
            part
            for part in (
                f"any_of={list(rule.any_of)}" if rule.any_of else "",
                f"all_of={list(rule.all_of)}" if rule.all_of else "",
                f"principals={sorted(rule.principals)}" if rule.principals else "",
            )
            if part
        )
        forwards = " (forwards Authorization)" if rule.forward_authorization else ""
        console.print(f"  {methods} {' '.join(rule.patterns)} -> {escape(need)}{forwards}", highlight=False)
    overrides = ", ".join(sorted(h.decode() for h in settings.forward_override_headers)) or "none"
    console.print(f"override headers passed on: {overrides}", highlight=False)
    for warning in settings.development_warnings():
        err().print(f"[yellow]warning[/]: {escape(warning)}", highlight=False)
