"""Differential path test: for every tricky path, the rule the guard's policy applied and the route a
real upstream framework serves must be the same part of the site, or the guard must refuse the path.

The site has four parts, each a policy rule and a route: ``/public`` (anonymous), ``/admin``
(``allow: nobody``), ``/blobs`` (a role) and everything else (``default: authenticated``). A caller
with a reader token sends each path of the corpus; whenever the guard lets a request through, the
upstream's routing must land in the part the policy matched. Upstreams:

* Starlette (in-process, behind ``GuardMiddleware``): routes on the decoded path, case-sensitively;
* Werkzeug's router (in-process, the guard's gate deciding): merges slashes;
* a stdlib WSGI app behind the proxy over real sockets (``wsgiref``), routing as servlet containers
  and IIS do: ``;`` parameters stripped, empty and dot segments resolved, ``\\`` as ``/``, decoded
  again, Unicode-normalised; and, for ``case_insensitive_paths``, ignoring case as ASP.NET Core does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests._support.path_readings import PARTS, part_of_path, resolve_like_a_servlet_container
from tests._support.wsgi_upstream import StartResponse, raw_request, serve_wsgi
from tests.guard.conftest import AUDIENCE, guard_config, serve
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.routing import Rule as WerkzeugRule

from keyless.guard import GuardMiddleware, GuardProxy, Policy, Verifier, policy_from_mapping
from keyless.guard._gate import Gate

POLICY: dict[str, Any] = {
    "anonymous": ["/public", "/public/**"],
    "rules": [
        {"paths": ["/admin", "/admin/**"], "allow": "nobody"},
        {"paths": ["/blobs", "/blobs/**"], "any_of": ["Blob.Read"]},
    ],
    "default": "authenticated",
}

_TRICKS = [
    "admin/x",
    "admin",
    "admin/",
    "/admin/x",
    "./admin/x",
    "../admin/x",
    "..;/admin/x",
    "..;x=1/admin/x",
    ".;/admin/x",
    "%2e%2e;/admin/x",
    "..%3b/admin/x",
    "%2e%2e/admin/x",
    "%2E./admin/x",
    ".%2e/admin/x",
    "%252e%252e/admin/x",
    "%25252e%25252e/admin/x",
    "..%2fadmin/x",
    "..%5cadmin/x",
    "..\\admin/x",
    "%EF%BC%8E%EF%BC%8E/admin/x",
    "%C0%AE%C0%AE/admin/x",
    "admin;x/y",
    "admin;/x",
    "admin%3bx/y",
    "admin%20/x",
    "admin%09/x",
    "admin%00/x",
    "admin%2520/x",
    "admin%2fx",
    "admin%252fx",
    "admin%5cx",
    "Admin/x",
    "ADMIN",
    "aDmIn/x",
    "%61dmin/x",
    "%2561dmin/x",
    "%41dmin/x",
    "adm%C4%B1n/x",
    "adm%C3%ACn/x",
    "%EF%BD%81dmin/x",
    "x/../admin/x",
    "x/%2e%2e/admin/x",
    "x//../admin/x",
    "a%20b",
    "caf%C3%A9",
    "report.v2..final",
    ".well-known/openid-configuration",
]
CORPUS = sorted({base + trick for base in ("/", "/public/", "/blobs/", "/other/", "//") for trick in _TRICKS})


def _part_of_rule(policy: Policy, path: str) -> str:
    rule = policy.match("GET", path)
    if rule is None:
        return "other"
    return rule.patterns[0].split("/")[1]


# -- upstreams ------------------------------------------------------------------------------------------


async def _starlette_part(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.scope["endpoint"].__name__.removesuffix("_part"))


def _starlette_app(verifier: Verifier) -> Starlette:
    def named(part: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> PlainTextResponse:
            return PlainTextResponse(part)

        return endpoint

    routes = [Route(f"/{p}", named(p)) for p in PARTS] + [
        Route(f"/{p}/{{rest:path}}", named(p)) for p in PARTS
    ]
    app = Starlette(routes=[*routes, Route("/{rest:path}", named("other"))])
    app.add_middleware(GuardMiddleware, verifier=verifier)
    return app


async def _call_asgi(app: Any, raw: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, str]:
    """One request straight into the ASGI app, with the path as uvicorn would decode it."""
    raw_path = raw.encode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw),
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"guarded"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("guarded", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = int(sent[0]["status"])
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    return status, body


_WERKZEUG = Map(
    [WerkzeugRule(f"/{p}", endpoint=p) for p in PARTS]
    + [WerkzeugRule(f"/{p}/<path:rest>", endpoint=p) for p in PARTS]
    + [WerkzeugRule("/<path:rest>", endpoint="other")]
)


def _werkzeug_part(raw: str) -> str | None:
    """Where Werkzeug routes the path (``PATH_INFO`` as a WSGI server decodes it), None if nowhere."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": unquote(raw, "latin-1"),
        "SCRIPT_NAME": "",
        "SERVER_NAME": "guarded",
        "SERVER_PORT": "80",
        "HTTP_HOST": "guarded",
        "wsgi.url_scheme": "http",
    }
    try:
        endpoint, _ = _WERKZEUG.bind_to_environ(environ).match()
    except HTTPException:  # 404, or a redirect to the merged path (which comes back through the guard)
        return None
    return str(endpoint)


def _normalising_upstream(ignore_case: bool) -> Callable[[dict[str, Any], StartResponse], list[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        resolved = resolve_like_a_servlet_container(environ["PATH_INFO"], ignore_case=ignore_case)
        body = json.dumps({"part": part_of_path(resolved, ignore_case=ignore_case)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


# -- the tests ------------------------------------------------------------------------------------------


def _reader(issuer: TestIssuer) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {issuer.mint(aud=AUDIENCE, roles=['Blob.Read'])}".encode())]


async def test_starlette_serves_every_path_the_middleware_allows_in_the_part_the_policy_matched(
    issuer: TestIssuer,
) -> None:
    async with Verifier(guard_config(issuer, policy=POLICY)) as verifier:
        app = _starlette_app(verifier)
        policy = verifier.config.policy
        headers = _reader(issuer)
        disagreements = []
        allowed = 0
        for raw in CORPUS:
            status, served = await _call_asgi(app, raw, headers)
            if status == 200:
                allowed += 1
                if served != _part_of_rule(policy, unquote(raw)):
                    disagreements.append((raw, _part_of_rule(policy, unquote(raw)), served))
    assert disagreements == []
    assert allowed > 30  # ordinary and harmless spellings still pass


@pytest.mark.parametrize("case_insensitive", [False, True])
async def test_werkzeug_routes_every_path_the_guard_allows_to_the_part_the_policy_matched(
    verifier: Verifier, issuer: TestIssuer, case_insensitive: bool
) -> None:
    policy = policy_from_mapping({**POLICY, "case_insensitive_paths": case_insensitive})
    gate = Gate(verifier, policy)
    disagreements = []
    for raw in CORPUS:
        outcome = await gate.check("GET", unquote(raw), _reader(issuer), raw.encode("latin-1"))
        served = _werkzeug_part(raw)
        if outcome.allowed and served is not None and served != _part_of_rule(policy, unquote(raw)):
            disagreements.append((raw, _part_of_rule(policy, unquote(raw)), served))
    assert disagreements == []


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_a_normalising_wsgi_upstream_behind_the_proxy_agrees_with_the_policy(
    issuer: TestIssuer, case_insensitive: bool
) -> None:
    config = guard_config(issuer, policy={**POLICY, "case_insensitive_paths": case_insensitive})
    token = _reader(issuer)[0][1].decode()
    disagreements = []
    refused = 0
    with serve_wsgi(_normalising_upstream(case_insensitive)) as upstream_url:
        proxy = GuardProxy(upstream_url, config=config)
        with serve(proxy, proxy_headers=False) as guard_url:
            for raw in CORPUS:
                status, body = raw_request(guard_url, raw, [("Authorization", token)])
                if status != 200:
                    refused += 1
                    continue
                served = json.loads(body)["part"]
                if served != _part_of_rule(config.policy, unquote(raw)):
                    disagreements.append((raw, _part_of_rule(config.policy, unquote(raw)), served))
    assert disagreements == []
    assert 0 < refused < len(CORPUS)


async def test_the_differential_check_finds_a_case_insensitive_upstream_without_the_option(
    verifier: Verifier, issuer: TestIssuer
) -> None:
    """The check has teeth: a case-insensitive upstream behind a case-sensitive policy disagrees."""
    policy = policy_from_mapping(POLICY)
    gate = Gate(verifier, policy)
    disagreements = []
    for raw in CORPUS:
        outcome = await gate.check("GET", unquote(raw), _reader(issuer), raw.encode("latin-1"))
        resolved = resolve_like_a_servlet_container(unquote(raw, "latin-1"), ignore_case=True)
        if outcome.allowed and part_of_path(resolved, ignore_case=True) != _part_of_rule(
            policy, unquote(raw)
        ):
            disagreements.append(raw)
    assert "/Admin/x" in disagreements and "/ADMIN" in disagreements
