"""``keyless tenant | app | fic | secret | cert | role``: list, show, create and delete over the
admin API, as rich tables and as ``--json``; not found is exit 1; secrets are printed once."""

from __future__ import annotations

import json
from pathlib import Path

from tests._support.authority_server import RunningAuthority
from tests._support.certs import make_client_certificate
from tests.cli.conftest import Cli, Names


def ok(cli: Cli, *args: str) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def as_json(cli: Cli, *args: str) -> object:
    return json.loads(ok(cli, *args, "--json"))


def test_tenant_and_app_lifecycle_with_tables_and_json(cli: Cli, names: Names) -> None:
    created = as_json(cli, "tenant", "create", "Northwind", "--id", names.tenant_id, "--domain", names.domain)
    assert created == {
        "id": names.tenant_id,
        "displayName": "Northwind",
        "domains": [names.domain],
        "signingAlgorithm": "RS256",
        "detailedErrors": True,  # the module's authority runs in development mode
        "maxFederatedIdentityCredentialsPerApp": 20,
    }
    assert names.tenant_id in ok(cli, "tenant", "list")
    api = as_json(
        cli,
        "app",
        "create",
        names.domain,
        "orders-api",
        "--identifier-uri",
        "api://orders",
        "--role",
        "Orders.Read",
    )
    assert isinstance(api, dict) and [r["value"] for r in api["appRoles"]] == ["Orders.Read"]
    ok(cli, "app", "create", names.domain, "orders-client", "--app-id", names.caller_app)
    listed = ok(cli, "app", "list", names.domain)
    assert "orders-api" in listed and "api://orders" in listed and names.caller_app in listed
    shown = ok(cli, "tenant", "show", names.domain)
    assert "Northwind" in shown and "orders-client" in shown
    ok(cli, "app", "delete", names.domain, "orders-client")
    gone = cli("app", "show", names.domain, "orders-client")
    assert gone.exit_code == 1 and "orders-client" in gone.stderr
    ok(cli, "tenant", "delete", names.tenant_id)
    assert cli("tenant", "show", names.tenant_id).exit_code == 1


def test_tenants_created_outside_development_mode_keep_entra_errors(tmp_path: Path) -> None:
    from tests._support.authority_server import run_authority

    with run_authority(tmp_path) as running:
        other = Cli(running.data_dir)
        plain = as_json(other, "tenant", "create", "Plain")
        assert isinstance(plain, dict) and plain["detailedErrors"] is False
        chosen = as_json(other, "tenant", "create", "Chosen", "--detailed-errors")
        assert isinstance(chosen, dict) and chosen["detailedErrors"] is True


def _tenant_with_app(cli: Cli, names: Names) -> None:
    ok(cli, "tenant", "create", "Northwind", "--id", names.tenant_id, "--domain", names.domain)
    ok(cli, "app", "create", names.domain, "caller", "--app-id", names.caller_app)


def test_fic_create_show_update_delete(cli: Cli, names: Names) -> None:
    _tenant_with_app(cli, names)
    ok(
        cli, "fic", "create", names.domain, "caller", "--name", "gh-main",
        "--issuer", "https://token.actions.githubusercontent.com", "--subject", "repo:nw/app:ref:refs/heads/main",
    )  # fmt: skip
    shown = as_json(cli, "fic", "show", names.domain, "caller", "gh-main")
    assert isinstance(shown, dict) and shown["audiences"] == ["api://AzureADTokenExchange"]
    updated = as_json(
        cli, "fic", "update", names.domain, "caller", "gh-main", "--subject", "repo:nw/app:pull_request"
    )
    assert isinstance(updated, dict) and updated["subject"] == "repo:nw/app:pull_request"
    assert "repo:nw/app:pull_request" in ok(cli, "fic", "list", names.domain, "caller")
    bad = cli("fic", "create", names.domain, "caller", "--name", "x", "--issuer", "ftp://a", "--subject", "s")
    assert bad.exit_code == 2 and "must be 3-120 characters" in bad.stderr and "OIDC issuer URL" in bad.stderr
    duplicate = cli(
        "fic",
        "create",
        names.domain,
        "caller",
        "--name",
        "gh-main",
        "--issuer",
        "https://a.example",
        "--subject",
        "s",
    )
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr
    ok(cli, "fic", "delete", names.domain, "caller", "gh-main")
    assert as_json(cli, "fic", "list", names.domain, "caller") == []


def test_a_new_secret_is_printed_once_and_listed_only_by_hint(cli: Cli, names: Names) -> None:
    _tenant_with_app(cli, names)
    result = cli("secret", "create", names.domain, "caller", "--name", "ci", "--days", "30")
    assert result.exit_code == 0
    value = result.stdout.strip().splitlines()[-1]
    assert len(value) >= 32 and "shown once" in result.stderr
    listed = as_json(cli, "secret", "list", names.domain, "caller")
    assert isinstance(listed, list) and listed[0]["hint"] == value[:3] and listed[0]["secretText"] is None
    assert value not in ok(cli, "secret", "show", names.domain, "caller", "ci")
    ok(cli, "secret", "delete", names.domain, "caller", "ci")
    assert as_json(cli, "secret", "list", names.domain, "caller") == []
    assert cli("secret", "delete", names.domain, "caller", "ci").exit_code == 1


def test_certificates_are_added_from_a_file_and_found_by_thumbprint(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    _tenant_with_app(cli, names)
    cert = make_client_certificate("northwind caller")
    (tmp_path / "caller.pem").write_bytes(cert.cert_pem)
    added = as_json(cli, "cert", "create", names.domain, "caller", "--file", str(tmp_path / "caller.pem"))
    assert isinstance(added, dict) and added["customKeyIdentifier"] == cert.sha1_hex
    assert "CN=northwind caller" in ok(cli, "cert", "show", names.domain, "caller", cert.sha1_hex)
    ok(cli, "cert", "delete", names.domain, "caller", added["keyId"])
    assert as_json(cli, "cert", "list", names.domain, "caller") == []
    missing = cli("cert", "create", names.domain, "caller", "--file", str(tmp_path / "nope.pem"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr


def test_role_assignments_by_names(cli: Cli, names: Names) -> None:
    _tenant_with_app(cli, names)
    ok(cli, "app", "create", names.domain, "blob-api", "--role", "Blob.Read", "--role", "Blob.Write")
    created = as_json(
        cli,
        "role",
        "create",
        names.domain,
        "--client",
        "caller",
        "--resource",
        "blob-api",
        "--role",
        "Blob.Read",
    )
    assert isinstance(created, dict) and created["appRoleValue"] == "Blob.Read"
    assert "Blob.Read" in ok(cli, "role", "list", names.domain, "--client", "caller")
    assert as_json(cli, "role", "show", names.domain, created["id"]) == created
    unknown = cli(
        "role", "create", names.domain, "--client", "caller", "--resource", "blob-api", "--role", "Blob.Admin"
    )
    assert unknown.exit_code == 2 and "not found" in unknown.stderr
    ok(
        cli,
        "role",
        "delete",
        names.domain,
        "--client",
        "caller",
        "--resource",
        "blob-api",
        "--role",
        "Blob.Read",
    )
    assert as_json(cli, "role", "list", names.domain) == []


def test_unknown_tenant_is_not_found_with_exit_1(cli: Cli, live: RunningAuthority) -> None:
    result = cli("app", "list", "nowhere.example")
    assert result.exit_code == 1
    assert "Tenant 'nowhere.example' does not exist." in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_rotate_shows_the_new_key_in_the_list(cli: Cli, names: Names) -> None:
    ok(cli, "tenant", "create", "Northwind", "--id", names.tenant_id)
    rotated = as_json(cli, "keys", "rotate", names.tenant_id, "--publish-delay", "3600")
    assert isinstance(rotated, dict) and rotated["state"] == "pending"
    assert rotated["kid"] in ok(cli, "keys", "list", names.tenant_id)


def test_a_remote_authority_with_a_private_ca_needs_keyless_ca_file(
    live: RunningAuthority, tmp_path: Path
) -> None:
    """From another machine (no data directory), the authority's own CA is not known: the CLI says
    which setting fixes that, then works with it."""
    elsewhere = Cli(tmp_path)
    remote = ("tenant", "list", "--url", live.base_url, "--admin-key", live.admin_key(), "--json")

    untrusted = elsewhere(*remote, env={"SSL_CERT_FILE": "", "KEYLESS_CA_FILE": ""})
    assert untrusted.exit_code == 2
    assert "is not trusted" in untrusted.stderr and "KEYLESS_CA_FILE" in untrusted.stderr

    trusted = elsewhere(*remote, env={"KEYLESS_CA_FILE": str(live.ca_file)})
    assert trusted.exit_code == 0, trusted.stderr
    assert isinstance(json.loads(trusted.stdout), list)

    missing = elsewhere(*remote, env={"KEYLESS_CA_FILE": str(tmp_path / "nope.pem")})
    assert missing.exit_code == 2
    assert "not a readable PEM CA bundle" in missing.stderr


def test_fic_create_with_an_expression_and_a_condition(cli: Cli, names: Names) -> None:
    _tenant_with_app(cli, names)
    created = as_json(
        cli, "fic", "create", names.domain, "caller", "--name", "gh-releases",
        "--issuer", "https://token.actions.githubusercontent.com",
        "--expression", "claims['sub'] matches 'repo:nw/*:ref:refs/heads/release/*'",
        "--condition", "claims.repository_owner == 'nw'",
    )  # fmt: skip
    assert isinstance(created, dict) and created["subject"] is None
    assert created["claimsMatchingExpression"]["value"].startswith("claims['sub'] matches")
    listed = ok(cli, "fic", "list", names.domain, "caller")
    assert "repo:nw/*:ref:refs/heads/release/*" in listed and "claims.repository_owner" in listed
    broad = cli(
        "fic", "create", names.domain, "caller", "--name", "everyone",
        "--issuer", "https://token.actions.githubusercontent.com", "--expression", "claims['sub'] matches 'repo:*'",
    )  # fmt: skip
    assert broad.exit_code == 2 and "allowBroadMatch" in broad.stderr
    both = cli(
        "fic", "create", names.domain, "caller", "--name", "both", "--issuer", "https://a.example",
        "--subject", "s", "--expression", "claims['sub'] eq 's'",
    )  # fmt: skip
    assert both.exit_code == 2 and "exactly one of --subject and --expression" in both.stderr
    bad = cli(
        "fic", "create", names.domain, "caller", "--name", "typo", "--issuer", "https://a.example",
        "--expression", "claims['sub'] matches 'a*'", "--condition", "claims.x ==",
    )  # fmt: skip
    assert bad.exit_code == 2 and "(column 12)" in bad.stderr
