"""Resolved trust documents (what ``keyless plan|apply`` send): the same document arrives on the
server, secret values included; bad secretText is refused; server problems point at file lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests._support.certs import make_client_certificate

from keyless.authority.trustfile.read import load_trust_file, parse_trust_document
from keyless.authority.trustfile.wire import from_wire, localize_problems, to_wire
from keyless.errors import ConfigurationError

TRUST = """\
tenants:
  - id: 72f988bf-86f1-41af-91ab-2d7cd011db47
    displayName: Contoso
    domains: [contoso.example]
    applications:
      - displayName: blob-api
        appId: 11111111-1111-1111-1111-111111111111
        api: {requestedAccessTokenVersion: 2}
        appRoles:
          - {value: Blob.Read}
      - displayName: caller
        appId: 22222222-2222-2222-2222-222222222222
        federatedIdentityCredentials:
          - {name: gsa, issuer: https://accounts.google.com, subject: "1122", description: d}
        passwordCredentials:
          - {displayName: ci, valueFrom: {env: TRUSTWIRE_SECRET}}
          - {displayName: kept, hint: abc}
        keyCredentials:
          - {certificateFile: caller.pem}
        appRoleAssignments:
          - {resource: blob-api, appRole: Blob.Read}
"""


@pytest.fixture
def trust_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUSTWIRE_SECRET", "the-secret-value-0123456789")
    (tmp_path / "caller.pem").write_bytes(make_client_certificate("caller").cert_pem)
    path = tmp_path / "trust.yaml"
    path.write_text(TRUST)
    return path


def test_the_server_receives_the_same_document_with_secret_values(trust_path: Path) -> None:
    local = load_trust_file(trust_path)
    received = from_wire(to_wire(local))
    assert received.tenants == local.tenants  # specs compare without their file places
    secrets = received.tenants[0].applications[1].secrets
    assert [(s.display_name, s.value, s.hint) for s in secrets] == [
        ("ci", "the-secret-value-0123456789", None),
        ("kept", None, "abc"),
    ]


def test_the_plain_trust_route_still_refuses_secret_values(trust_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="secrets come from env or file"):
        parse_trust_document(to_wire(load_trust_file(trust_path)))


def test_bad_secret_text_is_refused_with_its_place(trust_path: Path) -> None:
    wire = to_wire(load_trust_file(trust_path))
    secrets = wire["tenants"][0]["applications"][1]["passwordCredentials"]
    secrets[0]["secretText"] = ""
    secrets[1]["secretText"] = "x"
    with pytest.raises(ConfigurationError) as caught:
        from_wire(wire)
    assert caught.value.problems == [
        "<api>: tenants[0].applications[1].passwordCredentials[0]: secretText must be a non-empty string",
        "<api>: tenants[0].applications[1].passwordCredentials[1]: give secretText alone (not with hint or valueFrom)",
    ]


def test_server_problems_are_pointed_back_at_the_file(trust_path: Path) -> None:
    local = load_trust_file(trust_path)
    problems = localize_problems(
        [
            ("tenants[0].applications[1].passwordCredentials[1]", "caller/kept: no stored secret"),
            ("tenants[0].applications[1]", "too many credentials"),
            ("tenants[0].applications[1].federatedIdentityCredentials[0]", "clash"),
            ("elsewhere[3]", "not in the file"),
            (None, "something else"),
        ],
        local,
    )
    assert problems == [
        f"{trust_path}:17: caller/kept: no stored secret",
        f"{trust_path}:11: too many credentials",
        f"{trust_path}:11: clash",
        "<api>: elsewhere[3]: not in the file",
        "something else",
    ]
