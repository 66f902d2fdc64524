"""The token endpoint's request reading on hostile input: arbitrary bodies, content types,
Basic headers and form fields (the real parameter names with arbitrary values, and arbitrary
names) never produce a 500; every answer is Entra's error JSON or a token."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._support.authority_server import run_authority

from keyless.authority.model import AppRole, new_id

PARAMETERS = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "resource",
]
GRANT_TYPES = ["client_credentials", "password", "", "client_credentials\n"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "multipart/form-data; boundary=x",
    "",
]


class Target:
    def __init__(self, client: httpx.Client, tenant: str, client_id: str) -> None:
        self.client, self.tenant, self.client_id = client, tenant, client_id


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data_dir: Path = tmp_path_factory.mktemp("form-fuzz")
    with run_authority(data_dir) as running:
        admin = running.admin
        tenant = admin.create_tenant("Fuzz", domains=["fuzz.example"])
        resource = admin.create_application(
            tenant.id, "api", identifier_uris=["api://fuzz"], app_roles=[AppRole(id=new_id(), value="R")]
        )
        caller = admin.create_application(tenant.id, "caller")
        admin.create_fic(
            caller, name="fuzz-fic", issuer="https://issuer.example", subject="s", audiences=["x"]
        )
        admin.assign_role(caller, resource, "R")
        with httpx.Client(base_url=running.base_url, verify=running.ssl_context(), timeout=10) as client:
            yield Target(client, tenant.id, caller.app_id)


def values(target_client_id: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=80),
        st.sampled_from([target_client_id, ASSERTION_TYPE, "api://fuzz/.default", *GRANT_TYPES]),
        st.text(alphabet="eyJ0123456789abcdefABCDEF._-", max_size=300),  # JWT-shaped noise
    )


@st.composite
def requests(draw: st.DrawFn, client_id: str) -> tuple[str, bytes, dict[str, str]]:
    path_tenant = draw(st.sampled_from(["TENANT", "fuzz.example", "common", "%0A", "x" * 300]))
    fields = draw(
        st.lists(
            st.tuples(st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=20)), values(client_id)),
            max_size=8,
        )
    )
    raw = draw(st.booleans())
    body = draw(st.binary(max_size=400)) if raw else urllib.parse.urlencode(fields).encode()
    headers = {"content-type": draw(st.sampled_from(CONTENT_TYPES) | st.text(max_size=40))}
    if draw(st.booleans()):
        userpass = draw(st.binary(max_size=60))
        headers["authorization"] = (
            draw(st.sampled_from(["Basic ", "Bearer ", "basic ", ""]) | st.text(max_size=10))
            + base64.b64encode(userpass).decode()
        )
    # Only what an HTTP client can send: printable ASCII, no surrounding whitespace.
    return path_tenant, body, {k: v.strip() for k, v in headers.items() if v.isprintable() and v.isascii()}


def test_no_token_request_answers_500(target: Target) -> None:
    @given(request=requests(target.client_id), v2=st.booleans())
    def run(request: tuple[str, bytes, dict[str, str]], v2: bool) -> None:
        tenant, body, headers = request
        tenant = target.tenant if tenant == "TENANT" else tenant
        path = f"/{tenant}/oauth2/{'v2.0/' if v2 else ''}token"
        response = target.client.post(path, content=body, headers=headers)
        assert response.status_code < 500, (path, body[:200], headers, response.text[:300])
        answer = response.json()
        assert "access_token" in answer or answer["error"], answer

    run()
