"""A keyless-guarded test service over HTTPS on localhost: a small Starlette app behind keyless's
real ``GuardMiddleware`` (trusting the test authority, audience = the resource app, role
``Blob.Read`` required), answering a few Azure Blob Storage calls and ``/whoami``."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests._support.authority_server import Federation, RunningAuthority

from keyless.guard import GuardMiddleware, config_from_mapping
from keyless.tls import ensure_local_tls


@dataclass
class GuardedService:
    base_url: str
    callers: list[dict[str, Any]] = field(default_factory=list)  # identity of every allowed request


def _app(service: GuardedService, authority: RunningAuthority, federation: Federation) -> Any:
    def remember(request: Request) -> dict[str, Any]:
        identity = request.state.identity
        seen = {"app_id": identity.app_id, "roles": list(identity.roles), "tenant_id": identity.tenant_id}
        service.callers.append(seen)
        return seen

    async def account_or_whoami(request: Request) -> Response:
        seen = remember(request)
        if (
            request.query_params.get("comp") == "properties"
            and request.query_params.get("restype") == "account"
        ):
            return Response(
                status_code=200,
                headers={
                    "x-ms-sku-name": "Standard_LRS",
                    "x-ms-account-kind": "StorageV2",
                    "x-ms-is-hns-enabled": "false",
                    "x-ms-version": request.headers.get("x-ms-version", "2025-01-05"),
                    "x-ms-request-id": "keyless-test",
                    "x-ms-client-request-id": request.headers.get("x-ms-client-request-id", ""),
                },
            )
        return JSONResponse(seen)

    config = config_from_mapping(
        {
            "issuers": [{"kind": "keyless", "url": authority.base_url, "tenants": [federation.tenant_id]}],
            "audiences": [federation.resource.app_id, "api://blob-api"],
            "ca_bundle": str(authority.ca_file),
            "policy": {"default": "deny", "rules": [{"path": "/**", "any_of": ["Blob.Read"]}]},
        }
    )
    app = Starlette(routes=[Route("/", account_or_whoami), Route("/whoami", account_or_whoami)])
    app.add_middleware(GuardMiddleware, config=config)
    return app


@contextlib.contextmanager
def run_guarded_service(authority: RunningAuthority, federation: Federation) -> Iterator[GuardedService]:
    """Serve it with the authority's own localhost certificate (same local CA)."""
    tls = ensure_local_tls(authority.data_dir)
    # IPPROTO_TCP: asyncio then sets TCP_NODELAY (no ~40 ms Nagle / delayed-ACK stall per answer)
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        service = GuardedService(f"https://localhost:{sock.getsockname()[1]}")
        server = uvicorn.Server(
            uvicorn.Config(
                _app(service, authority, federation),
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                log_level="warning",
                loop="asyncio",
                lifespan="on",
                timeout_graceful_shutdown=1,
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 15
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the guarded service did not start")
                time.sleep(0.01)
            yield service
        finally:
            server.should_exit = True
            thread.join(10)
