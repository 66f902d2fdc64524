"""``keyless token``: a token through any source, printed raw, decoded (with readable times and a
warning that the signature is not checked), or as JSON; the assertion itself on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.credential.conftest import SUBJECT
from typer.testing import CliRunner

from keyless.cli._token import HELP, describe_times, token
from keyless.credential import CredentialUnavailableError, decode_unverified

app = typer.Typer()
app.callback()(lambda: None)
app.command("token", help=HELP)(token)
CLEAN = dict.fromkeys(
    ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "KEYLESS_TENANT_ID")
)


@pytest.fixture
def arguments(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, tmp_path: Path
) -> list[str]:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint(sub=SUBJECT))
    return [
        "token",
        federation.scope,
        "--tenant",
        federation.tenant_id,
        "--client-id",
        federation.client.app_id,
        "--authority",
        authority.base_url,
        "--file",
        str(token_file),
        "--ca-file",
        str(authority.ca_file),
    ]


def test_the_token_alone_is_printed_for_scripts(arguments: list[str], federation: Federation) -> None:
    result = CliRunner().invoke(app, arguments, env=CLEAN)
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert "\n" not in printed
    assert decode_unverified(printed)[1]["roles"] == ["Blob.Read"]


def test_decode_shows_header_claims_and_readable_times_without_checking_the_signature(
    arguments: list[str], federation: Federation
) -> None:
    result = CliRunner().invoke(app, [*arguments, "--decode"], env=CLEAN)
    assert result.exit_code == 0, result.output
    assert "signature is NOT checked" in result.stderr
    assert "token file" in result.stderr
    assert '"alg": "RS256"' in result.stdout
    assert f'"azp": "{federation.client.app_id}"' in result.stdout
    assert "exp  " in result.stdout
    assert " UTC (in " in result.stdout


def test_json_output_carries_the_token_its_times_and_the_decoded_claims(
    arguments: list[str], federation: Federation
) -> None:
    result = CliRunner().invoke(app, [*arguments, "--json", "--decode"], env=CLEAN)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["token_type"] == "Bearer"
    # the client's request time + expires_in: the server's exp, or a second earlier across a tick
    assert body["refresh_on"] < body["expires_on"] <= body["claims"]["exp"] <= body["expires_on"] + 1
    assert body["signature_checked"] is False
    assert body["tenant_id"] == federation.tenant_id
    assert body["source"].startswith("token file ")


def test_the_assertion_can_be_shown_instead_of_exchanged(arguments: list[str]) -> None:
    result = CliRunner().invoke(app, [*arguments, "--assertion", "--json", "--decode"], env=CLEAN)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["claims"]["sub"] == SUBJECT


def test_missing_settings_are_a_keyless_error_for_the_cli_to_report() -> None:
    result = CliRunner().invoke(app, ["token", "api://x/.default", "--source", "env"], env=CLEAN)
    assert isinstance(result.exception, CredentialUnavailableError)
    assert "tenant_id" in str(result.exception)


def test_times_are_described_relative_to_now() -> None:
    assert describe_times({"iat": 1000, "exp": 4600, "nbf": "x"}, now=1060) == [
        "iat  1000  1970-01-01 00:16:40 UTC (60 s ago)",
        "exp  4600  1970-01-01 01:16:40 UTC (in 59 min)",
    ]
