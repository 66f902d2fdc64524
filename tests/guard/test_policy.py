"""The policy: glob patterns, methods, first match wins, default deny, roles and scopes, principals,
anonymous paths, paths that cannot be matched safely, and problems reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keyless.errors import ConfigurationError
from keyless.guard import Identity, Policy, load_policy, policy_from_mapping
from keyless.guard._policy import compile_pattern, unsafe_path


def caller(roles: tuple[str, ...] = (), scopes: tuple[str, ...] = (), **fields: Any) -> Identity:
    values: dict[str, Any] = {
        "subject": "sub-1",
        "issuer": "https://issuer",
        "object_id": "oid-1",
        "app_id": "app-1",
        "tenant_id": None,
        "roles": roles,
        "scopes": scopes,
        "email": None,
        "expires": 2e9,
        "claims": {},
        "issuer_kind": "oidc",
    }
    values.update(fields)
    return Identity(**values)


POLICY = policy_from_mapping(
    {
        "anonymous": ["/healthz", "/public/**"],
        "rules": [
            {"path": "/blobs/**", "methods": ["GET"], "any_of": ["Blob.Read", "Blob.Write"]},
            {"path": "/blobs/**", "methods": ["PUT", "DELETE"], "all_of": ["role:Blob.Write", "scope:write"]},
            {"path": "/admin/*", "principals": ["ops@proj.iam.gserviceaccount.com", "app-9"]},
            {"path": "/internal/**", "allow": "nobody"},
            {"paths": ["/whoami", "/me"], "allow": "authenticated"},
        ],
    }
)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/blobs/*", "/blobs/a", True),
        ("/blobs/*", "/blobs/a/b", False),
        ("/blobs/*", "/blobs/", True),
        ("/blobs/**", "/blobs", True),
        ("/blobs/**", "/blobs/a/b/c", True),
        ("/blobs/**", "/blobsmith", False),
        ("/a/**/z", "/a/z", True),
        ("/a/**/z", "/a/b/c/z", True),
        ("/file.?", "/file.x", True),
        ("/file.?", "/file/x", False),
        ("/v1.0/x", "/v100/x", False),  # dots are literal
    ],
)
def test_glob_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_pattern(pattern).fullmatch(path)) is matches


def test_anonymous_paths_need_no_token() -> None:
    decision = POLICY.decide(None, "GET", "/healthz")
    assert (decision.allowed, decision.status) == (True, 200)
    assert POLICY.decide(None, "POST", "/public/a/b").allowed


def test_without_a_token_a_protected_path_is_401() -> None:
    decision = POLICY.decide(None, "GET", "/blobs/a")
    assert (decision.allowed, decision.status) == (False, 401)


def test_any_of_accepts_a_role_or_a_scope() -> None:
    assert POLICY.decide(caller(roles=("Blob.Write",)), "GET", "/blobs/a").allowed
    assert POLICY.decide(caller(scopes=("Blob.Read",)), "GET", "/blobs/a").allowed
    denied = POLICY.decide(caller(roles=("Other",)), "GET", "/blobs/a")
    assert (denied.allowed, denied.status) == (False, 403)
    assert "needs one of [Blob.Read, Blob.Write]" in denied.reason
    assert "roles [Other]" in denied.reason
    assert denied.required == ("Blob.Read", "Blob.Write")


def test_get_rules_cover_head() -> None:
    assert POLICY.decide(caller(roles=("Blob.Read",)), "HEAD", "/blobs/a").allowed


def test_all_of_with_exact_role_and_scope_prefixes() -> None:
    both = caller(roles=("Blob.Write",), scopes=("write",))
    assert POLICY.decide(both, "PUT", "/blobs/a").allowed
    swapped = caller(roles=("write",), scopes=("Blob.Write",))
    denied = POLICY.decide(swapped, "PUT", "/blobs/a")
    assert denied.status == 403
    assert "missing [role:Blob.Write, scope:write]" in denied.reason


def test_principals_match_subject_object_app_or_email() -> None:
    assert POLICY.decide(caller(email="ops@proj.iam.gserviceaccount.com"), "GET", "/admin/x").allowed
    assert POLICY.decide(caller(app_id="app-9"), "POST", "/admin/x").allowed
    assert POLICY.decide(caller(), "GET", "/admin/x").status == 403


def test_nobody_denies_even_valid_callers() -> None:
    assert POLICY.decide(caller(roles=("Blob.Read",)), "GET", "/internal/x").status == 403


def test_first_match_wins() -> None:
    policy = policy_from_mapping(
        {"rules": [{"path": "/a/**", "allow": "nobody"}, {"path": "/a/b", "allow": "authenticated"}]}
    )
    assert policy.decide(caller(), "GET", "/a/b").status == 403


def test_default_is_deny_and_can_be_authenticated() -> None:
    denied = POLICY.decide(caller(roles=("Blob.Read",)), "GET", "/elsewhere")
    assert (denied.status, "default: deny" in denied.reason) == (403, True)
    open_policy = policy_from_mapping({"default": "authenticated"})
    assert open_policy.decide(caller(), "GET", "/elsewhere").allowed
    assert Policy.allow_authenticated().decide(None, "GET", "/x").status == 401


@pytest.mark.parametrize(
    ("path", "raw", "unsafe"),
    [
        ("/blobs/a", b"/blobs/a", False),
        ("/public/../admin", b"/public/../admin", True),
        ("/public/./x", b"/public/./x", True),
        ("/a\\b", b"/a%5Cb", True),
        ("/a/b", b"/a%2Fb", True),
        ("/a/b", b"/a%2fb", True),
        ("relative", b"relative", True),
        ("/a\x00", b"/a%00", True),
        ("/caf\u00e9", b"/caf%C3%A9", False),
    ],
)
def test_paths_that_cannot_be_matched_safely(path: str, raw: bytes, unsafe: bool) -> None:
    assert (unsafe_path(path, raw) is not None) is unsafe


def test_policy_file_problems_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "default: maybe\n"
        "rules:\n"
        "  - methods: [FETCH]\n"
        "    any_of: [x]\n"
        "  - path: /a\n"
        "  - path: /b\n"
        "    allow: anonymous\n"
        "    all_of: [y]\n"
        "  - path: /c\n"
        "    role: z\n"
    )
    with pytest.raises(ConfigurationError) as error:
        load_policy(path)
    text = "\n".join(error.value.problems)
    for expected in (
        "policy.yaml:1: default: must be one of deny, authenticated",
        "policy.yaml:3: rules[0]: a rule needs 'path'",
        "unknown HTTP method 'FETCH'",
        "policy.yaml:5: rules[1]: a rule needs 'allow'",
        "policy.yaml:6: rules[2]: give either 'allow' or requirements",
        "policy.yaml:10: rules[3].role: unknown option; known: all_of, allow",
    ):
        assert expected in text, text


def test_a_policy_file_may_wrap_its_rules_in_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("policy:\n  anonymous: [/healthz]\n  default: authenticated\n")
    policy = load_policy(path)
    assert policy.default == "authenticated"
    assert policy.is_anonymous("GET", "/healthz")


def test_consecutive_double_star_segments_mean_one() -> None:
    assert compile_pattern("/a/**/**").fullmatch("/a")
    assert compile_pattern("/a/**/**/b").fullmatch("/a/b")
    assert compile_pattern("/a/**/**").fullmatch("/a/x/y")


def test_case_insensitive_policies_match_paths_ignoring_case() -> None:
    data = {"rules": [{"path": "/admin/**", "allow": "nobody"}], "default": "authenticated"}
    assert policy_from_mapping(data).match("GET", "/Admin/x") is None
    folded = policy_from_mapping({**data, "case_insensitive_paths": True})
    assert folded.match("GET", "/Admin/x") is folded.rules[0]
    assert folded.match("GET", "/ADMIN") is folded.rules[0]
