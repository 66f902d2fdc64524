"""The console's routes, mounted by the authority at ``/console``."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from keyless.authority._service import Authority
from keyless.authority.http.console.docs import SecurityHeaders
from keyless.authority.http.console.pages import Pages
from keyless.errors import NotFound

__all__ = ["create_console"]

STATIC = Path(__file__).parent / "static"


def create_console(authority: Authority) -> ASGIApp:
    pages = Pages(authority)
    guard = pages.signed_in

    async def not_found(request: Request, exc: Exception) -> Response:
        session = await pages.session_of(request)
        if session is None:  # nothing, not even what exists, is told to the signed-out
            return pages.message(request, 404, "Not found", "Sign in first.", None)
        return pages.message(
            request, 404, "Not found", str(exc) if isinstance(exc, NotFound) else "No such page.", session
        )

    async def root(request: Request) -> Response:
        return await guard(pages.overview)(request)

    tenant_app = "/tenants/{tenant}/apps/{app}"
    app = Starlette(
        routes=[
            Route("/", root),
            Route("/sign-in", pages.sign_in_form, methods=["GET"]),
            Route("/sign-in", pages.sign_in, methods=["POST"]),
            Route("/sign-out", guard(pages.sign_out), methods=["POST"]),
            Route("/overview", guard(pages.overview)),
            Route("/tenants/{tenant}/graph", guard(pages.graph)),
            Route(tenant_app, guard(pages.application)),
            Route(tenant_app + "/fics", guard(pages.create_fic), methods=["POST"]),
            Route(tenant_app + "/fics/{fic}", guard(pages.update_fic), methods=["POST"]),
            Route(tenant_app + "/fics/{fic}/delete", guard(pages.delete_fic), methods=["POST"]),
            Route(tenant_app + "/roles", guard(pages.assign_role), methods=["POST"]),
            Route(tenant_app + "/roles/{assignment}/delete", guard(pages.remove_role), methods=["POST"]),
            Route("/refusals", guard(pages.refusals)),
            Route("/refusals/{trace}", guard(pages.refusal)),
            Route("/explain", guard(pages.explain_form), methods=["GET"]),
            Route("/explain", guard(pages.explain), methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={404: not_found, NotFound: not_found},
    )
    return SecurityHeaders(app)
