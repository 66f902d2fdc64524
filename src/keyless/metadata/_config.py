"""Typed configuration of the metadata-server emulator: the project, the instance, its service
accounts and the issuer mode, from defaults, a small YAML file and explicit overrides.

``keyless metadata`` with no configuration at all serves project ``keyless-local`` (number
123456789012) in zone ``us-central1-a`` with one service account,
``default@keyless-local.iam.gserviceaccount.com``, whose unique id (the ``sub`` of its ID tokens,
the value a federated credential's ``subject`` names) is :data:`DEFAULT_UNIQUE_ID`.

Every problem is reported at once as a :class:`keyless.errors.ConfigurationError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from keyless._yaml import load_yaml
from keyless.errors import ConfigurationError

__all__ = [
    "DEFAULT_ACCOUNT_EMAIL",
    "DEFAULT_SCOPES",
    "DEFAULT_UNIQUE_ID",
    "GOOGLE_ISSUER",
    "IssuerMode",
    "MetadataConfig",
    "ServiceAccount",
    "load_metadata_config",
]

IssuerMode = Literal["self", "google"]

GOOGLE_ISSUER = "https://accounts.google.com"
DEFAULT_PROJECT_ID = "keyless-local"
DEFAULT_PROJECT_NUMBER = 123456789012
DEFAULT_ZONE = "us-central1-a"
DEFAULT_ACCOUNT_EMAIL = f"default@{DEFAULT_PROJECT_ID}.iam.gserviceaccount.com"
# The default account's 21-digit unique id: the subject of its tokens (fixed, so trusts can name it).
DEFAULT_UNIQUE_ID = "112233445566778899001"
DEFAULT_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
DEFAULT_INSTANCE_ID = "4815162342108000001"
DEFAULT_INSTANCE_NAME = "keyless-local"
DEFAULT_INSTANCE_CREATED = 1704067200  # 2024-01-01T00:00:00Z

_UNIQUE_ID = re.compile(r"[1-9][0-9]{20}")
_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[^@\s/]+")
_PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z0-9]+")
_ALIAS = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """One service account the instance can act as."""

    email: str
    unique_id: str  # 21 digits; the ``sub`` and ``azp`` of its ID tokens
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    aliases: tuple[str, ...] = ()

    def problems(self, where: str) -> list[str]:
        found: list[str] = []
        if not _EMAIL.fullmatch(self.email):
            found.append(f"{where}.email: {self.email!r} is not an email address")
        if not _UNIQUE_ID.fullmatch(self.unique_id):
            found.append(f"{where}.unique_id: {self.unique_id!r} must be 21 digits (not starting with 0)")
        found.extend(
            f"{where}.scopes: {scope!r} is not a scope (no spaces, not empty)"
            for scope in self.scopes
            if not scope or any(c.isspace() for c in scope)
        )
        found.extend(
            f"{where}.aliases: {alias!r} is not a valid alias"
            for alias in self.aliases
            if not _ALIAS.fullmatch(alias) or alias == "default"
        )
        return found


def _default_accounts() -> tuple[ServiceAccount, ...]:
    return (ServiceAccount(DEFAULT_ACCOUNT_EMAIL, DEFAULT_UNIQUE_ID),)


@dataclass(frozen=True, slots=True)
class MetadataConfig:
    """What the emulated instance looks like; validated on construction (all problems at once).

    The first service account is the instance's ``default`` one. ``issuer`` ``"self"`` mints ID
    tokens whose ``iss`` is the emulator's own URL; ``"google"`` mints them with
    ``https://accounts.google.com`` (see docs/metadata.md: it needs a development-only override on
    the authority). Tokens are reused until fewer than ``reuse_margin`` seconds remain; a margin
    of ``token_lifetime`` or more mints a fresh token on every request.
    """

    project_id: str = DEFAULT_PROJECT_ID
    numeric_project_id: int = DEFAULT_PROJECT_NUMBER
    zone: str = DEFAULT_ZONE
    region: str | None = None  # default: the zone without its last part (us-central1)
    instance_id: str = DEFAULT_INSTANCE_ID
    instance_name: str = DEFAULT_INSTANCE_NAME
    instance_creation_timestamp: int = DEFAULT_INSTANCE_CREATED
    service_accounts: tuple[ServiceAccount, ...] = field(default_factory=_default_accounts)
    issuer: IssuerMode = "self"
    license_ids: tuple[str, ...] = ()
    token_lifetime: int = 3600
    reuse_margin: int = 300
    key_rotation_interval: int | None = None  # seconds; None: rotate only when asked
    universe_domain: str = "googleapis.com"
    public_url: str | None = None  # the emulator's base URL as clients see it; default http://host:port

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigurationError(problems)

    @property
    def default_account(self) -> ServiceAccount:
        return self.service_accounts[0]

    @property
    def effective_region(self) -> str:
        return self.region or self.zone.rsplit("-", 1)[0]

    def account(self, name: str) -> ServiceAccount | None:
        """The account called ``name``: ``default``, its email, or one of its aliases."""
        if name == "default":
            return self.default_account
        for account in self.service_accounts:
            if name == account.email or name in account.aliases:
                return account
        return None

    def problems(self) -> list[str]:
        """Every setting that cannot work, all at once."""
        found: list[str] = []
        if not _PROJECT_ID.fullmatch(self.project_id):
            found.append(f"project_id: {self.project_id!r} is not a project id (6-30 of a-z, 0-9, -)")
        if not 0 < self.numeric_project_id < 10**15:
            found.append(f"numeric_project_id: {self.numeric_project_id} is not a project number")
        if not _ZONE.fullmatch(self.zone):
            found.append(f"zone: {self.zone!r} is not a zone like us-central1-a")
        if self.region is not None and not self.zone.startswith(self.region + "-"):
            found.append(f"region: {self.region!r} does not contain zone {self.zone!r}")
        if not self.instance_id.isdigit():
            found.append(f"instance_id: {self.instance_id!r} must be digits")
        if not self.instance_name or any(c.isspace() or c == "/" for c in self.instance_name):
            found.append(f"instance_name: {self.instance_name!r} is not an instance name")
        if not self.service_accounts:
            found.append("service_accounts: at least one service account is needed")
        for index, account in enumerate(self.service_accounts):
            found.extend(account.problems(f"service_accounts[{index}]"))
        found.extend(_duplicates(self.service_accounts))
        if self.issuer not in ("self", "google"):
            found.append(f"issuer: {self.issuer!r} must be 'self' or 'google'")
        found.extend(f"license_ids: {lic!r} must be digits" for lic in self.license_ids if not lic.isdigit())
        if not 60 <= self.token_lifetime <= 3600:
            found.append(f"token_lifetime: {self.token_lifetime} must be 60-3600 seconds")
        if self.reuse_margin < 0:
            found.append(f"reuse_margin: {self.reuse_margin} must not be negative")
        if self.key_rotation_interval is not None and self.key_rotation_interval < 60:
            found.append(f"key_rotation_interval: {self.key_rotation_interval} must be at least 60 seconds")
        if not self.universe_domain or "/" in self.universe_domain:
            found.append(f"universe_domain: {self.universe_domain!r} is not a domain")
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            found.append(f"public_url: {self.public_url!r} must start with http:// or https://")
        return found


def _duplicates(accounts: Sequence[ServiceAccount]) -> list[str]:
    found: list[str] = []
    seen: dict[str, int] = {}
    for index, account in enumerate(accounts):
        for name in (account.email, *account.aliases):
            if name in seen and seen[name] != index:
                found.append(f"service_accounts[{index}]: {name!r} is already used by account {seen[name]}")
            seen.setdefault(name, index)
    return found


# -- loading ------------------------------------------------------------------------------------

_SCALARS: dict[str, Callable[[Any], Any]] = {}
_ACCOUNT_OVERRIDES = {
    "account_email": "email",
    "unique_id": "unique_id",
    "scopes": "scopes",
}


def _as_str(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError("must be text")
    return str(value)


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise TypeError("must be a whole number")


def _as_opt_int(value: Any) -> int | None:
    return None if value is None else _as_int(value)


def _as_opt_str(value: Any) -> str | None:
    return None if value is None else _as_str(value)


def _as_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if isinstance(value, list | tuple):
        return tuple(_as_str(v) for v in value)
    raise TypeError("must be a list of text")


_SCALARS.update(
    project_id=_as_str,
    numeric_project_id=_as_int,
    zone=_as_str,
    region=_as_opt_str,
    instance_id=_as_str,
    instance_name=_as_str,
    instance_creation_timestamp=_as_int,
    issuer=_as_str,
    license_ids=_as_strings,
    token_lifetime=_as_int,
    reuse_margin=_as_int,
    key_rotation_interval=_as_opt_int,
    universe_domain=_as_str,
    public_url=_as_opt_str,
)
_KNOWN = {f.name for f in fields(MetadataConfig)}


def _parse_account(raw: Any, where: str, problems: list[str]) -> ServiceAccount | None:
    if isinstance(raw, ServiceAccount):
        return raw
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a mapping with email and unique_id")
        return None
    unknown = sorted(set(raw) - {"email", "unique_id", "scopes", "aliases"})
    problems.extend(f"{where}.{name}: unknown setting" for name in unknown)
    values: dict[str, Any] = {}
    for name, convert in (
        ("email", _as_str),
        ("unique_id", _as_str),
        ("scopes", _as_strings),
        ("aliases", _as_strings),
    ):
        if name not in raw:
            if name in ("email", "unique_id"):
                problems.append(f"{where}.{name}: required")
            continue
        try:
            values[name] = convert(raw[name])
        except TypeError as exc:
            problems.append(f"{where}.{name}: {exc}")
    if "email" not in values or "unique_id" not in values:
        return None
    return ServiceAccount(**values)


def _parse(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "service_accounts":
            if not isinstance(value, list | tuple):
                problems.append("service_accounts: must be a list")
                continue
            parsed = [_parse_account(a, f"service_accounts[{i}]", problems) for i, a in enumerate(value)]
            values[name] = tuple(a for a in parsed if a is not None)
        elif name in _SCALARS:
            try:
                values[name] = _SCALARS[name](value)
            except TypeError as exc:
                problems.append(f"{name}: {exc}")
        else:
            problems.append(f"{name}: unknown setting")
    return values


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read it ({exc.strerror})") from None
    raw = load_yaml(text, str(path))
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{path}: the top level must be a mapping")
    return cast(Mapping[str, Any], raw)


def _apply_account_overrides(
    values: dict[str, Any], overrides: Mapping[str, Any], problems: list[str]
) -> None:
    """``account_email`` / ``unique_id`` / ``scopes`` replace the default (first) account's fields."""
    changes: dict[str, Any] = {}
    for name, target in _ACCOUNT_OVERRIDES.items():
        if overrides.get(name) is None:
            continue
        try:
            changes[target] = _as_strings(overrides[name]) if target == "scopes" else _as_str(overrides[name])
        except TypeError as exc:
            problems.append(f"{name}: {exc}")
    if not changes:
        return
    accounts = list(values.get("service_accounts") or _default_accounts())
    if not accounts:
        accounts = list(_default_accounts())
    accounts[0] = replace(accounts[0], **changes)
    values["service_accounts"] = tuple(accounts)


def load_metadata_config(path: Path | None = None, **overrides: Any) -> MetadataConfig:
    """Defaults, then the YAML file at ``path``, then ``overrides`` (``None`` values are ignored).

    Overrides are the :class:`MetadataConfig` field names plus ``account_email``, ``unique_id``
    and ``scopes``, which change the default (first) service account. Raises
    :class:`ConfigurationError` listing every problem found.
    """
    problems: list[str] = []
    values = _parse(_read_yaml(path), problems) if path is not None else {}
    plain = {k: v for k, v in overrides.items() if v is not None and k not in _ACCOUNT_OVERRIDES}
    unknown = sorted(set(plain) - _KNOWN)
    problems.extend(f"{name}: unknown setting" for name in unknown)
    values.update(_parse({k: v for k, v in plain.items() if k in _KNOWN}, problems))
    _apply_account_overrides(values, overrides, problems)
    try:
        config = MetadataConfig(**values)
    except ConfigurationError as exc:
        problems.extend(p for p in exc.problems if p not in problems)
    if problems:
        prefix = f"{path}: " if path is not None else ""
        raise ConfigurationError([prefix + p for p in problems])
    return config
