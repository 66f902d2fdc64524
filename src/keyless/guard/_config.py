"""The guard's settings: trusted issuers, audiences, algorithms, limits, the policy; read from YAML.

Every problem in a file is reported at once, each with ``file:line`` and the option's path
(``ConfigurationError.problems``). Defaults live here and nowhere else; ``docs/guard.md``
describes each option. A minimal file::

    issuers:
      - kind: entra
        tenants: [72f988bf-86f1-41af-91ab-2d7cd011db47]
    audiences: [api://blob-api]
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from keyless._limits import ServerLimits
from keyless.errors import ConfigurationError
from keyless.guard._policy import Policy, load_policy, read_policy
from keyless.guard._reader import PathKey, Reader, read_yaml
from keyless.guard._request_safety import override_allow_list
from keyless.jose import ALGORITHMS
from keyless.trust import DEFAULT_MIN_REFRESH_INTERVAL

__all__ = [
    "ENTRA_INSTANCE",
    "ENTRA_V1_INSTANCE",
    "GOOGLE_ISSUER",
    "PRESENT",
    "GuardConfig",
    "IssuerConfig",
    "config_from_mapping",
    "load_config",
]

IssuerKind = Literal["oidc", "entra", "google", "keyless"]
KINDS: tuple[IssuerKind, ...] = ("oidc", "entra", "google", "keyless")
ENTRA_INSTANCE = "https://login.microsoftonline.com"
ENTRA_V1_INSTANCE = "https://sts.windows.net"
GOOGLE_ISSUER = "https://accounts.google.com"
PRESENT: Any = type("Present", (), {"__repr__": lambda self: "PRESENT"})()  # a claim must merely exist

DEFAULT_ALGORITHMS = ("RS256",)
DEFAULT_LEEWAY = 60.0  # Cloud Run is strict about time; Entra back-dates nbf by 5 minutes anyway
DEFAULT_MAX_TOKEN_SIZE = 16 * 1024
DEFAULT_TOKEN_CACHE_SIZE = 10_000

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISSUER_KEYS = {
    "oidc": ("kind", "issuer", "discovery_url", "audiences"),
    "google": ("kind", "issuer", "discovery_url", "audiences"),
    "entra": ("kind", "tenants", "multi_tenant", "versions", "instance", "v1_instance", "audiences"),
    "keyless": ("kind", "url", "tenants", "versions", "audiences"),
}
_TOP_KEYS = (
    "issuers",
    "audiences",
    "algorithms",
    "leeway",
    "required_claims",
    "max_token_size",
    "token_cache_size",
    "keys",
    "allow_http_loopback_issuers",
    "ca_bundle",
    "upstream",
    "upstream_timeout",
    "upstream_connect_timeout",
    "forward_override_headers",
    "policy",
    "server",
    "metrics",
)
_KEYS_KEYS = ("max_age", "refresh_cooldown", "timeout")
DEFAULT_METRICS_ALLOW_FROM = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
_SERVER_KEYS = ("max_header_bytes", "max_headers", "header_timeout", "keep_alive_timeout", "max_connections")


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    """One trusted issuer (or, for ``entra``/``keyless``, one family of tenant issuers).

    * ``oidc``: ``issuer`` exactly as tokens carry it; keys through its discovery document (or
      ``discovery_url``).
    * ``entra``: the tenants' v1 (``{v1_instance}/{tid}/``) and v2 (``{instance}/{tid}/v2.0``)
      issuers; ``multi_tenant`` takes keys from ``/common`` (templated ``{tenantid}`` issuer) and
      uses ``tenants`` as the allow-list.
    * ``google``: ``https://accounts.google.com`` (and the legacy ``accounts.google.com``).
    * ``keyless``: a keyless authority at ``url``, v1 ``{url}/{tid}/`` and v2 ``{url}/{tid}/v2.0``.
    """

    kind: IssuerKind
    issuer: str | None = None
    discovery_url: str | None = None
    url: str | None = None
    tenants: tuple[str, ...] = ()
    multi_tenant: bool = False
    versions: tuple[int, ...] = (1, 2)
    instance: str = ENTRA_INSTANCE
    v1_instance: str = ENTRA_V1_INSTANCE
    audiences: tuple[str, ...] | None = None

    @property
    def label(self) -> str:
        if self.kind in ("oidc", "google"):
            return f"{self.kind} {self.issuer or GOOGLE_ISSUER}"
        where = self.url if self.kind == "keyless" else self.instance
        many = " (multi-tenant)" if self.multi_tenant else ""
        return f"{self.kind} {where} tenants {', '.join(self.tenants)}{many}"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Everything the verifier, the middleware and the proxy need; see ``docs/guard.md``."""

    issuers: tuple[IssuerConfig, ...]
    audiences: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = DEFAULT_LEEWAY
    # (claim, PRESENT) requires the claim; (claim, value) requires that value (or one of a tuple).
    required_claims: tuple[tuple[str, Any], ...] = ()
    max_token_size: int = DEFAULT_MAX_TOKEN_SIZE
    token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE
    keys_max_age: float = 3600.0
    keys_refresh_cooldown: float = DEFAULT_MIN_REFRESH_INTERVAL
    keys_timeout: float = 5.0
    allow_http_loopback_issuers: bool = False
    ca_bundle: Path | None = None
    upstream: str | None = None
    upstream_timeout: float = 30.0
    upstream_connect_timeout: float = 5.0
    # Override headers (``Forwarded``, ``X-Forwarded-Prefix``, ...) the client may pass on, folded
    # (``_request_safety.header_key``); every other one is dropped.
    forward_override_headers: frozenset[bytes] = frozenset()
    policy: Policy = field(default_factory=Policy.allow_authenticated)
    server_limits: ServerLimits = field(default_factory=ServerLimits)
    # Peers allowed to read /_keyless/metrics (networks); loopback unless the file says otherwise.
    metrics_allow_from: tuple[IPv4Network | IPv6Network, ...] = DEFAULT_METRICS_ALLOW_FROM
    source: str = "<config>"

    def development_warnings(self) -> list[str]:
        """Settings that are fine on a laptop and wrong in production."""
        warnings = []
        if self.allow_http_loopback_issuers:
            warnings.append(
                "allow_http_loopback_issuers is on: keys are fetched over plain http from 127.0.0.1 "
                "(development only)"
            )
        for issuer in self.issuers:
            if issuer.discovery_url and issuer.kind in ("google", "entra"):
                warnings.append(f"{issuer.label}: keys come from {issuer.discovery_url} (a stand-in)")
            if issuer.kind == "entra" and (
                issuer.instance != ENTRA_INSTANCE or issuer.v1_instance != ENTRA_V1_INSTANCE
            ):
                warnings.append(f"{issuer.label}: not the public Entra instance")
        if not self.policy.rules and self.policy.default == "authenticated":
            warnings.append("no policy rules: any valid token may call every path")
        return warnings


# -- reading -------------------------------------------------------------------------------------------
def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(reader: Reader, path: PathKey, url: str, *, allow_http: bool, any_http: bool = False) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("https", "http"):
        reader.problem(path, f"{url!r} is not an http(s) URL")
    elif parts.scheme == "http" and not any_http and not (allow_http and _is_loopback(host)):
        reader.problem(
            path,
            f"{url!r}: https is required (http only to a loopback host with allow_http_loopback_issuers)",
        )


def _tenants(reader: Reader, data: Mapping[str, Any], path: PathKey) -> tuple[str, ...]:
    tenants = tuple(t.lower() for t in reader.text_list(data, path, "tenants"))
    if not tenants:
        reader.problem((*path, "tenants"), "list at least one tenant id (GUID)")
    for index, tenant in enumerate(tenants):
        if not _GUID.match(tenant):
            reader.problem((*path, "tenants", index), f"{tenant!r} is not a tenant id (GUID)")
    return tenants


def _versions(reader: Reader, data: Mapping[str, Any], path: PathKey) -> tuple[int, ...]:
    raw = data.get("versions", [1, 2])
    if not isinstance(raw, list) or not raw or any(v not in (1, 2) or isinstance(v, bool) for v in raw):
        reader.problem((*path, "versions"), f"expected a list of 1 and/or 2, got {raw!r}")
        return (1, 2)
    return tuple(sorted(set(raw)))


def _read_issuer(reader: Reader, raw: Any, path: PathKey, allow_http: bool) -> IssuerConfig | None:
    if not isinstance(raw, dict):
        reader.problem(path, "expected a mapping with 'kind'")
        return None
    kind = raw.get("kind")
    if kind not in KINDS:
        reader.problem((*path, "kind"), f"must be one of {', '.join(KINDS)}; got {kind!r}")
        return None
    data = reader.mapping(raw, path, _ISSUER_KEYS[kind])
    audiences = reader.text_list(data, path, "audiences") or None
    discovery_url = reader.text(data, path, "discovery_url", None)
    if discovery_url:
        _check_url(reader, (*path, "discovery_url"), discovery_url, allow_http=allow_http)
    if kind == "oidc":
        issuer = reader.required_text(data, path, "issuer")
        if issuer:
            _check_url(reader, (*path, "issuer"), issuer, allow_http=allow_http)
        return IssuerConfig("oidc", issuer=issuer, discovery_url=discovery_url, audiences=audiences)
    if kind == "google":
        issuer = reader.text(data, path, "issuer", GOOGLE_ISSUER)
        _check_url(reader, (*path, "issuer"), issuer, allow_http=allow_http)
        return IssuerConfig("google", issuer=issuer, discovery_url=discovery_url, audiences=audiences)
    tenants = _tenants(reader, data, path)
    versions = _versions(reader, data, path)
    if kind == "keyless":
        url = reader.required_text(data, path, "url").rstrip("/")
        if url:
            _check_url(reader, (*path, "url"), url, allow_http=allow_http)
        return IssuerConfig("keyless", url=url, tenants=tenants, versions=versions, audiences=audiences)
    instance = reader.text(data, path, "instance", ENTRA_INSTANCE).rstrip("/")
    v1_instance = reader.text(data, path, "v1_instance", ENTRA_V1_INSTANCE).rstrip("/")
    _check_url(reader, (*path, "instance"), instance, allow_http=allow_http)
    _check_url(reader, (*path, "v1_instance"), v1_instance, allow_http=allow_http)
    return IssuerConfig(
        "entra",
        tenants=tenants,
        multi_tenant=reader.flag(data, path, "multi_tenant", False),
        versions=versions,
        instance=instance,
        v1_instance=v1_instance,
        audiences=audiences,
    )


def _algorithms(reader: Reader, data: Mapping[str, Any]) -> tuple[str, ...]:
    algorithms = reader.text_list(data, (), "algorithms") or DEFAULT_ALGORITHMS
    for index, alg in enumerate(algorithms):
        if alg not in ALGORITHMS:
            why = "is never accepted" if alg.lower() == "none" or alg.startswith("HS") else "is not known"
            known = ", ".join(sorted(ALGORITHMS))
            reader.problem(("algorithms", index), f"{alg!r} {why} (asymmetric algorithms only: {known})")
    return algorithms


def _required_claims(reader: Reader, data: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    raw = data.get("required_claims")
    if raw is None:
        return ()
    if isinstance(raw, list):
        return tuple((name, PRESENT) for name in reader.text_list(data, (), "required_claims"))
    if not isinstance(raw, dict):
        reader.problem(("required_claims",), "expected a list of claim names or a mapping claim: value")
        return ()
    found: list[tuple[str, Any]] = []
    for name, value in raw.items():
        if isinstance(value, list):
            if not value:
                reader.problem(("required_claims", name), "list at least one accepted value")
            found.append((str(name), tuple(value)))
        elif isinstance(value, dict):
            reader.problem(("required_claims", name), "expected a value or a list of accepted values")
        else:
            found.append((str(name), PRESENT if value is None else value))
    return tuple(found)


def _ca_bundle(reader: Reader, data: Mapping[str, Any]) -> Path | None:
    text = reader.text(data, (), "ca_bundle", None)
    if text is None:
        return None
    path = Path(text).expanduser()
    if not path.is_absolute() and reader.base_dir is not None:
        path = reader.base_dir / path
    if not path.is_file():
        reader.problem(("ca_bundle",), f"no such file: {path}")
        return path
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        reader.problem(("ca_bundle",), f"{path} is not a PEM bundle of CA certificates ({exc})")
    return path


def _policy(reader: Reader, data: Mapping[str, Any]) -> Policy:
    raw = data.get("policy")
    if raw is None:
        return Policy.allow_authenticated()
    if isinstance(raw, str):
        path = Path(raw).expanduser()
        if not path.is_absolute() and reader.base_dir is not None:
            path = reader.base_dir / path
        if not path.is_file():
            reader.problem(("policy",), f"no such policy file: {path}")
            return Policy()
        try:
            return load_policy(path)
        except ConfigurationError as exc:  # fold its problems into ours
            reader.problems.extend(exc.problems)
            return Policy()
    return read_policy(reader, raw, ("policy",))


def _override_headers(reader: Reader, data: Mapping[str, Any]) -> frozenset[bytes]:
    names = reader.text_list(data, (), "forward_override_headers")
    allowed, problems = override_allow_list(names)
    for problem in problems:
        reader.problem(("forward_override_headers",), problem)
    return allowed


def read_config(reader: Reader, raw: Any) -> GuardConfig:
    """Read a whole guard configuration; problems go to ``reader`` (the caller raises them)."""
    data = reader.mapping(raw, (), _TOP_KEYS)
    allow_http = reader.flag(data, (), "allow_http_loopback_issuers", False)
    issuers = reader.items(
        data, (), "issuers", lambda item, path: _read_issuer(reader, item, path, allow_http)
    )
    if "issuers" not in data:
        reader.problem(("issuers",), "list at least one trusted issuer")
    audiences = reader.text_list(data, (), "audiences")
    if not audiences and any(i.audiences is None for i in issuers):
        reader.problem(("audiences",), "list this service's audiences (its URL, App ID URI or client id)")
    keys = reader.mapping(data.get("keys"), ("keys",), _KEYS_KEYS)
    upstream = reader.text(data, (), "upstream", None)
    if upstream is not None:
        _check_url(reader, ("upstream",), upstream, allow_http=True, any_http=True)
    return GuardConfig(
        issuers=issuers,
        audiences=audiences,
        algorithms=_algorithms(reader, data),
        leeway=reader.number(data, (), "leeway", DEFAULT_LEEWAY, minimum=0, maximum=600),
        required_claims=_required_claims(reader, data),
        max_token_size=reader.integer(data, (), "max_token_size", DEFAULT_MAX_TOKEN_SIZE, minimum=256),
        token_cache_size=reader.integer(data, (), "token_cache_size", DEFAULT_TOKEN_CACHE_SIZE),
        keys_max_age=reader.number(keys, ("keys",), "max_age", 3600.0, minimum=1),
        keys_refresh_cooldown=reader.number(
            keys, ("keys",), "refresh_cooldown", DEFAULT_MIN_REFRESH_INTERVAL, minimum=0
        ),
        keys_timeout=reader.number(keys, ("keys",), "timeout", 5.0, minimum=0.1, maximum=60),
        allow_http_loopback_issuers=allow_http,
        ca_bundle=_ca_bundle(reader, data),
        upstream=upstream.rstrip("/") if upstream else None,
        upstream_timeout=reader.number(data, (), "upstream_timeout", 30.0, minimum=0.01),
        upstream_connect_timeout=reader.number(data, (), "upstream_connect_timeout", 5.0, minimum=0.01),
        forward_override_headers=_override_headers(reader, data),
        policy=_policy(reader, data),
        server_limits=_server_limits(reader, data),
        metrics_allow_from=_metrics_allow_from(reader, data),
        source=reader.source,
    )


def _metrics_allow_from(reader: Reader, data: Mapping[str, Any]) -> tuple[IPv4Network | IPv6Network, ...]:
    """``metrics: {allow_from: [networks]}``: who may read ``/_keyless/metrics`` (``[]``: nobody)."""
    raw = reader.mapping(data.get("metrics"), ("metrics",), ("allow_from",))
    if "allow_from" not in raw:
        return DEFAULT_METRICS_ALLOW_FROM
    networks = []
    for index, text in enumerate(reader.text_list(raw, ("metrics",), "allow_from")):
        try:
            networks.append(ip_network(text, strict=False))
        except ValueError:
            reader.problem(("metrics", "allow_from", index), f"not an address or network: {text!r}")
    return tuple(networks)


def _server_limits(reader: Reader, data: Mapping[str, Any]) -> ServerLimits:
    """The proxy server's resource bounds (``server:``), defaults from :class:`ServerLimits`."""
    raw = reader.mapping(data.get("server"), ("server",), _SERVER_KEYS)
    default = ServerLimits()
    where = ("server",)
    return ServerLimits(
        max_header_bytes=reader.integer(
            raw, where, "max_header_bytes", default.max_header_bytes, minimum=1024
        ),
        max_headers=reader.integer(raw, where, "max_headers", default.max_headers, minimum=8),
        header_timeout=reader.number(raw, where, "header_timeout", default.header_timeout, minimum=0.01),
        keep_alive_timeout=reader.number(
            raw, where, "keep_alive_timeout", default.keep_alive_timeout, minimum=0.01
        ),
        max_connections=reader.integer(raw, where, "max_connections", default.max_connections, minimum=1),
    )


def config_from_mapping(
    data: Mapping[str, Any], *, source: str = "<config>", base_dir: str | Path | None = None
) -> GuardConfig:
    """A configuration from plain data (as the YAML file would give); every problem at once."""
    reader = Reader(source)
    reader.base_dir = Path(base_dir) if base_dir is not None else None
    config = read_config(reader, dict(data))
    reader.raise_if_any()
    return config


def load_config(path: str | Path) -> GuardConfig:
    """Read the guard's YAML file; every problem at once, each with ``file:line``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the guard configuration: {exc.strerror}") from None
    data, reader = read_yaml(text, str(file))
    reader.base_dir = file.parent
    config = read_config(reader, data)
    reader.raise_if_any()
    return config
