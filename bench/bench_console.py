"""The console's server time with a large directory: every page under 200 ms at 2,000 applications.

    .venv/bin/python -m bench.bench_console [--apps 2000] [--rounds 5]

Seeds one tenant with ``--apps`` applications (each with a federated credential, every tenth with
an app role held on a shared resource) through one trust-file apply, records 2,000 refusals, signs
in through the form, and times each page in process (the ASGI app, no network), median of
``--rounds``. There is no crypto on these pages (but the explain box's one signature check), so the
figures are absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from keyless.authority._service import Authority
from keyless.authority.http.app import create_app
from keyless.authority.model import Refusal, new_id
from keyless.authority.trustfile.reconcile import apply, parse_trust_document
from keyless.config import load_authority_settings

LIMIT_MS = 200.0
GITHUB = "https://token.actions.githubusercontent.com"


def _document(apps: int) -> dict[str, Any]:
    tenant = new_id()
    applications: list[dict[str, Any]] = [
        {"displayName": "shared-api", "appId": new_id(), "appRoles": [{"value": "Data.Read"}]}
    ]
    for i in range(apps - 1):
        entry: dict[str, Any] = {
            "displayName": f"svc-{i:05}",
            "appId": new_id(),
            "federatedIdentityCredentials": [
                {
                    "name": "github",
                    "issuer": GITHUB,
                    "subject": f"repo:contoso/svc-{i:05}:ref:refs/heads/main",
                }
            ],
        }
        if i % 10 == 0:
            entry["appRoleAssignments"] = [{"resource": "shared-api", "appRole": "Data.Read"}]
        applications.append(entry)
    return {"tenants": [{"id": tenant, "displayName": "Contoso", "applications": applications}]}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def _measure(authority: Authority, tenant: str, app_id: str, rounds: int) -> dict[str, float]:
    transport = httpx.ASGITransport(app=create_app(authority, background=False))
    async with httpx.AsyncClient(transport=transport, base_url="https://keyless.test") as client:
        form = await client.get("/console/sign-in")
        key = (authority.settings.data_dir / "admin.key").read_text().strip()
        signed = await client.post(
            "/console/sign-in", data={"csrf": _csrf(form.text), "key": key, "next": "/console/overview"}
        )
        assert signed.status_code == 303, signed.text
        csrf = _csrf((await client.get("/console/overview")).text)
        pages = {
            "overview": ("GET", "/console/overview", None),
            "trust graph (2,000 apps, collapsed)": ("GET", f"/console/tenants/{tenant}/graph", None),
            "trust graph, searched": ("GET", f"/console/tenants/{tenant}/graph?q=svc-01234", None),
            "application": ("GET", f"/console/tenants/{tenant}/apps/{app_id}", None),
            "refusals (2,000 stored)": ("GET", "/console/refusals?hours=24", None),
            "explain box": ("GET", "/console/explain", None),
            "explain a token": (
                "POST",
                "/console/explain",
                {"csrf": csrf, "app": f"{tenant}/{app_id}", "token": "a.b.c"},
            ),
            "API docs page": ("GET", "/admin/docs", None),
        }
        times: dict[str, float] = {}
        for name, (method, path, data) in pages.items():
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.request(method, path, data=data)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code in (200, 400), (name, response.status_code)
            times[name] = statistics.median(samples)
        return times


def run(apps: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        authority = Authority.open(load_authority_settings(data_dir=Path(tmp), port=0))
        document = _document(apps)
        apply(authority.admin, parse_trust_document(document))
        tenant = document["tenants"][0]["id"]
        app_id = document["tenants"][0]["applications"][1235]["appId"]
        now = time.time()
        for i in range(2000):
            authority.refusals.record(
                Refusal(
                    now - i * 30,
                    700213,
                    "invalid_client",
                    tenant,
                    app_id,
                    "presented subject 'x'",
                    new_id(),
                    new_id(),
                    "/t",
                )
            )
        authority.refusals.flush()
        try:
            return asyncio.run(_measure(authority, tenant, app_id, rounds))
        finally:
            asyncio.run(authority.aclose())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    times = run(args.apps, args.rounds)
    print(
        f"console server time, {args.apps:,} applications (median of {args.rounds}; target under {LIMIT_MS:.0f} ms)"
    )
    for name, ms in times.items():
        print(f"  {name:<38} {ms:7.1f} ms  {'ok' if ms < LIMIT_MS else 'OVER'}")


if __name__ == "__main__":
    main()
