"""Trust rules at scale: federated-credential matching, token issuance and the directory load with
up to 100,000 credentials on one application and issuer.

    .venv/bin/python -m bench.bench_matching [--quick] [--postgres URL]

1. Matching time per request (issuer lookup + subject/expression + audience + condition, the
   token endpoint's own ``match_fic``) with 1, 20, 1,000 and 100,000 exact credentials: it should
   stay flat (within 10% of the 1-credential figure).
2. 10,000 flexible credentials spread over 1,000 owners (``repo:ownerN/appM:*``): under 50 us;
   then the same with a CEL condition on every credential.
3. In-process token issuance (the token service, one core, RS256 sign + verify) with 100,000
   credentials on the caller against 20: within 5%. Rounds alternate to share the machine's drift;
   the raw ``cryptography`` ceiling of the same run is printed for scale.
4. Directory snapshot load with 100,000 credentials on SQLite (and PostgreSQL when reachable):
   under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from tests._services import POSTGRES_URL_DEFAULT, fresh_postgres_schema
from tests._support.authority_server import Federation, seed_federation
from tests._support.oidc_issuer import TestIssuer
from tests.authority.store.test_conformance import a_tenant, an_application

from bench._ceiling import measure_ceiling
from keyless.authority._service import Authority
from keyless.authority.directory.signing import KeyManager
from keyless.authority.directory.snapshot import load_directory
from keyless.authority.http.protocol import TokenRequest, resolve_tenant
from keyless.authority.model import FederatedIdentityCredential, new_id
from keyless.authority.store import SqlStore
from keyless.authority.store._mapping import fic_row
from keyless.authority.store._tables import federated_identity_credentials
from keyless.authority.token.fic_index import FicIndex
from keyless.authority.token.matching import match_fic
from keyless.config import load_authority_settings
from keyless.errors import OAuthError
from keyless.jose import KeyEncryptionKey

GITHUB = "https://token.actions.githubusercontent.com"
AUDIENCES = ["api://AzureADTokenExchange"]
CONDITION = "claims.repository_owner.startsWith('owner') && claims.ref.startsWith('refs/heads/')"


def _exact(n: int, app: str = "a", issuer: str = GITHUB) -> list[FederatedIdentityCredential]:
    return [
        FederatedIdentityCredential(
            new_id(), app, f"exact-{i}", issuer, f"repo:owner{i}/app:ref:refs/heads/main"
        )
        for i in range(n)
    ]


def _flexible(
    n: int, owners: int, condition: str | None = None, app: str = "a"
) -> list[FederatedIdentityCredential]:
    return [
        FederatedIdentityCredential(
            new_id(),
            app,
            f"flex-{i}",
            GITHUB,
            None,
            claims_matching_expression=f"claims['sub'] matches 'repo:owner{i % owners}/app{i // owners}:*'",
            condition=condition,
        )
        for i in range(n)
    ]


def _per_call_us(fn: Callable[[], object], minimum: float = 0.5) -> float:
    """The best of five timed batches, in microseconds per call."""
    fn()
    best = float("inf")
    for _ in range(5):
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < minimum / 5:
            for _ in range(200):
                fn()
            count += 200
        best = min(best, elapsed / count * 1e6)
    return best


def _matcher(fics: list[FederatedIdentityCredential], claims: dict[str, Any]) -> Callable[[], object]:
    index = FicIndex.build(fics)

    def one() -> object:
        candidates = index.issuer(GITHUB)
        assert candidates is not None
        return match_fic(candidates, sub=claims["sub"], audiences=AUDIENCES, claims=claims)

    return one


def _refuser(fics: list[FederatedIdentityCredential]) -> Callable[[], object]:
    """A token of a subject no credential names, the attacker's cheapest request."""
    index = FicIndex.build(fics)
    claims = {"sub": "repo:mallory/app:ref:refs/heads/main"}

    def one() -> object:
        candidates = index.issuer(GITHUB)
        assert candidates is not None
        try:
            match_fic(candidates, sub=claims["sub"], audiences=AUDIENCES, claims=claims)
        except OAuthError as exc:
            return exc
        raise AssertionError("matched")

    return one


def matching(quick: bool) -> dict[str, Any]:
    exact: dict[int, float] = {}
    sizes = (1, 20, 1_000) if quick else (1, 20, 1_000, 100_000)
    for n in sizes:
        fics = _exact(n)
        claims = {"sub": fics[-1].subject}  # the last one: no scan would find it early
        exact[n] = _per_call_us(_matcher(fics, claims))
    refused = _refuser(fics)
    refused_us = _per_call_us(refused)
    claims = {
        "sub": "repo:owner742/app7:ref:refs/heads/main",
        "repository_owner": "owner742",
        "ref": "refs/heads/main",
    }
    built = time.perf_counter()
    flexible = _matcher(_flexible(10_000, 1_000), claims)
    build_s = time.perf_counter() - built
    flexible_us = _per_call_us(flexible)
    with_condition_us = _per_call_us(_matcher(_flexible(10_000, 1_000, CONDITION), claims))
    return {
        "exact": exact,
        "refused_us": refused_us,
        "flexible_us": flexible_us,
        "condition_us": with_condition_us,
        "index_s": build_s,
    }


def _bulk_fics(store: SqlStore, fics: list[FederatedIdentityCredential]) -> None:
    with store.engine.begin() as conn:
        for start in range(0, len(fics), 5_000):
            conn.execute(
                insert(federated_identity_credentials), [fic_row(f) for f in fics[start : start + 5_000]]
            )


def snapshot_load(url: str, credentials: int) -> float:
    store = SqlStore.from_url(url)
    try:
        tenant = store.create_tenant(a_tenant(max_fics_per_app=credentials))
        app = store.create_application(an_application(tenant))
        half = credentials // 2
        _bulk_fics(store, _exact(half, app.object_id) + _flexible(half, 1_000, app=app.object_id))
        keys = KeyManager(store, KeyEncryptionKey.generate(), max_token_lifetime=3600)
        load_directory(store, keys)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            load_directory(store, keys)
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        store.close()


def _issuance_rps(
    data_dir: Path, issuer: TestIssuer, federation: Federation, claims: dict[str, Any], seconds: float
) -> float:
    authority = Authority.open(
        load_authority_settings(data_dir=data_dir, port=8443, dev_mode=True, allow_http_loopback_issuers=True)
    )
    assertion = issuer.mint(claims, lifetime=3600)
    form = {
        "grant_type": "client_credentials",
        "client_id": federation.client.app_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": federation.scope,
    }
    request = TokenRequest(resolve_tenant(authority.directory(), federation.tenant_id), 2, form, None)

    async def loop() -> float:
        await authority.tokens.issue(request)
        count, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(20):
                await authority.tokens.issue(request)
            count += 20
        await authority.aclose()
        return count / elapsed

    return asyncio.run(loop())


def issuance(credentials: int, seconds: float, rounds: int) -> dict[str, Any]:
    """Token issuance with 20 and with ``credentials`` credentials on the caller, alternating."""
    results: dict[str, list[float]] = {"small": [], "large": []}
    with TestIssuer() as issuer, tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for size, n in (("small", 20), ("large", credentials)):
            data_dir = Path(tmp) / size
            authority = Authority.open(
                load_authority_settings(
                    data_dir=data_dir, port=8443, dev_mode=True, allow_http_loopback_issuers=True
                )
            )
            federation = seed_federation(
                authority.admin, issuer=issuer.url, subject="repo:owner0/app:ref:refs/heads/main"
            )
            tenant = authority.admin.get_tenant(federation.tenant_id)
            authority.admin.update_tenant(dataclasses.replace(tenant, max_fics_per_app=credentials + 1))
            extra = _exact(n, federation.client.object_id, issuer.url)
            _bulk_fics(authority.store, extra[1:] if n > 1 else [])  # owner0 is the seeded one
            authority.store.close()
            dirs[size] = (data_dir, federation)
        claims = {"sub": "repo:owner0/app:ref:refs/heads/main"}
        for _ in range(rounds):
            for size in ("small", "large"):
                data_dir, federation = dirs[size]
                results[size].append(_issuance_rps(data_dir, issuer, federation, claims, seconds))
    small, large = statistics.median(results["small"]), statistics.median(results["large"])
    return {"small": small, "large": large, "ratio": large / small, "rounds": results}


def report(
    match: dict[str, Any], loads: dict[str, float], issued: dict[str, Any] | None, credentials: int
) -> str:
    base = match["exact"][1]
    lines = ["trust rules (federated credential matching)"]
    for n, us in match["exact"].items():
        lines.append(
            f"  {n:>7,} exact credentials on one issuer: {us:6.2f} us/request ({us / base:.2f}x the 1-credential figure)"
        )
    lines.append(
        f"  a refused subject, {max(match['exact']):,} credentials: {match['refused_us']:.2f} us/request"
    )
    lines.append(
        f"  10,000 flexible credentials over 1,000 owners: {match['flexible_us']:.2f} us/request (index built in {match['index_s'] * 1000:.0f} ms)"
    )
    lines.append(
        f"  the same with a CEL condition on every credential: {match['condition_us']:.2f} us/request"
    )
    for store, seconds in loads.items():
        lines.append(f"  directory load with {credentials:,} credentials on {store}: {seconds:.2f} s")
    if issued is not None:
        ceiling = measure_ceiling()
        lines.append(
            f"  in-process issuance, 1 core: {issued['small']:,.0f}/s with 20 credentials, {issued['large']:,.0f}/s with "
            f"{credentials:,} ({issued['ratio']:.1%}); ceiling 1 sign + 1 verify {ceiling.sign_and_verify_per_s:,.0f}/s"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Up to 1,000 credentials (a smoke run).")
    parser.add_argument("--postgres", default=POSTGRES_URL_DEFAULT)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    credentials = 1_000 if args.quick else 100_000
    match = matching(args.quick)
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        loads["SQLite"] = snapshot_load(f"sqlite:///{tmp}/keyless.db", credentials)
    try:
        with fresh_postgres_schema(args.postgres) as url:
            loads["PostgreSQL"] = snapshot_load(url, credentials)
    except Exception as exc:  # no server here: say so, measure the rest
        print(f"(PostgreSQL skipped: {exc})")
    issued = issuance(credentials, args.seconds, args.rounds)
    print(report(match, loads, issued, credentials))


if __name__ == "__main__":
    main()
