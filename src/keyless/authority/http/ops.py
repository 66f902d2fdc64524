"""Operations endpoints: ``/healthz`` (liveness) and ``/readyz`` (readiness).

``/healthz`` answers from memory: the process serves requests. ``/readyz`` says whether this node
should receive traffic, checking in order:

1. ``store``: the database answers one round trip within ``KEYLESS_READY_STORE_TIMEOUT`` (the
   probe runs off the event loop; concurrent probes share one);
2. ``directory``: the in-process directory snapshot was confirmed against the store less than
   ``KEYLESS_READY_MAX_SNAPSHOT_AGE`` seconds ago (a node that cannot refresh serves stale data);
3. ``signingKeys``: every tenant has a signing key that signs now.

200 when all pass, 503 otherwise; the body lists each check with ``ok`` and, when it fails, the
reason.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from keyless.authority.http.errors import NO_STORE, json_response
from keyless.errors import StoreUnavailable

if TYPE_CHECKING:
    from keyless.authority._service import Authority

__all__ = ["health", "ready"]

Check = dict[str, Any]


def _authority(request: Request) -> Authority:
    authority: Authority = request.app.state.authority
    return authority


async def health(request: Request) -> Response:
    directory = _authority(request).directory()
    return json_response({"status": "ok", "revision": directory.revision}, 200, NO_STORE)


class _Probe:
    """One store ping at a time per authority; callers arriving meanwhile share its outcome."""

    def __init__(self) -> None:
        self._running: weakref.WeakKeyDictionary[Authority, asyncio.Task[str | None]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, authority: Authority) -> str | None:
        """None when the store answered in time, else why not."""
        task = self._running.get(authority)
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._running[authority] = asyncio.ensure_future(self._ping(authority))
        return await asyncio.shield(task)

    @staticmethod
    async def _ping(authority: Authority) -> str | None:
        timeout = authority.settings.ready_store_timeout
        try:
            with anyio.fail_after(timeout):
                await anyio.to_thread.run_sync(authority.store.ping, abandon_on_cancel=True)
        except TimeoutError:
            return f"the database did not answer within {timeout:g} s"
        except StoreUnavailable as exc:
            return exc.reason
        return None


_probe = _Probe()


async def _store_check(authority: Authority) -> Check:
    reason = await _probe(authority)
    return {"ok": reason is None, **({"reason": reason} if reason else {})}


def _directory_check(authority: Authority) -> Check:
    age = authority.cache.age
    bound = authority.settings.ready_max_snapshot_age
    check: Check = {
        "ok": age < bound,
        "revision": authority.directory().revision,
        "ageSeconds": round(age, 1),
    }
    if age >= bound:
        check["reason"] = f"the directory snapshot was last confirmed {age:.0f} s ago (bound {bound:g} s)"
    return check


def _signing_check(authority: Authority) -> Check:
    now = authority.clock()
    without = [t.id for t in authority.directory().all_tenants() if t.signer(now) is None]
    if not without:
        return {"ok": True}
    shown = ", ".join(sorted(without)[:5]) + (" ..." if len(without) > 5 else "")
    return {"ok": False, "reason": f"{len(without)} tenant(s) have no active signing key: {shown}"}


async def ready(request: Request) -> Response:
    authority = _authority(request)
    checks = {
        "store": await _store_check(authority),
        "directory": _directory_check(authority),
        "signingKeys": _signing_check(authority),
    }
    ok = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    headers = dict(NO_STORE)
    if not ok:
        headers["Retry-After"] = str(max(1, math.ceil(authority.settings.cache_poll_interval)))
    return json_response(body, 200 if ok else 503, headers)
