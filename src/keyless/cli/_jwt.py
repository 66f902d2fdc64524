"""``keyless jwt decode`` (no verification, and it says so) and ``keyless jwt verify`` (OIDC
discovery, signature against the issuer's keys with ``keyless.trust.verify_remote``, then issuer,
audience and time window)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import httpx
import typer

from keyless._time import human_time
from keyless.authority import Step, near_miss
from keyless.cli._admin_client import Unreachable
from keyless.cli._common import JSON, escape, out, print_json, read_token
from keyless.errors import ClaimError, TransportError, VerificationError
from keyless.jose import KeySet, ParsedJWS, PublicKey, decode_unverified, parse_compact, verify_signature
from keyless.trust import (
    IssuerKeyCache,
    JsonFetcher,
    check_time_window,
    discover,
    discovery_url_for,
    verify_remote,
)

__all__ = ["fetch_keys", "jwt_app", "print_steps", "print_token", "times_of"]

jwt_app = typer.Typer(help="Look inside a JWT, or verify one against its issuer.", no_args_is_help=True)

TOKEN = typer.Argument(..., help="The token, '-' to read it from stdin, or a file holding it.")
_TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time")
_MARK = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]•[/]"}


def times_of(claims: Mapping[str, Any], now: float) -> dict[str, str]:
    """The time claims in words: ``2024-05-01 12:00:00Z (3m 20s ago)``."""
    return {
        name: human_time(float(claims[name]), now)
        for name in _TIME_CLAIMS
        if isinstance(claims.get(name), int | float) and not isinstance(claims.get(name), bool)
    }


def print_steps(steps: Sequence[Step]) -> None:
    console = out()
    width = max((len(s.name) for s in steps), default=0)
    for step in steps:
        console.print(f"{_MARK[step.ok]} {step.name:<{width}}  {escape(step.detail)}")


def print_token(header: Mapping[str, Any], claims: Mapping[str, Any], now: float) -> None:
    """Header and claims, one per line, time claims with their human reading."""
    console = out()
    times = times_of(claims, now)
    console.print("[bold]header[/]")
    for key, value in header.items():
        console.print(f"  {escape(key)}: {escape(_text(value))}")
    console.print("[bold]claims[/]")
    for key, value in claims.items():
        extra = f"  [dim]{escape(times[key])}[/]" if key in times else ""
        console.print(f"  {escape(key)}: {escape(_text(value))}{extra}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@jwt_app.command("decode")
def decode(token: str = TOKEN, as_json: bool = JSON) -> None:
    """Show a JWT's header and claims, times in words. Nothing is verified.

    Examples:

    \b
      keyless jwt decode "$TOKEN"
      curl -s -H Metadata-Flavor:Google "$MD/identity?audience=api://x" \\
          | keyless jwt decode -
    """
    header, claims = decode_unverified(read_token(token))
    now = time.time()
    if as_json:
        print_json({"verified": False, "header": header, "claims": claims, "times": times_of(claims, now)})
        return
    out().print(
        "[yellow]decoded only: the signature and claims were NOT verified[/] (keyless jwt verify does)"
    )
    print_token(header, claims, now)


async def fetch_keys(issuer: str, jwks: str | None, timeout: float) -> tuple[KeySet, str]:
    """The issuer's key set (through discovery unless ``jwks`` is given) and where it came from."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        fetcher = JsonFetcher(client, timeout=timeout, allow_http_loopback=True)
        if jwks is None:
            metadata = await discover(issuer, fetcher)
            jwks = metadata.jwks_uri
        document = await fetcher.get(jwks)
    try:
        return KeySet.from_jwks(document), jwks
    except ValueError as exc:
        raise TransportError(f"{jwks}: {exc}", retryable=False) from None


async def _verified_by(
    parsed: ParsedJWS, issuer: str, jwks: str | None, algorithms: Collection[str]
) -> PublicKey:
    """The key that verifies ``parsed``: the issuer's through discovery (trust's remote verifier),
    or those of the ``--jwks`` URL given instead."""
    if jwks is not None:
        keys, _ = await fetch_keys(issuer, jwks, timeout=10)
        return verify_signature(parsed, keys, algorithms=algorithms)
    async with httpx.AsyncClient(follow_redirects=False) as client:
        cache = IssuerKeyCache(client=client, timeout=10, allow_http_loopback=True)
        return await verify_remote(parsed, issuer, cache, algorithms)


def _verify(
    text: str,
    issuer: str,
    audience: str | None,
    jwks: str | None,
    leeway: float,
    algorithms: list[str],
    now: float,
) -> tuple[list[Step], dict[str, Any], dict[str, Any], TransportError | None]:
    steps: list[Step] = []
    parsed = parse_compact(text)  # MalformedToken / UnsupportedAlgorithm: exit 1 with the reason
    claims, header = dict(parsed.payload), dict(parsed.header)
    iss = claims.get("iss")
    if iss == issuer:
        steps.append(Step("issuer", True, f"{issuer!r}"))
    else:
        why = near_miss(iss, issuer) if isinstance(iss, str) else None
        steps.append(
            Step("issuer", False, f"token iss {iss!r}, expected {issuer!r}" + (f": {why}" if why else ""))
        )
    where = jwks or discovery_url_for(issuer)
    try:
        key = asyncio.run(_verified_by(parsed, issuer, jwks, algorithms))
        steps.append(Step("signature", True, f"{parsed.alg} with key {key.kid!r} from {where}"))
    except TransportError as exc:
        steps.append(Step("signature", False, f"the issuer's keys could not be fetched: {exc}"))
        return steps, header, claims, exc
    except VerificationError as exc:
        steps.append(Step("signature", False, f"{exc.reason} (keys from {where})"))
    if audience is not None:
        aud = claims.get("aud")
        values = aud if isinstance(aud, list) else [aud]
        ok = audience in values
        steps.append(Step("audience", ok, f"{aud!r} {'includes' if ok else 'does not include'} {audience!r}"))
    try:
        check_time_window(claims, now=now, leeway=leeway)
        steps.append(Step("time window", True, f"valid now (leeway {leeway:g} s)"))
    except ClaimError as exc:
        steps.append(Step("time window", False, exc.reason))
    return steps, header, claims, None


@jwt_app.command("verify")
def verify(
    token: str = TOKEN,
    issuer: str = typer.Option(..., "--issuer", help="The issuer the token must come from (exactly)."),
    audience: str | None = typer.Option(None, "--audience", help="A value the token's aud must hold."),
    jwks: str | None = typer.Option(
        None, "--jwks", help="Key set URL (default: from the issuer's discovery)."
    ),
    leeway: float = typer.Option(60, "--leeway", help="Clock skew allowed on exp and nbf, in seconds."),
    algorithms: list[str] | None = typer.Option(
        None, "--algorithm", help="Allowed algorithm; repeat (default RS256, PS256, ES256)."
    ),
    as_json: bool = JSON,
) -> None:
    """Verify a JWT: issuer's keys via OIDC discovery (or --jwks), signature, iss, aud and time window.

    Exit status: 0 valid, 1 invalid, 3 the issuer's keys could not be fetched.

    \b
    Example:
      keyless jwt verify "$TOKEN" --issuer https://accounts.google.com \\
          --audience api://AzureADTokenExchange
    """
    now = time.time()
    allowed = algorithms or ["RS256", "PS256", "ES256"]
    steps, header, claims, fetch_error = _verify(
        read_token(token), issuer, audience, jwks, leeway, allowed, now
    )
    valid = all(s.ok for s in steps)
    if as_json:
        print_json(
            {"valid": valid, "steps": [s.to_json() for s in steps], "header": header, "claims": claims}
        )
    else:
        print_token(header, claims, now)
        print_steps(steps)
        out().print("[bold green]valid[/]" if valid else "[bold red]invalid[/]")
    if fetch_error is not None and fetch_error.retryable:
        raise Unreachable(str(fetch_error))
    if not valid:
        raise typer.Exit(1)
