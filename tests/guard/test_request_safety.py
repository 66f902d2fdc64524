"""The guard's path and header safety rules, as tables: every spelling an attacker used, and the
ordinary paths and headers that must keep working."""

from __future__ import annotations

import unicodedata

import pytest

from keyless.guard._request_safety import (
    FORWARDING_HEADERS,
    IDENTITY_HEADERS,
    OVERRIDE_HEADERS,
    HeaderFilter,
    HeaderKind,
    header_key,
    header_kind,
    override_allow_list,
    unsafe_path,
)

# (raw path as sent, why it is refused: a word of the reason, or None when it is safe)
PATHS = [
    # ordinary paths keep working
    ("/", None),
    ("/blobs/a", None),
    ("/blobs/a/", None),
    ("/.well-known/openid-configuration", None),
    ("/files/report.v2..final", None),
    ("/caf%C3%A9", None),
    ("/%E6%96%87%E6%9B%B8", None),
    ("/%EF%BD%81dmin/x", "NFKC"),
    ("/cafe%CC%81", "NFKC"),
    ("/100%25", None),
    ("/file%2etxt", None),
    ("/a:b@c/~x!$&'()*+,=", None),
    # dot segments in every spelling, with and without ';' parameters
    ("/public/../admin/x", "'..' segment"),
    ("/public/./x", "'..' segment"),
    ("/public/..", "'..' segment"),
    ("/public/..;/admin/x", "'..' segment"),
    ("/public/..;jsessionid=1/admin/x", "'..' segment"),
    ("/public/.;/x", "'..' segment"),
    ("/public/%2e%2e;/admin/x", "'..' segment"),
    ("/public/%2E%2E/admin/x", "'..' segment"),
    ("/public/%2e./admin/x", "'..' segment"),
    ("/public/..%3b/admin/x", "'..' segment"),
    ("/public/..%3B/admin/x", "'..' segment"),
    ("/public/%252e%252e/admin/x", "twice"),
    ("/public/%25252e%25252e/admin/x", "twice"),
    ("/public/\uff0e\uff0e/admin/x".encode().decode("latin-1"), "NFKC"),
    ("/public/%EF%BC%8E%EF%BC%8E/admin/x", "NFKC"),
    # empty segments, path parameters, whitespace and control characters
    ("//admin/x", "empty segment"),
    ("/admin//x", "empty segment"),
    ("/admin/x//", "empty segment"),
    ("/admin;x/y", "';' parameters"),
    ("/admin%3bx/y", "';' parameters"),
    ("/admin%20/x", "whitespace"),
    ("/admin%09/x", "whitespace"),
    ("/admin%0d%0a/x", "whitespace"),
    ("/admin%00/x", "whitespace"),
    ("/admin%7f/x", "whitespace"),
    ("/admin%2520/x", "twice"),
    # separators that are not '/'
    ("/a%2Fb", "encoded '/'"),
    ("/a%2fb", "encoded '/'"),
    ("/a%252fb", "twice"),
    ("/a%5Cb", "backslash"),
    ("/a\\b", "backslash"),
    ("/a%EF%BC%8Fb", "NFKC"),
    # encodings that cannot be read one way only
    ("/a%FF", "not UTF-8"),
    ("/a%C0%AE%C0%AE/x", "not UTF-8"),
    ("/x%2561dmin", "twice"),
    ("relative", "start with '/'"),
    ("*", "start with '/'"),
]


@pytest.mark.parametrize(("raw", "why"), PATHS, ids=[raw for raw, _ in PATHS])
def test_unsafe_paths_are_named_and_safe_paths_pass(raw: str, why: str | None) -> None:
    raw_bytes = raw.encode("latin-1")
    problem = unsafe_path("/ignored", raw_bytes)
    if why is None:
        assert problem is None
    else:
        assert problem is not None and why in problem


def test_without_a_raw_path_the_decoded_path_is_judged() -> None:
    assert unsafe_path("/public/../admin") is not None
    assert unsafe_path("/a b") is not None
    assert unsafe_path("/blobs/caf\u00e9") is None


@pytest.mark.parametrize(
    "path", ["/adm\u0131n/x", "/\u017fecret", "/\u212aeys", "/o\ufb00ice", "/ADM\u0130N"], ids=repr
)
def test_case_insensitive_policies_refuse_characters_whose_case_folds_to_ascii(path: str) -> None:
    raw = path.encode("utf-8")
    if unicodedata.is_normalized("NFKC", path):  # the others are refused as not NFKC anyway
        assert unsafe_path(path, raw) is None  # case-sensitive: a different path, nothing to confuse
    problem = unsafe_path(path, raw, case_insensitive=True)
    assert problem is not None and ("case folds to ASCII" in problem or "NFKC" in problem)
    assert unsafe_path("/caf\u00e9", "/caf\u00e9".encode(), case_insensitive=True) is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (b"X-Keyless-Roles", b"x-keyless-roles"),
        (b"X_Keyless_Roles", b"x-keyless-roles"),
        (b"x_keyless_email", b"x-keyless-email"),
        (b"X.Keyless.Email", b"x-keyless-email"),
        ("X-KEYLESS_Subject", b"x-keyless-subject"),
        (b"Content-Type", b"content-type"),
    ],
)
def test_header_names_fold_case_and_separators(name: bytes | str, key: bytes) -> None:
    assert header_key(name) == key


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"x-keyless-roles", HeaderKind.IDENTITY),
        (b"X_Keyless_Roles", HeaderKind.IDENTITY),
        (b"x-keyless-anything-new", HeaderKind.IDENTITY),
        (b"x_keyless_anything_new", HeaderKind.IDENTITY),
        (b"X-Forwarded-For", HeaderKind.FORWARDING),
        (b"x_forwarded_host", HeaderKind.FORWARDING),
        (b"authorization", HeaderKind.TOKEN),
        (b"X_Serverless_Authorization", HeaderKind.TOKEN),
        (b"Forwarded", HeaderKind.OVERRIDE),
        (b"X-Original-URL", HeaderKind.OVERRIDE),
        (b"X-Rewrite-URL", HeaderKind.OVERRIDE),
        (b"X-HTTP-Method-Override", HeaderKind.OVERRIDE),
        (b"X-Real-IP", HeaderKind.OVERRIDE),
        (b"X-Forwarded-Prefix", HeaderKind.OVERRIDE),
        (b"X-Forwarded-Port", HeaderKind.OVERRIDE),
        (b"x_original_url", HeaderKind.OVERRIDE),
        (b"Transfer-Encoding", HeaderKind.HOP_BY_HOP),
        (b"transfer_encoding", HeaderKind.HOP_BY_HOP),
        (b"content-type", None),
        (b"x-keyless", None),
        (b"x-request-id", None),
    ],
)
def test_header_kinds(name: bytes, kind: HeaderKind | None) -> None:
    assert header_kind(name) is kind


def test_every_identity_header_is_an_identity_header() -> None:
    assert {header_kind(name) for name in IDENTITY_HEADERS} == {HeaderKind.IDENTITY}
    assert not FORWARDING_HEADERS & OVERRIDE_HEADERS


def test_filter_drops_identity_and_override_headers_in_every_spelling() -> None:
    headers = [
        (b"x_keyless_roles", b"Admin"),
        (b"x-keyless-email", b"boss@corp"),
        (b"x-original-url", b"/admin"),
        (b"x_http_method_override", b"DELETE"),
        (b"authorization", b"Bearer t"),
        (b"x_serverless_authorization", b"Bearer forged"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"accept", b"*/*"),
    ]
    kept = HeaderFilter().clean(headers, strip_tokens=False)
    assert kept == [(b"authorization", b"Bearer t"), (b"x-forwarded-for", b"10.0.0.1"), (b"accept", b"*/*")]


def test_filter_strips_tokens_when_told_and_keeps_allowed_overrides() -> None:
    allowed, problems = override_allow_list(["X-Forwarded-Prefix"])
    assert problems == []
    headers = [
        (b"authorization", b"Bearer forged"),
        (b"x-serverless-authorization", b"Bearer forged"),
        (b"x-forwarded-prefix", b"/api"),
        (b"x-forwarded-port", b"8443"),
    ]
    kept = HeaderFilter(allowed).clean(headers, strip_tokens=True)
    assert kept == [(b"x-forwarded-prefix", b"/api")]


def test_filter_leaves_ordinary_requests_alone() -> None:
    headers = [(b"host", b"a"), (b"accept", b"*/*"), (b"authorization", b"Bearer t")]
    assert HeaderFilter().clean(headers, strip_tokens=False) is None


def test_only_override_headers_can_be_allowed() -> None:
    allowed, problems = override_allow_list(["x_real_ip", "X-Keyless-Roles", "X-Forwarded-For", "Accept"])
    assert allowed == {b"x-real-ip"}
    assert len(problems) == 3
    assert "identity" in problems[0] and "forwarding" in problems[1] and "not an override" in problems[2]
