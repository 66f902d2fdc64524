"""The console's security headers, and the admin API's docs page with self-hosted Swagger UI."""

from __future__ import annotations

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONSOLE_CSP", "DOCS_CSP", "SecurityHeaders", "docs_page"]

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = CONSOLE_CSP  # the API docs page: Swagger UI from this server, its init script a file too


class SecurityHeaders:
    """Every response: the CSP, no framing, no referrer, no sniffing; pages are never cached."""

    def __init__(self, app: ASGIApp, csp: str = CONSOLE_CSP) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += self.headers
                if not is_static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def docs_page(openapi_url: str, static_root: str) -> HTMLResponse:
    """The admin API's docs (Swagger UI), every asset from this server (works offline)."""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keyless admin API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="{static_root}/swagger/swagger-ui.css"></head>
<body><main><div id="swagger-ui" data-openapi="{openapi_url}"></div></main>
<script src="{static_root}/swagger/swagger-ui-bundle.js"></script>
<script src="{static_root}/docs.js"></script></body></html>"""
    headers = {
        "cache-control": "no-store",
        "content-security-policy": DOCS_CSP,
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }
    return HTMLResponse(body, headers=headers)
