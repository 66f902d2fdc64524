"""Fuzz the guard's request rules: the path check and the policy's path matcher, and the header
filtering of the proxy and the middleware.

Properties, each over generated input:

* ``unsafe_path`` never raises, whatever the bytes;
* a path it accepts is read the same by a normalising upstream (servlet containers, IIS: ``;``
  stripped, dot and empty segments resolved, decoded again, NFKC, case folded) as by the policy;
* the policy's glob matcher agrees with a segment-by-segment reference matcher, case-insensitively
  too, and ``Policy.decide`` answers 200/401/403 for any path;
* no spelling of a guard-owned, token or override header that a CGI/WSGI server (or PHP) would read
  as the real one gets through the proxy or the middleware from the client.
"""

from __future__ import annotations

import asyncio
import fnmatch
import posixpath
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._support.path_readings import part_of_path, resolve_like_a_servlet_container

from keyless.guard import GuardProxy, Policy, Rule, config_from_mapping, policy_from_mapping
from keyless.guard._gate import Outcome
from keyless.guard._identity import identity_from_claims
from keyless.guard._request_safety import (
    FORWARDING_HEADERS,
    IDENTITY_HEADERS,
    OVERRIDE_HEADERS,
    TOKEN_HEADERS,
    HeaderFilter,
    HeaderKind,
    header_kind,
    unsafe_path,
)

# -- paths ----------------------------------------------------------------------------------------------

_PLAIN_PIECES = st.sampled_from(
    [
        "admin",
        "Admin",
        "ADMIN",
        "public",
        "blobs",
        "x",
        "a",
        "...",
        "%61",
        "%41",
        "%C3%A9",
        "~",
        "-",
        "@",
        "+",
    ]
)
_TRICKY_PIECES = st.sampled_from(
    [
        ".", "..", "%2e", "%2E", "%252e", ";", ";x=1", "%3b", "%3B", "%2f", "%2F", "%252f", "%5c", "\\",
        "%20", "%09", "%00", "%0a", "%7f", "%25", "%2561", "%C4%B1", "%C4%B0", "%C5%BF", "%E2%84%AA",
        "%EF%BD%81", "%EF%BC%8E", "%C0%AE", "%FF", "e%CC%81", "%", "%%", "%2", "",
    ]
)  # fmt: skip
# Mostly harmless pieces, so that many generated paths are accepted and their readings compared.
_SEGMENT = st.lists(st.one_of(_PLAIN_PIECES, _PLAIN_PIECES, _PLAIN_PIECES, _TRICKY_PIECES), max_size=4).map(
    "".join
)
_RAW_PATHS = st.lists(_SEGMENT, min_size=1, max_size=6).map(lambda segments: "/" + "/".join(segments))
_POLICY = {
    "anonymous": ["/public", "/public/**"],
    "rules": [
        {"paths": ["/admin", "/admin/**"], "allow": "nobody"},
        {"paths": ["/blobs", "/blobs/**"], "any_of": ["Blob.Read"]},
    ],
    "default": "authenticated",
}
_POLICIES = {ci: policy_from_mapping({**_POLICY, "case_insensitive_paths": ci}) for ci in (False, True)}


def _part_of_rule(policy: Policy, path: str) -> str:
    rule = policy.match("GET", path)
    return "other" if rule is None else rule.patterns[0].split("/")[1]


@given(st.binary(max_size=200), st.booleans())
def test_unsafe_path_never_raises_on_any_bytes(raw: bytes, case_insensitive: bool) -> None:
    problem = unsafe_path(raw.decode("latin-1"), raw, case_insensitive=case_insensitive)
    assert problem is None or isinstance(problem, str)
    text_problem = unsafe_path(raw.decode("utf-8", "replace"), case_insensitive=case_insensitive)
    assert text_problem is None or isinstance(text_problem, str)


@given(_RAW_PATHS, st.booleans())
def test_every_path_the_guard_accepts_is_read_alike_by_a_normalising_upstream(
    raw: str, case_insensitive: bool
) -> None:
    if unsafe_path(unquote(raw), raw.encode("latin-1"), case_insensitive=case_insensitive) is not None:
        return  # refused: the upstream never sees it
    policy_path = unquote(raw)  # what uvicorn puts in scope["path"] and the policy matches
    upstream_path = resolve_like_a_servlet_container(unquote(raw, "latin-1"), ignore_case=case_insensitive)
    expected = posixpath.normpath(policy_path)
    assert upstream_path == (expected.upper().lower() if case_insensitive else expected)
    policy = _POLICIES[case_insensitive]
    assert part_of_path(upstream_path, ignore_case=case_insensitive) == _part_of_rule(policy, policy_path)


# -- the policy's matcher -------------------------------------------------------------------------------

_PATTERN_SEGMENTS = st.sampled_from(["a", "b", "ab", "A", "*", "a*", "*b", "?", "a?", "**"])
_PATH_SEGMENTS = st.sampled_from(["a", "b", "ab", "ba", "A", "aB", "abc", "", "c"])


def _reference(pattern: list[str], path: list[str]) -> bool:
    """Segment globbing: ``**`` is any number of segments, ``*``/``?`` stay within one segment."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_reference(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatch.fnmatchcase(path[0], head) and _reference(rest, path[1:])


@given(st.lists(_PATTERN_SEGMENTS, min_size=1, max_size=4), st.lists(_PATH_SEGMENTS, max_size=5))
def test_the_policy_matcher_agrees_with_segment_globbing(pattern: list[str], path: list[str]) -> None:
    glob, target = "/" + "/".join(pattern), "/" + "/".join(path)
    expected = _reference(pattern, path if path else [""])
    if pattern[-1] == "**" and len(pattern) > 1 and not path:
        expected = _reference(pattern[:-1], [""]) or expected
    if pattern[-1] == "**" and path == pattern[:-1]:
        expected = True  # "/api/**" also matches "/api"
    rule = Rule.build([glob], allow="authenticated")
    assert rule.matches("GET", target) is expected, (glob, target)
    folded = _reference([p.lower() for p in pattern], [s.lower() for s in path] if path else [""])
    if pattern[-1] == "**" and [s.lower() for s in path] == [p.lower() for p in pattern[:-1]]:
        folded = True
    assert rule.ignoring_case().matches("GET", target) is (folded or expected), (glob, target)


@given(_RAW_PATHS, st.sampled_from(["GET", "HEAD", "POST", "DELETE", "get"]), st.booleans(), st.booleans())
def test_the_policy_decides_any_path_without_raising(
    raw: str, method: str, with_identity: bool, case_insensitive: bool
) -> None:
    identity = (
        identity_from_claims({"sub": "s", "iss": "i", "roles": ["Blob.Read"]}, kind="oidc", expires=0)
        if with_identity
        else None
    )
    decision = _POLICIES[case_insensitive].decide(identity, method, unquote(raw))
    assert decision.status in (200, 401, 403)


# -- headers --------------------------------------------------------------------------------------------

_GUARDED = sorted(
    {n.lower().encode() for n in IDENTITY_HEADERS} | FORWARDING_HEADERS | OVERRIDE_HEADERS | TOKEN_HEADERS
)


def _cgi_key(name: bytes) -> str:
    """The environ key a CGI/WSGI server (and PHP, which also turns '.' into '_') makes of a header."""
    return "HTTP_" + name.decode("latin-1").upper().replace("-", "_").replace(".", "_")


@st.composite
def _spellings(draw: st.DrawFn) -> bytes:
    """A guard-owned, token or override header name in some spelling a CGI server reads the same."""
    name = draw(st.sampled_from(_GUARDED)).decode()
    letters = [c.upper() if c.isalpha() and draw(st.booleans()) else c for c in name]
    return "".join(draw(st.sampled_from("-_.")) if c == "-" else c for c in letters).encode()


_ORDINARY = st.from_regex(rb"\A[a-z][a-z0-9\-_]{0,20}\Z")
_NAMES = st.one_of(_spellings(), _ORDINARY, st.sampled_from([b"x-keyless-new", b"x_keyless_", b"host"]))


@pytest.fixture(scope="module")
def proxy() -> Iterator[GuardProxy]:
    config = config_from_mapping(
        {
            "issuers": [{"kind": "google"}],
            "audiences": ["https://svc.example"],
            "forward_override_headers": ["X-Forwarded-Prefix"],
        }
    )
    made = GuardProxy("http://127.0.0.1:9", config=config)
    yield made
    asyncio.run(made.aclose())


@given(_spellings())
def test_no_spelling_of_an_identity_or_override_header_passes_the_middleware_filter(name: bytes) -> None:
    kind = header_kind(name)
    assert kind is not None
    dropped = HeaderFilter().dropped(name.lower(), strip_tokens=False)
    if kind in (HeaderKind.IDENTITY, HeaderKind.OVERRIDE):
        assert dropped is kind
    if kind is HeaderKind.TOKEN and b"-" in name and name.lower() not in TOKEN_HEADERS:
        assert dropped is HeaderKind.TOKEN


@given(st.lists(_NAMES, max_size=12), st.sampled_from(["anonymous", "verified", "via-serverless"]))
def test_nothing_the_client_sends_reaches_the_upstream_under_a_guard_key(
    proxy: GuardProxy, names: list[bytes], path_kind: str
) -> None:
    headers = [(name.lower(), b"client-%d" % index) for index, name in enumerate(names)]
    identity = identity_from_claims({"sub": "s", "iss": "https://i"}, kind="oidc", expires=0)
    if path_kind == "anonymous":
        outcome = Outcome(True, 200, "anonymous", "anonymous path")
    else:
        token_header = b"authorization" if path_kind == "verified" else b"x-serverless-authorization"
        outcome = Outcome(True, 200, "allowed", "allowed", identity, token_header)
    forwarded, _ = proxy._upstream_headers({"headers": headers, "client": ("127.0.0.1", 1)}, outcome)
    guard_keys = {_cgi_key(n) for n in _GUARDED if n != b"x-forwarded-prefix"}
    from_client = [name for name, value in forwarded if value.startswith(b"client-")]
    for name in from_client:
        if name in FORWARDING_HEADERS:
            continue  # set by the proxy itself (X-Forwarded-Host carries the client's Host), once
        key = _cgi_key(name)
        assert not key.startswith("HTTP_X_KEYLESS"), name
        if key == "HTTP_AUTHORIZATION":
            assert path_kind == "via-serverless" and name == b"authorization"
            continue
        if key == "HTTP_X_FORWARDED_PREFIX":
            assert name == b"x-forwarded-prefix"  # allowed, in its own spelling only
            continue
        assert key not in guard_keys, name
    for owned in FORWARDING_HEADERS:
        assert [_cgi_key(n) for n, _ in forwarded].count(_cgi_key(owned)) <= 1
    keyless = [name for name, _ in forwarded if name.startswith(b"x-keyless-")]
    assert len(keyless) == len(set(keyless))
    assert bool(keyless) is (path_kind != "anonymous")
