"""Entry point: one ``keyless`` command with sub-commands; failures print the cause and the next
step, never a traceback (unless ``--debug``).

Exit codes: 0 ok; 1 refused, not found, or the operation failed; 2 a usage or configuration
problem; 3 the authority (or an issuer) could not be reached.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from keyless import __version__
from keyless._extras import missing_extra_message
from keyless._logging import configure_logging
from keyless.cli import (
    _credentials,
    _dev,
    _directory,
    _explain,
    _guard,
    _jwt,
    _keys,
    _metadata,
    _roles,
    _serve,
    _token,
    _trust,
)
from keyless.cli._admin_client import Unreachable
from keyless.cli._common import (
    ERROR_EXIT_META,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    JSON,
    err,
    escape,
    print_json,
)
from keyless.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    KeylessError,
    Locked,
    NotFound,
    TransportError,
    VerificationError,
)

__all__ = ["app", "main"]

_state = {"debug": False}


def _report(exc: KeylessError) -> int:
    """Print the cause and the next step; return the exit code."""
    console = err()
    if isinstance(exc, ConfigurationError):
        console.print("[bold red]configuration problem[/]" + ("s" if len(exc.problems) > 1 else "") + ":")
        for problem in exc.problems:
            console.print(f"  - {escape(problem)}")
        return EXIT_USAGE
    unreachable = isinstance(exc, Unreachable) or (type(exc) is TransportError and exc.retryable)
    console.print(f"[bold red]error[/] ({exc.code}): {escape(str(exc))}")
    hint = next((text for kind, text in _NEXT_STEPS if isinstance(exc, kind)), None)
    if hint and not unreachable:
        console.print(f"  next: {escape(hint)}")
    return EXIT_UNREACHABLE if unreachable else EXIT_FAILED


_NEXT_STEPS: tuple[tuple[type[KeylessError], str], ...] = (
    (
        NotFound,
        "check the name or id: keyless tenant list, keyless app list TENANT, keyless fic list TENANT APP",
    ),
    (AlreadyExists, "pick another name, or change the existing one (keyless fic update ...)"),
    (Locked, "wait for the other apply to finish, then run this one again (it is idempotent)"),
    (Conflict, "someone changed it meanwhile: read it again and retry"),
    (VerificationError, "check that the argument is a whole JWT: keyless jwt decode TOKEN"),
    (TransportError, "the authority answered with an error: see its log"),
)


class KeylessGroup(TyperGroup):
    """Turns keyless errors raised by any sub-command into a message and an exit code; names every
    argument in capitals in help (``keyless explain [OPTIONS] {ASSERTION}``, ``TENANT``, ``APP``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_arguments(self)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeylessError as exc:
            if _state["debug"]:
                raise
            code = _report(exc)
            raise typer.Exit(ctx.meta.get(ERROR_EXIT_META, code)) from None
        except ModuleNotFoundError as exc:  # a part installed without its extra
            message = missing_extra_message(exc)
            if message is None or _state["debug"]:
                raise
            err().print(f"[bold red]error[/]: {escape(message)}")
            raise typer.Exit(EXIT_USAGE) from None


def _name_arguments(command: Any) -> None:
    for param in getattr(command, "params", []):
        if param.param_type_name == "argument" and param.metavar is None and param.name:
            param.metavar = param.name.upper()
    for sub in getattr(command, "commands", {}).values():
        _name_arguments(sub)


app = typer.Typer(
    name="keyless",
    cls=KeylessGroup,
    help="Secretless service-to-service identity: an Entra-compatible token service with workload identity "
    "federation. Exit status: 0 ok, 1 refused / not found / failed, 2 usage or configuration problem, "
    "3 authority unreachable. See docs/cli.md.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    rich_markup_mode=None,
    context_settings={"max_content_width": 120, "help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(EXIT_OK)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on failure."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    _state["debug"] = debug


@app.command()
def version(as_json: bool = JSON) -> None:
    """Print the keyless version.

    \b
    Example: keyless version
    """
    if as_json:
        print_json({"version": __version__})
        return
    typer.echo(__version__)


# servers
app.command("serve", help=_serve.HELP)(_serve.serve)
app.command("metadata", help=_metadata.HELP)(_metadata.metadata)
app.add_typer(_guard.app, name="guard")
app.command("dev", help=_dev.HELP)(_dev.dev)
# tokens and trust
app.command("token", help=_token.HELP)(_token.token)
app.add_typer(_jwt.jwt_app, name="jwt")
app.command("explain")(_explain.explain_command)
app.command("refusals")(_explain.refusals_command)
app.command("plan")(_trust.plan_command)
app.command("apply")(_trust.apply_command)
app.command("export")(_trust.export_command)
# the directory
app.add_typer(_directory.tenant_app, name="tenant")
app.add_typer(_directory.app_app, name="app")
app.add_typer(_credentials.fic_app, name="fic")
app.add_typer(_credentials.secret_app, name="secret")
app.add_typer(_credentials.cert_app, name="cert")
app.add_typer(_roles.role_app, name="role")
app.add_typer(_keys.app, name="keys")


def main() -> None:
    try:
        configure_logging(os.environ.get("KEYLESS_LOG_LEVEL", "info"))
        app()
    except KeylessError as exc:  # raised outside a sub-command (the group handles the rest)
        if _state["debug"]:
            raise
        sys.exit(_report(exc))
    except KeyboardInterrupt:
        sys.exit(130)
