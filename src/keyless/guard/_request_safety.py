"""Which request paths the guard can match safely, and which request headers it must not pass on.

One home for these rules: the reverse proxy, the ASGI middleware and any other front of the guard
call the functions here, so they refuse the same paths and drop the same headers.

Paths (:func:`unsafe_path`). The policy matches the decoded path; the upstream may read the same
bytes differently (servlet containers strip ``;`` parameters and resolve dot segments, most routers
collapse ``//``, some decode twice or compare case-insensitively). A path is refused when any of
these readings could differ from the policy's:

* it does not start with ``/``;
* a segment is ``.`` or ``..`` in any encoding (``%2e``, ``%252e``), with or without ``;``
  parameters (``..;``, ``..%3b``);
* it has an empty segment (``//x``, ``/a//b``); one trailing ``/`` is fine;
* it has ``;`` (path parameters), a backslash, a control character or whitespace (raw or encoded),
  or an encoded ``/``;
* its percent-encoding is not UTF-8, or it is encoded twice (``%252e``: an upstream that decodes
  again, as IIS can, would read another path; IIS itself refuses these by default);
* it is not in Unicode NFKC form (fullwidth dots and letters such as ``%EF%BD%81dmin``, ligatures,
  decomposed accents), which some upstreams apply before routing;
* with ``case_insensitive=True``: it has a non-ASCII character whose upper/lower case is ASCII
  (dotless i, long s, the Kelvin sign, ligatures), which case-insensitive routers fold unpredictably.

Headers (:func:`header_key`, :func:`header_kind`). A header name is compared after folding case
and treating every character other than a letter or digit as ``-``, because CGI/WSGI servers turn
``X-Keyless-Roles``, ``X_Keyless_Roles`` (and PHP also ``X.Keyless.Roles``) into the same
``HTTP_X_KEYLESS_ROLES``. :class:`HeaderKind` says why a name is special:

* ``IDENTITY``: ``X-Keyless-*``, set only by the guard from a verified token; never passed on;
* ``FORWARDING``: ``X-Forwarded-For``/``-Proto``/``-Host``, set by the proxy itself;
* ``TOKEN``: ``Authorization``, ``X-Serverless-Authorization``: the caller's credentials;
* ``OVERRIDE``: headers that make an upstream serve another path, method, scheme or client
  address than the one the policy evaluated (:data:`OVERRIDE_HEADERS`); dropped unless allowed;
* ``HOP_BY_HOP``: RFC 9110 §7.6.1 connection headers.

:class:`HeaderFilter` applies these to a request's headers (what the middleware and a forward-auth
front do); the proxy uses the same table with its own framing on top.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

__all__ = [
    "FORWARDING_HEADERS",
    "HEADER_FOLD",
    "HOP_BY_HOP",
    "IDENTITY_HEADERS",
    "IDENTITY_PREFIX",
    "OVERRIDE_HEADERS",
    "TOKEN_HEADERS",
    "HeaderFilter",
    "HeaderKind",
    "header_key",
    "header_kind",
    "override_allow_list",
    "unsafe_path",
]

# -- headers ---------------------------------------------------------------------------------------


class HeaderKind(enum.Enum):
    """Why a request header is special to the guard (see the module docs)."""

    IDENTITY = "identity"
    FORWARDING = "forwarding"
    TOKEN = "token"
    OVERRIDE = "override"
    HOP_BY_HOP = "hop-by-hop"


IDENTITY_PREFIX = b"x-keyless-"
IDENTITY_HEADERS = (
    "X-Keyless-Subject",
    "X-Keyless-Object-Id",
    "X-Keyless-App-Id",
    "X-Keyless-Tenant-Id",
    "X-Keyless-Roles",
    "X-Keyless-Scopes",
    "X-Keyless-Issuer",
    "X-Keyless-Email",
)
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
TOKEN_HEADERS = frozenset({b"authorization", b"x-serverless-authorization"})
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Headers through which a client could make an upstream (IIS, Symfony, Laravel, Rails, Spring,
# Express, nginx-style apps) serve a path, method, scheme, host or client address other than the
# one the guard evaluated.
OVERRIDE_HEADERS = frozenset(
    {
        b"forwarded",
        b"x-original-url",
        b"x-original-uri",
        b"x-rewrite-url",
        b"x-override-url",
        b"x-http-method-override",
        b"x-http-method",
        b"x-method-override",
        b"x-real-ip",
        b"x-client-ip",
        b"true-client-ip",
        b"x-cluster-client-ip",
        b"x-forwarded-prefix",
        b"x-forwarded-port",
        b"x-forwarded-server",
        b"x-forwarded-scheme",
        b"x-forwarded-ssl",
        b"x-forwarded-path",
        b"x-forwarded-uri",
        b"x-forwarded-url",
        b"x-original-host",
        b"x-host",
        b"x-url-scheme",
        b"front-end-https",
    }
)
_KINDS: dict[bytes, HeaderKind] = {
    **dict.fromkeys(HOP_BY_HOP, HeaderKind.HOP_BY_HOP),
    **dict.fromkeys(OVERRIDE_HEADERS, HeaderKind.OVERRIDE),
    **dict.fromkeys(FORWARDING_HEADERS, HeaderKind.FORWARDING),
    **dict.fromkeys(TOKEN_HEADERS, HeaderKind.TOKEN),
    **{name.lower().encode("ascii"): HeaderKind.IDENTITY for name in IDENTITY_HEADERS},
}
# ``name.translate(HEADER_FOLD)`` is ``header_key(name)`` for bytes: letters to lower case, digits
# kept, every other byte to '-'; one C call per name on the hot path.
HEADER_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57) else 45 for c in range(256)
)


def header_key(name: bytes | str) -> bytes:
    """``name`` as the guard compares it: lower case, every non-alphanumeric character as ``-``."""
    raw = name.encode("latin-1", "replace") if isinstance(name, str) else name
    return raw.translate(HEADER_FOLD)


def header_kind(name: bytes | str) -> HeaderKind | None:
    """Why the guard treats the header ``name`` specially, or ``None`` for an ordinary header."""
    key = header_key(name)
    kind = _KINDS.get(key)
    if kind is None and key.startswith(IDENTITY_PREFIX):
        return HeaderKind.IDENTITY
    return kind


def override_allow_list(names: Iterable[str]) -> tuple[frozenset[bytes], list[str]]:
    """The folded names of override headers an operator lets through, and what is wrong with the list.

    Only :data:`OVERRIDE_HEADERS` may be allowed: identity, forwarding and token headers are the
    guard's own, and any other header passes anyway.
    """
    allowed: set[bytes] = set()
    problems: list[str] = []
    for name in names:
        kind = header_kind(name)
        if kind is HeaderKind.OVERRIDE:
            allowed.add(header_key(name))
        elif kind is None:
            problems.append(f"{name!r} is not an override header (any other header passes already)")
        else:
            problems.append(f"{name!r} cannot be allowed: the guard itself decides {kind.value} headers")
    return frozenset(allowed), problems


class HeaderFilter:
    """What the middleware (and a forward-auth front) removes from a request's headers.

    * identity headers in every spelling, on every path;
    * override headers, unless in ``allowed_overrides`` (folded names, see :func:`override_allow_list`);
    * token headers spelled other than exactly (``X_Serverless_Authorization``): never what was verified;
    * ``Authorization`` and ``X-Serverless-Authorization`` when ``strip_tokens`` (an anonymous path
      whose rule does not say ``forward_authorization``).

    Hop-by-hop and forwarding headers are left to the server in front (a proxy handles them itself).
    """

    __slots__ = ("_drop",)

    def __init__(self, allowed_overrides: Iterable[bytes] = ()) -> None:
        allowed = frozenset(allowed_overrides)
        drop = {
            key: kind for key, kind in _KINDS.items() if kind in (HeaderKind.IDENTITY, HeaderKind.OVERRIDE)
        }
        for key in allowed:
            drop.pop(key, None)
        self._drop = drop

    def dropped(self, name: bytes, *, strip_tokens: bool) -> HeaderKind | None:
        """Why the header ``name`` is removed, or ``None`` to keep it."""
        key = name.translate(HEADER_FOLD)
        kind = self._drop.get(key)
        if kind is not None:
            return kind
        if key in TOKEN_HEADERS:
            return HeaderKind.TOKEN if strip_tokens or name.lower() != key else None
        if key.startswith(IDENTITY_PREFIX):
            return HeaderKind.IDENTITY
        return None

    def clean(
        self, headers: list[tuple[bytes, bytes]], *, strip_tokens: bool
    ) -> list[tuple[bytes, bytes]] | None:
        """``headers`` without what :meth:`dropped` removes; ``None`` when nothing is removed."""
        drop, fold, prefix = self._drop, HEADER_FOLD, IDENTITY_PREFIX
        for name, _ in headers:  # the common case, nothing to drop: one translate and lookup each
            key = name.translate(fold)
            if (
                key in drop
                or key.startswith(prefix)
                or (key in TOKEN_HEADERS and (strip_tokens or key != name))
            ):
                break
        else:
            return None
        return [(n, v) for n, v in headers if self.dropped(n, strip_tokens=strip_tokens) is None]


# -- paths -----------------------------------------------------------------------------------------

# Bytes a path may hold without a closer look: unreserved, sub-delims other than ';', ':', '@', '/'.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,=:@/")
_PLAIN_BYTES = bytes(_PLAIN)
_ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
_CONTROLS = bytes([*range(0x21), 0x7F])


def _ascii_case_alias(char: str) -> bool:
    """A non-ASCII character that some case mapping turns into ASCII (dotless i -> ``I``, long s -> ``S``)."""
    return not char.isascii() and any(c.isascii() for c in char.upper() + char.lower() + char.casefold())


def _reading_problem(reading: bytes) -> str | None:
    """What is unsafe in one reading of the path (the raw bytes, or their decoding): C-level scans only."""
    if b";" in reading:
        for segment in reading.split(b"/"):
            if unquote_to_bytes(segment.split(b";", 1)[0]) in (b".", b".."):
                return "the path has a '.' or '..' segment (with ';' parameters)"
        return "the path has ';' parameters"
    if b"\\" in reading:
        return "the path has a backslash"
    if len(reading.translate(None, _CONTROLS)) != len(reading):
        return "the path has whitespace or a control character"
    if b"/." in reading and (b"/./" in reading or b"/../" in reading or reading.endswith((b"/.", b"/.."))):
        return "the path has a '.' or '..' segment"
    if b"//" in reading:  # an empty segment other than the last (one trailing '/' is fine)
        return "the path has an empty segment ('//')"
    return None


def _text_problem(text: str, *, case_insensitive: bool) -> str | None:
    """What is unsafe in the decoded path's characters (non-ASCII paths only)."""
    if not unicodedata.is_normalized("NFKC", text):
        return "the path has characters that Unicode normalisation (NFKC) changes"
    if case_insensitive and any(map(_ascii_case_alias, text)):
        return "the path has a character whose case folds to ASCII"
    return None


def unsafe_path(path: str, raw_path: bytes | None = None, *, case_insensitive: bool = False) -> str | None:
    """Why the request path cannot be matched safely, or ``None`` when it can (see the module docs).

    ``raw_path`` is the path as it came on the request line (ASGI ``raw_path``); without it the
    decoded ``path`` is judged alone. ``case_insensitive``: the policy matches paths ignoring case.
    """
    raw = raw_path if raw_path is not None else path.encode("utf-8", "surrogatepass")
    if not raw.startswith(b"/"):
        return "the path must start with '/'"
    if not raw.translate(None, _PLAIN_BYTES):  # the common case: plain ASCII, nothing encoded
        return _reading_problem(raw) if b"/." in raw or b"//" in raw else None
    problem = _reading_problem(raw)
    if problem is not None:
        return problem
    decoded = raw
    if b"%" in raw:
        decoded = unquote_to_bytes(raw)
        if decoded.count(b"/") != raw.count(b"/"):
            return "the path has an encoded '/'"
        problem = _reading_problem(decoded)
        if problem is not None:
            return problem + " once decoded"
        if _ESCAPE.search(decoded):
            return "the path is percent-encoded twice (an escape inside an escape)"
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return "the path is not UTF-8"
    if not text.isascii():
        return _text_problem(text, case_insensitive=case_insensitive)
    return None
