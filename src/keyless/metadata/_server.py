"""Serving the emulator with uvicorn: in the foreground (``keyless metadata``) or in a background
thread for tests and development (``with MetadataServer() as server: ...``).

The socket is bound when the :class:`MetadataServer` is created, so its URL (and the issuer that
names it) is known before serving starts, even on an ephemeral port (``port=0``)::

    with MetadataServer(load_metadata_config(issuer="google")) as server:
        env = server.client_environment()   # GCE_METADATA_HOST / GCE_METADATA_IP
        token = server.issuer.identity_token(server.config.default_account, "api://AzureADTokenExchange")
"""

from __future__ import annotations

import logging
import time
from collections import deque
from types import TracebackType

from keyless._limits import ServerLimits
from keyless._net import bind_socket
from keyless._serving import ServerThread
from keyless.metadata._app import create_app
from keyless.metadata._config import GOOGLE_ISSUER, MetadataConfig
from keyless.metadata._hosts import emulator_hosts
from keyless.metadata._issuer import Clock, MetadataIssuer

__all__ = ["MetadataServer", "google_mode_warning"]

log = logging.getLogger("keyless.metadata")

_ANY = ("", "0.0.0.0", "::")  # noqa: S104 - names of the wildcard address, compared, not bound


def _url_host(host: str) -> str:
    if host in _ANY:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def google_mode_warning(url: str) -> str:
    """The loud line printed and logged whenever tokens claim Google as their issuer."""
    return (
        f"!!! ISSUER MODE 'google': ID tokens claim iss {GOOGLE_ISSUER} but are signed by this "
        f"emulator's keys ({url}/oauth2/v3/certs). Only an authority in development mode with an "
        "issuer override accepts them. Never use this outside a developer's machine."
    )


class MetadataServer:
    """The emulator on a real socket; a context manager that serves in a background thread."""

    def __init__(
        self,
        config: MetadataConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time,
        log_level: str = "warning",
        access_log: bool = False,
        limits: ServerLimits | None = None,
    ) -> None:
        self.config = config or MetadataConfig()
        self._sock = bind_socket(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.url = (self.config.public_url or f"http://{_url_host(host)}:{self.port}").rstrip("/")
        self.issuer = MetadataIssuer(self.config, base_url=self.url, clock=clock)
        self.requests: deque[str] = deque(maxlen=1000)  # "GET /path?query", newest last
        hosts = emulator_hosts(host, self.config.public_url)
        self.app = create_app(self.issuer, request_log=self.requests, allowed_hosts=hosts)
        self._server = ServerThread(
            self.app,
            self._sock,
            log_level=log_level,
            name="keyless-metadata",
            limits=limits,
            access_log=access_log,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=2,
            loop="auto",
        )

    @property
    def host_port(self) -> str:
        """``host:port`` as clients address it (the value of GCE_METADATA_HOST / GCE_METADATA_IP)."""
        return f"{_url_host(self.host)}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return self.issuer.discovery_url

    @property
    def jwks_uri(self) -> str:
        return self.issuer.jwks_uri

    def client_environment(self) -> dict[str, str]:
        """What google-auth needs (set before it is imported; unset GOOGLE_APPLICATION_CREDENTIALS)."""
        return {"GCE_METADATA_HOST": self.host_port, "GCE_METADATA_IP": self.host_port}

    def _announce(self) -> None:
        if self.config.issuer == "google":
            log.warning(google_mode_warning(self.url))

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        self._announce()
        self._server.run()

    def start(self) -> MetadataServer:
        """Serve in a daemon thread; returns when the server accepts connections."""
        self._announce()
        self._server.start()
        return self

    def close(self) -> None:
        """Stop serving (if started) and release the socket."""
        self._server.stop()

    def __enter__(self) -> MetadataServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
