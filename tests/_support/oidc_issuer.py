"""A real OIDC issuer on 127.0.0.1 for tests: discovery, a JWKS, and tokens it signs.

``TestIssuer`` runs a ``ThreadingHTTPServer`` on an ephemeral port in a daemon thread (a real
socket, so clients exercise their whole HTTP stack) and serves
``{path}/.well-known/openid-configuration`` and ``{path}/jwks``. Tests can rotate its key, take it
down (every request gets 503), force a status, delay or body per path, and count requests::

    with TestIssuer() as issuer:
        token = issuer.mint(sub="repo:org/app:ref:refs/heads/main")
        issuer.rotate()
        assert issuer.requests[issuer.jwks_path] == 0
"""

from __future__ import annotations

import collections
import json
import threading
import time
import uuid
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from keyless.jose import KeySet, Signer, SignerAlg, encode_jwt

__all__ = ["TestIssuer"]

_DELETE = object()


class _Response:
    __slots__ = ("body", "content_type", "status")

    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class TestIssuer:
    """An OIDC issuer served over real HTTP on 127.0.0.1; a context manager."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *, path: str = "", alg: SignerAlg = "RS256") -> None:
        self._path = "/" + path.strip("/") if path.strip("/") else ""
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.signer = Signer.generate(alg)
        self._published: list[Signer] = [self.signer]
        self._extra_signers: dict[str, Signer] = {}
        self._is_down = False
        self._statuses: dict[str, int] = {}
        self._delays: dict[str, float] = {}
        self._bodies: dict[str, _Response] = {}
        self._metadata_changes: dict[str, Any] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = self.base_url + self._path
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="test-issuer", daemon=True
        )
        self._thread.start()

    # -- paths -------------------------------------------------------------------------------------

    @property
    def discovery_path(self) -> str:
        return self._path + "/.well-known/openid-configuration"

    @property
    def jwks_path(self) -> str:
        return self._path + "/jwks"

    @property
    def discovery_url(self) -> str:
        return self.base_url + self.discovery_path

    @property
    def jwks_uri(self) -> str:
        return self.base_url + self.jwks_path

    # -- documents ---------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The discovery document as currently served (after :meth:`patch_metadata`)."""
        document: dict[str, Any] = {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
        with self._lock:
            changes = dict(self._metadata_changes)
        for name, value in changes.items():
            if value is _DELETE:
                document.pop(name, None)
            else:
                document[name] = value
        return document

    def patch_metadata(self, **changes: Any) -> None:
        """Change members of the discovery document; ``None`` removes a member."""
        with self._lock:
            for name, value in changes.items():
                self._metadata_changes[name] = _DELETE if value is None else value

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            signers = [*self._published, *self._extra_signers.values()]
        return KeySet(s.public_key() for s in signers).to_jwks()

    # -- control -----------------------------------------------------------------------------------

    def rotate(self, *, keep_old: bool = False) -> str:
        """Switch to a new key (same algorithm) and return its ``kid``; drop the old one unless kept."""
        new = Signer.generate("ES256" if self.signer.algorithm == "ES256" else "RS256")
        with self._lock:
            self._published = [new, *self._published] if keep_old else [new]
            self.signer = new
        return new.kid

    def down(self) -> None:
        """Answer every request with 503 until :meth:`up`."""
        self._is_down = True

    def up(self) -> None:
        self._is_down = False

    def set_status(self, path: str, status: int | None) -> None:
        """Answer requests for ``path`` with ``status`` (empty JSON body); ``None`` clears it."""
        with self._lock:
            if status is None:
                self._statuses.pop(path, None)
            else:
                self._statuses[path] = status

    def set_delay(self, path: str, seconds: float) -> None:
        """Sleep ``seconds`` before answering requests for ``path``."""
        with self._lock:
            self._delays[path] = seconds

    def set_body(self, path: str, body: bytes | Mapping[str, Any] | list[Any] | None, **kw: Any) -> None:
        """Serve a fixed body (JSON-encoded unless bytes) for ``path``; ``None`` clears it.

        Keywords: ``status`` (default 200), ``content_type``.
        """
        with self._lock:
            if body is None:
                self._bodies.pop(path, None)
                return
            raw = body if isinstance(body, bytes) else _json(body)
            self._bodies[path] = _Response(
                kw.get("status", 200), raw, kw.get("content_type", "application/json")
            )

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- tokens ------------------------------------------------------------------------------------

    def mint(
        self,
        claims: Mapping[str, Any] | None = None,
        *,
        sub: str = "sa-123",
        aud: str | list[str] = "api://AzureADTokenExchange",
        lifetime: float = 600,
        kid: str | None = None,
        alg: str = "RS256",
        headers: Mapping[str, Any] | None = None,
        now: float | None = None,
        **extra_claims: Any,
    ) -> str:
        """A signed JWT with ``iss``/``sub``/``aud``/``iat``/``nbf``/``exp``/``jti`` defaults.

        ``extra_claims`` and then ``claims`` override the defaults. ``kid`` overrides the header's
        ``kid`` (the signature is still made with the real key). An ``alg`` other than the current
        key's signs with a second key of that algorithm, which the JWKS then publishes too.
        """
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": aud,
            "iat": issued,
            "nbf": issued,
            "exp": int(issued + lifetime),
            "jti": uuid.uuid4().hex,
        }
        payload.update(extra_claims)
        payload.update(claims or {})
        header = dict(headers or {})
        if kid is not None:
            header["kid"] = kid
        return encode_jwt(payload, self._signer_for(alg), headers=header)

    def _signer_for(self, alg: str) -> Signer:
        if alg == self.signer.algorithm:
            return self.signer
        if alg not in ("RS256", "ES256"):
            raise ValueError(f"TestIssuer signs only RS256 and ES256, not {alg!r}")
        with self._lock:
            if alg not in self._extra_signers:
                self._extra_signers[alg] = Signer.generate("ES256" if alg == "ES256" else "RS256")
            return self._extra_signers[alg]

    # -- serving -----------------------------------------------------------------------------------

    def _respond(self, path: str) -> _Response:
        with self._lock:
            self.requests[path] += 1
            delay = self._delays.get(path, 0.0)
            status = self._statuses.get(path)
            fixed = self._bodies.get(path)
        if delay:
            time.sleep(delay)
        if self._is_down:
            return _Response(503, _json({"error": "temporarily_unavailable"}))
        if status is not None:
            return _Response(status, _json({}))
        if fixed is not None:
            return fixed
        if path == self.discovery_path:
            return _Response(200, _json(self.metadata()))
        if path == self.jwks_path:
            return _Response(200, _json(self.jwks()))
        return _Response(404, _json({"error": "not_found"}))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                response = issuer._respond(urlsplit(self.path).path)
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    self.wfile.write(response.body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TestIssuer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
