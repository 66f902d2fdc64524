"""Reaching a running authority's admin API: the local one is found from the data directory
(its URL, admin key and CA); a remote one from ``--url`` and ``--admin-key`` (or environment).

The admin key is a bearer credential, so where it goes is checked before anything is sent:

* the data directory's ``admin.key`` goes only to the URL recorded in that data directory; another
  URL needs ``--admin-key`` (or ``KEYLESS_ADMIN_KEY``), said explicitly;
* plain ``http://`` only to a loopback address (a local ``keyless serve`` without TLS);
* an answer without the admin API's ``X-Keyless-Admin`` header is not read: whatever answered at
  that URL is not a keyless authority, and the command says so instead of misreading it.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from keyless.authority import ADMIN_KEY_FILE, URL_FILE
from keyless.config import load_authority_settings
from keyless.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    KeylessError,
    Locked,
    NotFound,
    TransportError,
)

__all__ = ["AdminClient", "Unreachable", "call", "connect"]

ADMIN_API_HEADER = "x-keyless-admin"


@dataclass
class AdminClient:
    base_url: str
    http: httpx.Client

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/admin/v1.0{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise _unreachable(self.base_url, exc) from None
        _require_keyless(self.base_url, response)
        if response.status_code == 401:
            raise ConfigurationError("the admin key was refused: pass --admin-key or set KEYLESS_ADMIN_KEY")
        if response.status_code >= 400:
            raise TransportError(
                f"{method} {path} failed ({response.status_code}): {_message(response)}", retryable=False
            )
        return response.json() if response.content else None


def _code(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return ""
    return str(error.get("code", "")) if isinstance(error, dict) else ""


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return response.text[:200]
    if not isinstance(error, dict):
        return str(error)
    message = str(error.get("message", ""))
    details = [str(d.get("message", "")) for d in error.get("details", []) if isinstance(d, dict)]
    if details and details != [message]:
        return message + ": " + "; ".join(details)
    return message


def connect(url: str | None, admin_key: str | None, data_dir: Path | None) -> AdminClient:
    settings = load_authority_settings(**({"data_dir": data_dir} if data_dir else {}))
    url_file = settings.data_dir / URL_FILE
    local = url_file.read_text().strip() if url_file.exists() else settings.base_url
    base = (url or os.environ.get("KEYLESS_URL") or local).rstrip("/")
    _require_safe_transport(base)
    key = admin_key or os.environ.get("KEYLESS_ADMIN_KEY")
    key_file = settings.data_dir / ADMIN_KEY_FILE
    if not key and key_file.exists():
        if _origin(base) != _origin(local):
            raise ConfigurationError(
                f"{key_file} is the admin key of {local}; it is not sent to {base}: pass --admin-key "
                "(or set KEYLESS_ADMIN_KEY) for that authority"
            )
        key = key_file.read_text().strip()
    if not key:
        raise ConfigurationError(
            f"no admin key: pass --admin-key, set KEYLESS_ADMIN_KEY, or run where {key_file} exists"
        )
    http = httpx.Client(
        headers={"Authorization": f"Bearer {key}"},
        verify=_trust(settings.data_dir / "tls" / "ca.pem", local=base == local),
        timeout=30,
    )
    return AdminClient(base, http)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = httpx.URL(url)
    return parts.scheme, parts.host.lower(), parts.port or {"https": 443, "http": 80}.get(parts.scheme)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _require_safe_transport(base: str) -> None:
    """The admin key travels only over https, or over http to this machine."""
    try:
        parts = urlsplit(base)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(f"--url {base!r} is not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"--url {base!r} must be an https:// URL")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"refusing to send the admin key in clear text to {base}: use https:// "
            "(plain http is accepted only for a loopback address)"
        )


def _require_keyless(base_url: str, response: httpx.Response) -> None:
    if ADMIN_API_HEADER not in response.headers:
        kind = response.headers.get("content-type", "no content type").split(";", 1)[0]
        raise ConfigurationError(
            f"{base_url} did not answer like a keyless authority (HTTP {response.status_code}, {kind}, "
            f"no {ADMIN_API_HEADER} header): check --url"
        )


def _trust(local_ca: Path, *, local: bool) -> ssl.SSLContext | bool:
    """``KEYLESS_CA_FILE`` if set; the local authority's own CA for the local URL; else the system's
    trust store (which httpx extends with ``SSL_CERT_FILE``)."""
    named = os.environ.get("KEYLESS_CA_FILE")
    if named:
        try:
            return ssl.create_default_context(cafile=named)
        except (OSError, ssl.SSLError) as exc:
            problem = f"KEYLESS_CA_FILE={named} is not a readable PEM CA bundle: {exc}"
            raise ConfigurationError(problem) from None
    if local and local_ca.exists():
        return ssl.create_default_context(cafile=str(local_ca))
    return True


def _unreachable(base_url: str, exc: httpx.TransportError) -> KeylessError:
    """What to tell the user when no answer came: an untrusted certificate is their setting to fix."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ConfigurationError(
                f"the certificate of {base_url} is not trusted ({cause.verify_message}): set "
                "KEYLESS_CA_FILE to the CA that signed it (a keyless authority's is DATA_DIR/tls/ca.pem)"
            )
        cause = cause.__cause__ or cause.__context__
    return Unreachable(
        f"cannot reach the authority at {base_url} ({exc.__class__.__name__}); "
        "is `keyless serve` running? Pass --url for a remote one."
    )


class Unreachable(TransportError):
    """The authority did not answer at all (exit status 3)."""


def call(client: AdminClient, method: str, path: str, **kwargs: Any) -> Any:
    """Like ``AdminClient.request``, with failures mapped onto the exception tree: 400 ->
    ConfigurationError (one problem per detail), 401 -> ConfigurationError, 404 -> NotFound,
    409 -> AlreadyExists (Locked while another apply runs), 412 -> Conflict, no answer -> Unreachable,
    others -> TransportError."""
    url = f"{client.base_url}/admin/v1.0{path}"
    try:
        response = client.http.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise _unreachable(client.base_url, exc) from None
    _require_keyless(client.base_url, response)
    status = response.status_code
    if status < 400:
        if not response.content:
            return None
        is_json = response.headers.get("content-type", "application/json").startswith("application/json")
        return response.json() if is_json else response.text  # e.g. the trust graph as dot
    if status == 400:
        located = _problems(response)
        if located:
            raise ServerProblems(located)
        raise ConfigurationError([_message(response)])
    if status == 401:
        raise ConfigurationError("the admin key was refused: pass --admin-key or set KEYLESS_ADMIN_KEY")
    if status == 409 and _code(response) == "ApplyInProgress":
        raise Locked(_message(response))
    mapped: dict[int, type[KeylessError]] = {404: NotFound, 409: AlreadyExists, 412: Conflict}
    if status in mapped:
        raise mapped[status](_message(response))
    retry = response.headers.get("retry-after")
    later = f" (the authority asks to retry after {retry} s)" if status == 503 and retry else ""
    raise TransportError(
        f"{method} {path} failed ({status}): {_message(response)}{later}", retryable=status >= 500
    )


class ServerProblems(ConfigurationError):
    """The server's problems with a request, as it words them; ``located`` keeps each one's
    ``target`` (its path in a trust document, when the server names one) and what is wrong there."""

    def __init__(self, details: list[tuple[str | None, str]]) -> None:
        self.located = [
            (target, message.removeprefix(f"<api>: {target}: ") if target else message)
            for target, message in details
        ]
        super().__init__([message for _, message in details])


def _problems(response: httpx.Response) -> list[tuple[str | None, str]]:
    """Each detail of a Graph error body as (``target`` or None, ``message``)."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return []
    details = error.get("details", []) if isinstance(error, dict) else []
    return [
        (str(d["target"]) if d.get("target") else None, str(d.get("message", "")))
        for d in details
        if isinstance(d, dict) and d.get("message")
    ]
