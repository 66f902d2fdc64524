"""Reading the guard's YAML: defaults, every option, and every problem reported at once with file:line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from keyless._limits import ServerLimits
from keyless.errors import ConfigurationError
from keyless.guard import GuardConfig, Verifier, config_from_mapping, load_config
from keyless.guard._config import PRESENT
from keyless.jose import Signer

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

FULL = f"""\
upstream: http://127.0.0.1:8080/
issuers:
  - kind: entra
    tenants: [{TENANT.upper()}]
    versions: [2]
  - kind: entra
    multi_tenant: true
    tenants: [0d5c4f0e-8f6a-4b4e-9d9a-2a1c3e4f5a6b]
  - kind: google
    audiences: [https://svc-abc-uc.a.run.app]
  - kind: keyless
    url: https://localhost:8443/
    tenants: [{TENANT}]
  - kind: oidc
    issuer: https://token.actions.githubusercontent.com
audiences: [api://blob-api, 6f2f3a1e-52a5-4c1e-9d1f-0b5b6c2d9e11]
algorithms: [RS256, ES256]
leeway: 30
required_claims: {{idtyp: app, oid: null, ver: ["1.0", "2.0"]}}
max_token_size: 8192
token_cache_size: 100
keys: {{max_age: 600, refresh_cooldown: 30, timeout: 2}}
ca_bundle: ca.pem
upstream_timeout: 10
upstream_connect_timeout: 1
policy:
  anonymous: [/healthz]
  rules:
    - path: /blobs/**
      methods: [GET]
      any_of: [Blob.Read, Blob.Write]
"""


def test_a_full_file_is_read_into_typed_settings(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(ssl.DER_cert_to_PEM_cert(Signer.generate().cert_der))
    path = tmp_path / "guard.yaml"
    path.write_text(FULL)
    config = load_config(path)
    assert isinstance(config, GuardConfig)
    assert [i.kind for i in config.issuers] == ["entra", "entra", "google", "keyless", "oidc"]
    assert config.issuers[0].tenants == (TENANT,)  # tenant ids are lower-cased
    assert config.issuers[0].versions == (2,)
    assert config.issuers[1].multi_tenant
    assert config.issuers[2].audiences == ("https://svc-abc-uc.a.run.app",)
    assert config.issuers[3].url == "https://localhost:8443"
    assert config.algorithms == ("RS256", "ES256")
    assert config.leeway == 30
    assert config.required_claims == (("idtyp", "app"), ("oid", PRESENT), ("ver", ("1.0", "2.0")))
    assert (config.max_token_size, config.token_cache_size) == (8192, 100)
    assert (config.keys_max_age, config.keys_refresh_cooldown, config.keys_timeout) == (600, 30, 2)
    assert config.ca_bundle == tmp_path / "ca.pem"
    assert config.upstream == "http://127.0.0.1:8080"
    assert (config.upstream_timeout, config.upstream_connect_timeout) == (10, 1)
    assert len(config.policy.rules) == 2
    issuers = Verifier(config).issuers.trusted()
    assert f"https://login.microsoftonline.com/{TENANT}/v2.0" in issuers
    assert f"https://sts.windows.net/{TENANT}/" not in issuers  # versions: [2]
    assert "https://accounts.google.com" in issuers
    assert f"https://localhost:8443/{TENANT}/" in issuers


def test_defaults_are_strict() -> None:
    config = config_from_mapping({"issuers": [{"kind": "google"}], "audiences": ["https://svc.run.app"]})
    assert config.algorithms == ("RS256",)
    assert config.leeway == 60
    assert config.max_token_size == 16 * 1024
    assert not config.allow_http_loopback_issuers
    assert config.policy.default == "authenticated"
    assert "no policy rules" in " ".join(config.development_warnings())


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text(
        "issuers:\n"  # 1
        "  - kind: entra\n"  # 2
        "    tenants: [contoso]\n"  # 3
        "  - kind: saml\n"  # 4
        "  - kind: oidc\n"  # 5
        "    issuer: http://idp.example.com\n"  # 6
        "algorithms: [RS256, HS256, none]\n"  # 7
        "leeway: -1\n"  # 8
        "max_token_sise: 100\n"  # 9
        "policy:\n"  # 10
        "  rules:\n"  # 11
        "    - path: blobs/*\n"  # 12
        "      any_of: [Blob.Read]\n"  # 13
        "    - path: /x\n"  # 14
        "      allow: everyone\n"  # 15
    )
    with pytest.raises(ConfigurationError) as error:
        load_config(path)
    problems = error.value.problems
    text = "\n".join(problems)
    expected = [
        (":3:", "'contoso' is not a tenant id"),
        (":4:", "must be one of oidc, entra, google, keyless"),
        (":6:", "https is required"),
        (":7:", "'HS256' is never accepted"),
        (":7:", "'none' is never accepted"),
        (":8:", "must be at least 0"),
        (":9:", "did you mean 'max_token_size'"),
        (":12:", "must start with '/'"),
        (":15:", "must be one of anonymous, authenticated, nobody"),
        ("audiences", "list this service's audiences"),
    ]
    for where, what in expected:
        assert any(where in p and what in p for p in problems), f"{where} {what} not in:\n{text}"
    assert all(p.startswith(str(path)) for p in problems)


def test_a_key_given_twice_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text("audiences: [a]\naudiences: [b]\nissuers: [{kind: google}]\n")
    with pytest.raises(ConfigurationError, match=r"guard.yaml:2: audiences: given more than once"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "guard.yaml"
    path.write_text("issuers:\n  - kind: google\n audiences: [x\n")
    with pytest.raises(ConfigurationError, match=r"guard.yaml:\d+: not valid YAML"):
        load_config(path)


def test_http_issuers_need_the_development_option_and_a_loopback_host() -> None:
    local = {"issuers": [{"kind": "oidc", "issuer": "http://127.0.0.1:9000"}], "audiences": ["a"]}
    with pytest.raises(ConfigurationError, match="https is required"):
        config_from_mapping(local)
    config = config_from_mapping({**local, "allow_http_loopback_issuers": True})
    assert "development only" in " ".join(config.development_warnings())
    remote = {"issuers": [{"kind": "oidc", "issuer": "http://idp.example.com"}], "audiences": ["a"]}
    with pytest.raises(ConfigurationError, match="https is required"):
        config_from_mapping({**remote, "allow_http_loopback_issuers": True})


def test_the_same_issuer_twice_is_refused() -> None:
    config = config_from_mapping(
        {
            "issuers": [{"kind": "google"}, {"kind": "oidc", "issuer": "https://accounts.google.com"}],
            "audiences": ["a"],
        }
    )
    with pytest.raises(ConfigurationError, match="more than once"):
        Verifier(config)


def test_a_policy_file_next_to_the_config_is_read_and_its_problems_folded_in(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("rules:\n  - path: /a\n    any_of: []\n")
    path = tmp_path / "guard.yaml"
    path.write_text("issuers: [{kind: google}]\naudiences: [a]\npolicy: policy.yaml\n")
    with pytest.raises(ConfigurationError, match=r"policy.yaml:3: rules\[0\].any_of: must list at least one"):
        load_config(path)
    (tmp_path / "policy.yaml").write_text("rules:\n  - path: /a\n    any_of: [R]\n")
    assert load_config(path).policy.rules[0].any_of == ("R",)


def test_a_ca_bundle_that_is_not_pem_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    data = {"issuers": [{"kind": "google"}], "audiences": ["a"], "ca_bundle": "ca.pem"}
    with pytest.raises(ConfigurationError, match="not a PEM bundle"):
        config_from_mapping(data, base_dir=tmp_path)


def test_a_missing_file_is_a_configuration_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_request_safety_options_are_read_and_default_to_strict() -> None:
    base = {"issuers": [{"kind": "google"}], "audiences": ["https://svc.run.app"]}
    strict = config_from_mapping(base)
    assert strict.forward_override_headers == frozenset()
    assert not strict.policy.case_insensitive_paths
    config = config_from_mapping(
        {
            **base,
            "forward_override_headers": ["X-Forwarded-Prefix", "forwarded"],
            "policy": {
                "case_insensitive_paths": True,
                "rules": [{"path": "/login", "allow": "anonymous", "forward_authorization": True}],
            },
        }
    )
    assert config.forward_override_headers == {b"x-forwarded-prefix", b"forwarded"}
    assert config.policy.case_insensitive_paths
    assert config.policy.rules[0].forward_authorization
    assert config.policy.match("GET", "/LOGIN") is config.policy.rules[0]


def test_request_safety_options_that_would_weaken_the_guard_are_problems() -> None:
    with pytest.raises(ConfigurationError) as error:
        config_from_mapping(
            {
                "issuers": [{"kind": "google"}],
                "audiences": ["https://svc.run.app"],
                "forward_override_headers": ["X-Keyless-Roles", "X-Forwarded-For", "Accept"],
                "policy": {
                    "rules": [{"path": "/a", "allow": "authenticated", "forward_authorization": True}]
                },
            }
        )
    text = "\n".join(error.value.problems)
    assert "'X-Keyless-Roles' cannot be allowed" in text
    assert "'X-Forwarded-For' cannot be allowed" in text
    assert "'Accept' is not an override header" in text
    assert "only an 'allow: anonymous' rule may forward" in text


def test_the_server_section_sets_the_proxy_s_resource_bounds() -> None:
    base = {"issuers": [{"kind": "google"}], "audiences": ["https://svc.run.app"]}
    assert config_from_mapping(base).server_limits == ServerLimits()
    config = config_from_mapping(
        {**base, "server": {"max_header_bytes": 16384, "header_timeout": 3, "max_connections": 50}}
    )
    assert config.server_limits == ServerLimits(max_header_bytes=16384, header_timeout=3, max_connections=50)
    with pytest.raises(ConfigurationError) as raised:
        config_from_mapping({**base, "server": {"max_header_bytes": 10, "max_conections": 5}})
    assert any("max_header_bytes" in p for p in raised.value.problems)
    assert any("max_conections" in p for p in raised.value.problems)
