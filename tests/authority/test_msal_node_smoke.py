"""Smoke test of the @azure/msal-node harness and its TLS plumbing, against a tiny stub authority.

Only the harness is under test here (stdin/stdout contract, NODE_EXTRA_CA_CERTS, knownAuthorities,
secrets, assertions and certificates reaching the wire); the real authority is tested elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests._support.node import msal_node_acquire

from keyless.tls import TLSFiles, ensure_local_tls

pytestmark = [pytest.mark.node, pytest.mark.timeout(300)]  # the first run may npm ci

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
SECRET = "s3cret"
ASSERTION = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzbW9rZSJ9.c2lnbmF0dXJl"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPES = ["api://keyless-smoke/.default"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt_looking(claims: dict[str, Any]) -> str:
    header = {"typ": "JWT", "alg": "RS256", "kid": "smoke"}
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), b"not-a-real-signature"]
    return ".".join(_b64url(part) for part in parts)


# --------------------------------------------------------------------------- a client certificate


@dataclass(frozen=True)
class ClientCertificate:
    private_key_pem: str
    cert_pem: str
    cert_der: bytes
    public_key: rsa.RSAPublicKey

    @property
    def thumbprint_sha256(self) -> str:
        return hashlib.sha256(self.cert_der).hexdigest()


@pytest.fixture(scope="module")
def client_certificate() -> ClientCertificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msal-node smoke client")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ClientCertificate(
        private_key_pem=pem.decode("ascii"),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        cert_der=cert.public_bytes(serialization.Encoding.DER),
        public_key=key.public_key(),
    )


def _certificate_assertion_ok(assertion: str, token_endpoint: str, cert: ClientCertificate) -> bool:
    """msal-node's own assertion: PS256, x5t#S256 and x5c of our certificate, a valid signature."""
    try:
        header_b64, payload_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64url_decode(header_b64))
        payload = json.loads(_b64url_decode(payload_b64))
        cert.public_key.verify(
            _b64url_decode(signature_b64),
            f"{header_b64}.{payload_b64}".encode("ascii"),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    except (ValueError, InvalidSignature):
        return False
    return bool(
        header.get("alg") == "PS256"
        and header.get("x5t#S256") == _b64url(hashlib.sha256(cert.cert_der).digest())
        and header.get("x5c") == [base64.b64encode(cert.cert_der).decode("ascii")]
        and payload.get("iss") == CLIENT_ID
        and payload.get("sub") == CLIENT_ID
        and payload.get("aud") == token_endpoint
    )


# --------------------------------------------------------------------------- the stub authority


@dataclass
class StubAuthority:
    port: int
    tls: TLSFiles
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    discovery_requests: list[str] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        assert self.tls.ca_cert is not None
        return self.tls.ca_cert

    def config(self, host: str, **credentials: Any) -> dict[str, Any]:
        return {
            "authority": f"https://{host}:{self.port}/{TENANT}",
            "clientId": CLIENT_ID,
            "scopes": SCOPES,
            "knownAuthorities": [f"{host}:{self.port}"],
            **credentials,
        }


def _stub_app(stub: StubAuthority, cert: ClientCertificate) -> Starlette:
    def base(request: Request) -> str:
        return f"https://{request.headers['host']}"  # the host the client used: localhost or 127.0.0.1

    async def openid_configuration(request: Request) -> JSONResponse:
        tenant = request.path_params["tenant"]
        stub.discovery_requests.append(request.headers["host"])
        root = f"{base(request)}/{tenant}"
        return JSONResponse(
            {
                "issuer": f"{root}/v2.0",
                "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                "token_endpoint": f"{root}/oauth2/v2.0/token",
                "jwks_uri": f"{root}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            }
        )

    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        query = dict(request.query_params)
        stub.token_requests.append({"query": query, "form": form})
        token_endpoint = f"{base(request)}/{request.path_params['tenant']}/oauth2/v2.0/token"
        assertion = form.get("client_assertion", "")
        accepted = form.get("grant_type") == "client_credentials" and (
            form.get("client_secret") == SECRET
            or (
                form.get("client_assertion_type") == JWT_BEARER
                and (assertion == ASSERTION or _certificate_assertion_ok(assertion, token_endpoint, cert))
            )
        )
        if accepted:
            now = int(time.time())
            access_token = _jwt_looking(
                {"aud": "api://keyless-smoke", "iss": f"{base(request)}/{TENANT}/v2.0", "tid": TENANT,
                 "appid": form.get("client_id"), "iat": now, "nbf": now, "exp": now + 3599}
            )  # fmt: skip
            return JSONResponse(
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": access_token,
                },
                headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
            )
        correlation_id = query.get("client-request-id", str(uuid.uuid4()))
        trace_id = str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return JSONResponse(
            {
                "error": "invalid_client",
                "error_description": (
                    f"AADSTS7000215: Invalid client secret provided. Trace ID: {trace_id} "
                    f"Correlation ID: {correlation_id} Timestamp: {stamp}"
                ),
                "error_codes": [7000215],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": "https://login.microsoftonline.com/error?code=7000215",
            },
            status_code=401,
        )

    return Starlette(
        routes=[
            Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration),
            Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def stub(
    tmp_path_factory: pytest.TempPathFactory, client_certificate: ClientCertificate
) -> Iterator[StubAuthority]:
    tls = ensure_local_tls(tmp_path_factory.mktemp("keyless-data"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, kept bound: no race with other processes
    stub = StubAuthority(port=sock.getsockname()[1], tls=tls)
    config = uvicorn.Config(
        _stub_app(stub, client_certificate),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the stub HTTPS authority did not start")
        time.sleep(0.02)
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(autouse=True)
def _machine_ca_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Machines here export NODE_EXTRA_CA_CERTS for the system bundle: the harness must override it."""
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt")


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_client_secret_gets_a_token(stub: StubAuthority, host: str) -> None:
    before = len(stub.token_requests)

    result = msal_node_acquire(stub.config(host, clientSecret=SECRET), ca_file=stub.ca_file)

    assert result["ok"] is True, result
    assert result["tokenType"] == "Bearer"
    assert result["fromCache"] is False
    assert result["accessToken"].count(".") == 2
    expires_on = dt.datetime.fromisoformat(result["expiresOn"].replace("Z", "+00:00"))
    remaining = expires_on - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=3500) < remaining <= dt.timedelta(seconds=3600)
    assert host in stub.discovery_requests[-1]

    (request,) = stub.token_requests[before:]
    assert uuid.UUID(request["query"]["client-request-id"])  # msal-node puts it in the query string
    assert request["form"]["client_id"] == CLIENT_ID
    assert request["form"]["scope"] == SCOPES[0]
    assert request["form"]["client_secret"] == SECRET
    assert "x-client-SKU" in request["form"]


def test_wrong_secret_gets_an_error_object(stub: StubAuthority) -> None:
    before = len(stub.token_requests)

    result = msal_node_acquire(stub.config("localhost", clientSecret="wrong"), ca_file=stub.ca_file)

    assert result["ok"] is False, result
    assert result["errorCode"] == "invalid_client"
    assert "AADSTS7000215" in result["errorMessage"]
    assert isinstance(result["subError"], str)
    (request,) = stub.token_requests[before:]
    assert result["correlationId"] == request["query"]["client-request-id"]


def test_client_assertion_string_is_sent_as_is(stub: StubAuthority) -> None:
    before = len(stub.token_requests)

    result = msal_node_acquire(stub.config("localhost", clientAssertion=ASSERTION), ca_file=stub.ca_file)

    assert result["ok"] is True, result
    (request,) = stub.token_requests[before:]
    assert request["form"]["client_assertion"] == ASSERTION
    assert request["form"]["client_assertion_type"] == JWT_BEARER
    assert "client_secret" not in request["form"]


def test_client_certificate_signs_an_assertion(
    stub: StubAuthority, client_certificate: ClientCertificate
) -> None:
    credentials = {
        "clientCertificate": {
            "thumbprintSha256": client_certificate.thumbprint_sha256,
            "privateKey": client_certificate.private_key_pem,
            "x5c": client_certificate.cert_pem,
        }
    }

    result = msal_node_acquire(stub.config("localhost", **credentials), ca_file=stub.ca_file)

    assert result["ok"] is True, result  # the stub verified PS256, x5t#S256, x5c, iss/sub/aud


def test_untrusted_ca_is_refused(stub: StubAuthority, tmp_path: Path) -> None:
    other_ca = ensure_local_tls(tmp_path).ca_cert
    assert other_ca is not None

    result = msal_node_acquire(stub.config("localhost", clientSecret=SECRET), ca_file=other_ca)

    assert result["ok"] is False, result
    assert result["errorCode"]  # msal-node reports the failed discovery fetch, not a crash
