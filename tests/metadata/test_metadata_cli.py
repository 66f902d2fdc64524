"""``keyless metadata``: a thin command that builds the configuration from flags, prints the
URLs and the environment clients need, and serves (serving is stubbed out here)."""

from __future__ import annotations

import json
import shlex

import pytest
import typer
from typer.testing import CliRunner

from keyless.cli import _metadata
from keyless.cli._metadata import client_instructions
from keyless.metadata import MetadataServer


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[MetadataServer]:
    started: list[MetadataServer] = []

    def serve_forever(self: MetadataServer) -> None:
        started.append(self)
        self.close()

    monkeypatch.setattr(MetadataServer, "serve_forever", serve_forever)
    return started


def invoke(*args: str) -> str:
    app = typer.Typer()
    app.command("metadata", help=_metadata.HELP)(_metadata.metadata)
    app.command("version")(lambda: None)  # a second command, so "metadata" is a sub-command
    result = CliRunner().invoke(app, ["metadata", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_prints_the_client_environment_and_serves(served: list[MetadataServer]) -> None:
    output = invoke("--port", "0")
    [server] = served
    assert server.config.issuer == "self"
    assert f"export GCE_METADATA_HOST={server.host_port}" in output
    assert f"export GCE_METADATA_IP={server.host_port}" in output
    assert "unset GOOGLE_APPLICATION_CREDENTIALS" in output
    assert f"{server.url}/.well-known/openid-configuration" in output
    assert "KEYLESS_ISSUER_OVERRIDES" not in output


def test_flags_configure_the_default_account_and_project(served: list[MetadataServer]) -> None:
    invoke(
        "--port", "0", "--project", "my-proj", "--project-number", "716149158341",
        "--account", "ci@my-proj.iam.gserviceaccount.com", "--unique-id", "109876543210987654321",
        "--zone", "europe-west1-b",
    )  # fmt: skip
    config = served[0].config
    assert (config.project_id, config.numeric_project_id, config.zone) == (
        "my-proj",
        716149158341,
        "europe-west1-b",
    )
    assert config.default_account.email == "ci@my-proj.iam.gserviceaccount.com"
    assert config.default_account.unique_id == "109876543210987654321"


def test_google_mode_warns_and_prints_the_development_authority_settings(
    served: list[MetadataServer],
) -> None:
    output = invoke("--port", "0", "--issuer", "google")
    server = served[0]
    assert "!!! ISSUER MODE 'google'" in output
    assert "KEYLESS_DEV_MODE=true" in output
    assert server.issuer.issuer == "https://accounts.google.com"


def test_the_authority_line_sets_a_json_override_the_settings_parse() -> None:
    lines = client_instructions("http://127.0.0.1:8080", "127.0.0.1:8080", "google")
    words = shlex.split(lines[-1])
    settings = dict(word.split("=", 1) for word in words if "=" in word)
    assert settings["KEYLESS_DEV_MODE"] == "true"
    assert settings["KEYLESS_ALLOW_HTTP_LOOPBACK_ISSUERS"] == "true"
    assert json.loads(settings["KEYLESS_ISSUER_OVERRIDES"]) == {
        "https://accounts.google.com": "http://127.0.0.1:8080/.well-known/openid-configuration"
    }
    assert words[-2:] == ["keyless", "serve"]


def test_a_bad_flag_value_is_a_configuration_problem(served: list[MetadataServer]) -> None:
    app = typer.Typer()
    app.command("metadata")(_metadata.metadata)
    app.command("version")(lambda: None)
    result = CliRunner().invoke(app, ["metadata", "--port", "0", "--unique-id", "42"])
    assert result.exit_code != 0
    assert "21 digits" in str(result.exception)
    assert served == []
