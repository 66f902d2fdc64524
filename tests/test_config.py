"""Settings: defaults in one place, every problem reported at once, loud development warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError


def test_defaults_serve_https_on_8443_with_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_authority_settings()
    assert settings.base_url == "https://localhost:8443"
    assert settings.database.startswith("sqlite:///") and settings.database.endswith(".keyless/keyless.db")
    assert settings.assertion_algorithms == ("RS256",)


def test_environment_prefix_is_keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYLESS_PORT", "9443")
    monkeypatch.setenv(
        "KEYLESS_ISSUER_OVERRIDES", '{"https://accounts.google.com": "http://127.0.0.1:8080/x"}'
    )
    monkeypatch.setenv("KEYLESS_DEV_MODE", "true")
    settings = load_authority_settings()
    assert settings.port == 9443
    assert settings.issuer_overrides == {"https://accounts.google.com": "http://127.0.0.1:8080/x"}
    assert any("ISSUER OVERRIDE" in w for w in settings.development_warnings())


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_authority_settings(
            token_lifetime_min=7200,
            token_lifetime_max=3600,
            tls_cert=Path("/x.pem"),
            allow_http_loopback_issuers=True,
            assertion_algorithms=("none", "HS256"),
        )
    problems = refused.value.problems
    assert len(problems) == 4
    assert any("LIFETIME" in p for p in problems)
    assert any("TLS_KEY" in p for p in problems)
    assert any("HTTP_LOOPBACK" in p for p in problems)
    assert any("none" in p and "HS256" in p for p in problems)


def test_type_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYLESS_PORT", "not-a-port")
    with pytest.raises(ConfigurationError, match="KEYLESS_PORT"):
        load_authority_settings()
