"""The seed scenario, played and narrated: a Cloud Run workload gets a token with no secret and
calls a protected API that checks its roles; then one deliberately refused exchange, explained.

Each step prints what happened and the key claims; ``play()`` returns True only when every step
came out as expected (the refused ones included), which ``keyless dev --once`` turns into its
exit status.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from keyless.authority import explain_assertion
from keyless.credential import (
    ClientAssertionCredential,
    ClientAuthenticationError,
    MetadataServerAssertion,
    decode_unverified,
)
from keyless.dev._stack import DevStack

__all__ = ["play"]

WRONG_AUDIENCE = "api://not-the-exchange-audience"


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    delta = int(epoch - time.time())
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S UTC")
    return f"{moment} ({'in ' if delta >= 0 else ''}{abs(delta) // 60} min{'' if delta >= 0 else ' ago'})"


def _claims_table(title: str, claims: Mapping[str, Any], names: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    for name in names:
        if name in claims:
            value = claims[name]
            shown = _when(value) if name in ("exp", "iat", "nbf") else value
            table.add_row(f"[cyan]{name}[/]", str(shown))
    return table


class _Narrator:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.ok = True
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        self.console.rule(f"[bold]{self.number}. {title}", align="left")

    def result(self, expected: bool, message: str) -> None:
        self.ok &= expected
        mark = "[green]✓[/]" if expected else "[red]✗[/]"
        self.console.print(f"{mark} {message}", highlight=False)


def play(dev: DevStack, console: Console | None = None) -> bool:
    say = _Narrator(console or Console())
    context = ssl.create_default_context(cafile=str(dev.ca_file))

    say.step("The workload asks its metadata server for an ID token (no secret anywhere)")
    source = MetadataServerAssertion(host=dev.metadata_host)
    id_token = source.get()
    _, id_claims = decode_unverified(id_token)
    say.console.print(
        _claims_table("Google-style ID token", id_claims, ("iss", "sub", "aud", "email", "exp"))
    )
    say.result(id_claims.get("aud") == "api://AzureADTokenExchange", "audience api://AzureADTokenExchange")

    say.step("It presents that token as a client assertion to the authority")
    credential = ClientAssertionCredential(
        dev.tenant_id, dev.client_id, source, authority=dev.authority_url, verify=context
    )
    access = credential.get_token(dev.scope)
    _, at_claims = decode_unverified(access.token)
    say.console.print(_claims_table("access token", at_claims, ("iss", "aud", "azp", "roles", "ver", "exp")))
    say.result("Blob.Write" in at_claims.get("roles", []), "roles granted by the trust file are in the token")

    say.step("It calls blob-api through the guard, which checks issuer, audience, expiry and roles")
    headers = {"Authorization": f"Bearer {access.token}"}
    with httpx.Client(base_url=dev.api_url, verify=context, headers=headers, timeout=10) as api:
        created = api.put("/containers/seed-demo")
        say.result(created.status_code in (200, 201), f"PUT /containers/seed-demo -> {created.status_code}")
        body = f"written at {dt.datetime.now(dt.UTC).isoformat()} with no secret".encode()
        put = api.put(
            "/containers/seed-demo/blobs/hello.txt", content=body, headers={"content-type": "text/plain"}
        )
        say.result(put.status_code == 201, f"PUT .../blobs/hello.txt -> {put.status_code}")
        got = api.get("/containers/seed-demo/blobs/hello.txt")
        say.result(got.content == body, f"GET .../blobs/hello.txt -> {got.status_code}: {got.text!r}")
    anonymous = httpx.get(f"{dev.api_url}/containers", verify=context, timeout=10)
    say.result(
        anonymous.status_code == 401,
        f"without a token: {anonymous.status_code}, "
        f"WWW-Authenticate: {anonymous.headers.get('www-authenticate')}",
    )

    say.step(f"A refused exchange: the workload asks for the wrong audience ({WRONG_AUDIENCE})")
    wrong = MetadataServerAssertion(WRONG_AUDIENCE, host=dev.metadata_host)
    wrong_token = wrong.get()
    refused = ClientAssertionCredential(
        dev.tenant_id, dev.client_id, wrong, authority=dev.authority_url, verify=context
    )
    try:
        refused.get_token(dev.scope)
        say.result(False, "the authority accepted a token with the wrong audience")
    except ClientAuthenticationError as exc:
        say.result(getattr(exc, "aadsts", None) == 700212, f"refused: {str(exc).splitlines()[0][:160]}")
    finally:
        refused.close()
        credential.close()

    say.step("keyless explain: why, and the fix")
    explanation = explain_assertion(
        wrong_token,
        dev.federated_credentials(),
        now=time.time(),
        app="cloud-run-caller",
        tenant=dev.tenant_id,
    )
    for check in explanation.steps:
        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]·[/]"}[check.ok]
        say.console.print(f"  {mark} {check.name}: {check.detail}", highlight=False)
    for fix in explanation.fixes[:1]:
        say.console.print(f"  [bold]fix:[/] {fix.summary}", highlight=False)
    say.result(
        explanation.aadsts == 700212, f"explain predicts AADSTS{explanation.aadsts}, as the endpoint said"
    )
    return say.ok
