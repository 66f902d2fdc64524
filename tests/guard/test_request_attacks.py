"""Attacks through the request line and headers, against the proxy (over real sockets, to a real
``wsgiref`` upstream that shows its CGI environ) and the middleware (a Starlette app under uvicorn):
spoofed identity headers in CGI-equivalent spellings, dot segments and path parameters, paths an
upstream reads differently from the policy, unverified tokens on anonymous paths, override headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests._support.oidc_issuer import TestIssuer
from tests._support.wsgi_upstream import StartResponse, environ_echo, raw_request, serve_wsgi
from tests.guard.conftest import AUDIENCE, guard_config, serve

from keyless.guard import GuardMiddleware, GuardProxy, Verifier
from keyless.guard._gate import Gate

POLICY: dict[str, Any] = {
    "anonymous": ["/public/**"],
    "rules": [
        {"path": "/login", "allow": "anonymous", "forward_authorization": True},
        {"path": "/admin/**", "allow": "nobody"},
        {"path": "/blobs/**", "any_of": ["Blob.Read"]},
    ],
    "default": "authenticated",
}
SPOOFED = [
    ("X_Keyless_Roles", "Blob.Write"),
    ("X_Keyless_Email", "boss@corp"),
    ("x_keyless_subject", "admin"),
    ("X.Keyless.Tenant.Id", "someone-else"),
    ("X-Keyless-Object_Id", "0000"),
]
OVERRIDES = [
    ("Forwarded", "for=10.0.0.1;proto=https;host=admin.internal"),
    ("X-Original-URL", "/admin/x"),
    ("X-Rewrite-URL", "/admin/x"),
    ("X-HTTP-Method-Override", "DELETE"),
    ("X-Real-IP", "10.0.0.1"),
    ("X-Forwarded-Prefix", "/internal"),
    ("X-Forwarded-Port", "8443"),
    ("X_Original_URL", "/admin/x"),
]
OVERRIDE_ENVIRON = {
    "HTTP_FORWARDED",
    "HTTP_X_ORIGINAL_URL",
    "HTTP_X_REWRITE_URL",
    "HTTP_X_HTTP_METHOD_OVERRIDE",
    "HTTP_X_REAL_IP",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_PORT",
}


class _Counting:
    """``environ_echo`` that counts the requests it served (a refused request must never arrive)."""

    def __init__(self) -> None:
        self.served = 0

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        self.served += 1
        return environ_echo(environ, start_response)


@contextmanager
def _proxy_to_wsgi(issuer: TestIssuer, **config: Any) -> Iterator[tuple[str, _Counting]]:
    upstream = _Counting()
    with serve_wsgi(upstream) as upstream_url:
        proxy = GuardProxy(upstream_url, config=guard_config(issuer, policy=POLICY, **config))
        with serve(proxy, proxy_headers=False) as guard_url:  # as `keyless guard` serves it
            yield guard_url, upstream


def _environ(guard_url: str, target: str, headers: list[tuple[str, str]]) -> dict[str, Any]:
    status, body = raw_request(guard_url, target, headers)
    assert status == 200, body
    seen: dict[str, Any] = json.loads(body)
    return seen


def _reader(issuer: TestIssuer) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {issuer.mint(aud=AUDIENCE, sub='reader', roles=['Blob.Read'])}")]


# -- identity headers -----------------------------------------------------------------------------------


def test_identity_headers_in_cgi_spellings_never_reach_a_wsgi_upstream(issuer: TestIssuer) -> None:
    with _proxy_to_wsgi(issuer) as (guard_url, _):
        anonymous = _environ(guard_url, "/public/x", SPOOFED)
        verified = _environ(guard_url, "/blobs/a", SPOOFED + _reader(issuer))
    assert not [key for key in anonymous["headers"] if "KEYLESS" in key]
    keyless = {key: value for key, value in verified["headers"].items() if "KEYLESS" in key}
    assert keyless["HTTP_X_KEYLESS_ROLES"] == "Blob.Read"
    assert keyless["HTTP_X_KEYLESS_SUBJECT"] == "reader"
    assert "HTTP_X_KEYLESS_EMAIL" not in keyless
    assert "HTTP_X_KEYLESS_TENANT_ID" not in keyless
    assert set(keyless) <= {"HTTP_X_KEYLESS_ROLES", "HTTP_X_KEYLESS_SUBJECT", "HTTP_X_KEYLESS_ISSUER"}


# -- paths ----------------------------------------------------------------------------------------------

DOT_SEGMENTS = [
    "/public/..;/admin/x",
    "/public/%2e%2e;/admin/x",
    "/public/..%3b/admin/x",
    "/public/%2e%2e/admin/x",
    "/public/%252e%252e/admin/x",
    "/public/.;/../admin/x",
]
ESCAPES = ["//admin/x", "/admin;x/y", "/admin%20/x", "/admin%09/x", "/admin%2fx", "/admin%5cx"]


def test_dot_segments_in_any_encoding_are_refused_before_the_upstream(issuer: TestIssuer) -> None:
    with _proxy_to_wsgi(issuer) as (guard_url, upstream):
        for target in DOT_SEGMENTS:
            status, body = raw_request(guard_url, target)
            assert status == 400, target
            assert json.loads(body)["code"] == "bad_path"
        for target in ESCAPES:
            assert raw_request(guard_url, target, _reader(issuer))[0] == 400, target
        assert raw_request(guard_url, "/admin/x", _reader(issuer))[0] == 403
        assert upstream.served == 0


# (path, case_insensitive_paths, status for a reader token): 400 refused as unsafe, 403 by the
# `allow: nobody` rule on /admin/**, 200 allowed (default: authenticated).
POLICY_TABLE = [
    ("/admin/x", False, 403),
    ("//admin/x", False, 400),
    ("/admin//x", False, 400),
    ("/admin;x/y", False, 400),
    ("/admin%3bx/y", False, 400),
    ("/admin%20/x", False, 400),
    ("/admin%09/x", False, 400),
    ("/admin%2f/x", False, 400),
    ("/public/..;/admin/x", False, 400),
    ("/public/%2e%2e/admin/x", False, 400),
    ("/Admin/x", False, 200),  # a case-sensitive upstream serves /Admin/x, not /admin/x
    ("/Admin/x", True, 403),
    ("/ADMIN", True, 403),
    ("/adm%C4%B1n/x", True, 400),  # dotless i: ASP.NET upper-cases it to I
    ("/adm%C4%B1n/x", False, 200),
    ("/blobs/a", True, 200),
    ("/other", True, 200),
]


@pytest.mark.parametrize(("raw", "case_insensitive", "status"), POLICY_TABLE)
async def test_policy_table_for_paths_an_upstream_could_read_differently(
    verifier: Verifier, issuer: TestIssuer, raw: str, case_insensitive: bool, status: int
) -> None:
    from urllib.parse import unquote

    from keyless.guard import policy_from_mapping

    policy = policy_from_mapping({**POLICY, "case_insensitive_paths": case_insensitive})
    gate = Gate(verifier, policy)
    headers = [(b"authorization", f"Bearer {issuer.mint(aud=AUDIENCE, roles=['Blob.Read'])}".encode())]
    outcome = await gate.check("GET", unquote(raw), headers, raw.encode())
    assert outcome.status == status, outcome.reason


# -- tokens on anonymous paths --------------------------------------------------------------------------


def test_unverified_tokens_are_stripped_on_anonymous_paths(issuer: TestIssuer) -> None:
    forged = [("Authorization", "Bearer forged"), ("X-Serverless-Authorization", "Bearer forged")]
    with _proxy_to_wsgi(issuer) as (guard_url, _):
        anonymous = _environ(guard_url, "/public/x", forged)
        login = _environ(guard_url, "/login", forged)
        variant = _environ(
            guard_url, "/blobs/a", [("X_Serverless_Authorization", "Bearer x"), *_reader(issuer)]
        )
    assert "HTTP_AUTHORIZATION" not in anonymous["headers"]
    assert "HTTP_X_SERVERLESS_AUTHORIZATION" not in anonymous["headers"]
    assert login["headers"]["HTTP_AUTHORIZATION"] == "Bearer forged"  # forward_authorization: true
    assert "HTTP_X_SERVERLESS_AUTHORIZATION" not in login["headers"]
    assert "HTTP_X_SERVERLESS_AUTHORIZATION" not in variant["headers"]
    assert "HTTP_AUTHORIZATION" not in variant["headers"]  # the verified token is stripped as before


# -- override and forwarding headers --------------------------------------------------------------------


def test_override_headers_are_dropped_and_the_guard_sets_its_forwarding_headers(issuer: TestIssuer) -> None:
    claims = [
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "admin.internal"),
        ("X_Forwarded_Host", "x"),
    ]
    with _proxy_to_wsgi(issuer) as (guard_url, _):
        seen = _environ(guard_url, "/public/x", OVERRIDES + claims)["headers"]
    assert not OVERRIDE_ENVIRON & seen.keys()
    assert seen["HTTP_X_FORWARDED_PROTO"] == "http"
    assert seen["HTTP_X_FORWARDED_HOST"] == guard_url.removeprefix("http://")
    assert seen["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"


def test_allowed_override_headers_pass_in_their_canonical_spelling_only(issuer: TestIssuer) -> None:
    sent = [*OVERRIDES, ("X_Forwarded_Port", "1")]
    with _proxy_to_wsgi(issuer, forward_override_headers=["X-Forwarded-Prefix", "X-Forwarded-Port"]) as (
        url,
        _,
    ):
        seen = _environ(url, "/public/x", sent)["headers"]
    assert seen["HTTP_X_FORWARDED_PREFIX"] == "/internal"
    assert seen["HTTP_X_FORWARDED_PORT"] == "8443"  # not "8443,1": the underscore copy was dropped
    assert not (OVERRIDE_ENVIRON - {"HTTP_X_FORWARDED_PREFIX", "HTTP_X_FORWARDED_PORT"}) & seen.keys()


# -- the middleware applies the same rules ---------------------------------------------------------------


async def _headers_seen(request: Request) -> JSONResponse:
    return JSONResponse(
        {"path": request.url.path, "headers": [k.decode() for k, _ in request.scope["headers"]]}
    )


def test_middleware_applies_the_same_path_and_header_rules(issuer: TestIssuer) -> None:
    app = Starlette(routes=[Route("/{rest:path}", _headers_seen)])
    app.add_middleware(GuardMiddleware, config=guard_config(issuer, policy=POLICY))
    forged = [("Authorization", "Bearer forged"), ("X-Serverless-Authorization", "Bearer forged")]
    with serve(app) as url:
        for target in DOT_SEGMENTS + ESCAPES:
            assert raw_request(url, target, _reader(issuer))[0] == 400, target
        status, body = raw_request(url, "/public/x", SPOOFED + OVERRIDES + forged)
        anonymous = json.loads(body)["headers"]
        login = json.loads(raw_request(url, "/login", forged)[1])["headers"]
        verified = json.loads(raw_request(url, "/blobs/a", SPOOFED + _reader(issuer))[1])["headers"]
    assert status == 200
    assert not [
        h for h in anonymous if "keyless" in h or h in ("authorization", "x-serverless-authorization")
    ]
    assert not [h for h in anonymous if h.replace("_", "-") in {n.lower() for n, _ in OVERRIDES}]
    assert "authorization" in login
    assert "authorization" in verified  # the app may read the token it was given
    assert not [h for h in verified if "keyless" in h]
