"""``keyless plan | apply | export`` against a running authority: plan changes nothing, apply twice
changes nothing the second time, prune, exported files plan empty, secrets and certificate files
resolved on the CLI's side, and clear failures (file:line, unreachable server)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import yaml
from tests._support.authority_server import RunningAuthority, run_authority
from tests._support.certs import make_client_certificate
from tests.cli.conftest import Cli, Names

from keyless.authority.store import SqlStore

ROLE_ID = "0f6e7c9a-1b2d-4e3f-8a9b-0c1d2e3f4a5b"


def trust_file(tmp_path: Path, names: Names, *, fics: str = "", secrets: str = "", extra: str = "") -> Path:
    text = f"""\
tenants:
  - id: {names.tenant_id}
    displayName: Fabrikam
    domains: [{names.domain}]
    applications:
      - displayName: blob-api
        appId: {names.api_app}
        identifierUris: [api://blob-api]
        api: {{requestedAccessTokenVersion: 2}}
        appRoles:
          - {{id: {ROLE_ID}, value: Blob.Read, displayName: Read blobs}}
      - displayName: caller
        appId: {names.caller_app}
        federatedIdentityCredentials:
          - name: google-sa
            issuer: https://accounts.google.com
            subject: "112233445566778899001"
{fics}{secrets}{extra}        appRoleAssignments:
          - {{resource: blob-api, appRole: Blob.Read}}
"""
    path = tmp_path / "trust.yaml"
    path.write_text(text)
    return path


GITHUB_FIC = """\
          - name: github-main
            issuer: https://token.actions.githubusercontent.com
            subject: repo:fabrikam/app:ref:refs/heads/main
"""
SECRET = """\
        passwordCredentials:
          - displayName: ci
            valueFrom: {env: FABRIKAM_SECRET}
"""


def changes(cli: Cli, *args: str, env: dict[str, str] | None = None) -> list[dict[str, str]]:
    result = cli(*args, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout)["changes"])


def test_plan_shows_every_change_like_a_terraform_plan_and_changes_nothing(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC)
    result = cli("plan", "-f", str(path))
    assert result.exit_code == 0, result.stderr
    assert "+ tenant Fabrikam" in result.stdout
    assert "+ fic Fabrikam/caller/github-main" in result.stdout
    assert "+ roleAssignment Fabrikam/caller -> blob-api/Blob.Read" in result.stdout
    assert "Plan: 6 to create, 0 to update, 0 to delete." in result.stdout
    assert cli("tenant", "show", names.domain).exit_code == 1  # nothing was created


def test_apply_makes_it_so_and_a_second_apply_changes_nothing(cli: Cli, names: Names, tmp_path: Path) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC)
    first = changes(cli, "apply", "-f", str(path))
    assert {(c["action"], c["kind"]) for c in first} >= {("create", "tenant"), ("create", "fic")}
    assert changes(cli, "apply", "-f", str(path)) == []
    again = cli("plan", "-f", str(path))
    assert "No changes." in again.stdout
    fics = json.loads(cli("fic", "list", names.domain, "caller", "--json").stdout)
    assert sorted(f["name"] for f in fics) == ["github-main", "google-sa"]


def test_plan_detailed_exitcode_is_2_with_changes_and_0_without_as_terraform(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC)
    pending = cli("plan", "-f", str(path), "--detailed-exitcode")
    assert pending.exit_code == 2 and "Plan: 6 to create" in pending.stdout
    assert cli("plan", "-f", str(path), "--detailed-exitcode", "--json").exit_code == 2
    assert cli("plan", "-f", str(path)).exit_code == 0  # without the flag: 0 either way
    changes(cli, "apply", "-f", str(path))
    assert cli("plan", "-f", str(path), "--detailed-exitcode").exit_code == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("tenants: [")
    assert cli("plan", "-f", str(broken), "--detailed-exitcode").exit_code not in (0, 2)


def test_an_edited_credential_is_planned_as_an_update_with_the_exact_difference(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC)
    changes(cli, "apply", "-f", str(path))
    path.write_text(path.read_text().replace("refs/heads/main", "refs/heads/release"))
    planned = changes(cli, "plan", "-f", str(path))
    assert planned == [
        {
            "action": "update",
            "kind": "fic",
            "name": "Fabrikam/caller/github-main",
            "detail": "subject: 'repo:fabrikam/app:ref:refs/heads/main' -> 'repo:fabrikam/app:ref:refs/heads/release'",
        }
    ]


def test_export_round_trip_is_lossless(cli: Cli, names: Names, tmp_path: Path) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC, secrets=SECRET)
    env = {"FABRIKAM_SECRET": "first-secret-value-0123456789"}
    changes(cli, "apply", "-f", str(path), env=env)
    before = json.loads(cli("export", "--tenant", names.tenant_id, "--json").stdout)
    exported = tmp_path / "exported.yaml"
    written = cli("export", "--tenant", names.tenant_id, "-o", str(exported))
    assert written.exit_code == 0, written.stderr
    assert "1 tenant(s), 2 application(s)" in written.stdout
    assert changes(cli, "plan", "-f", str(exported)) == []
    assert changes(cli, "plan", "-f", str(exported), "--prune") == []
    assert changes(cli, "apply", "-f", str(exported), "--prune") == []
    after = json.loads(cli("export", "--tenant", names.tenant_id, "--json").stdout)
    assert after == before
    document = yaml.safe_load(exported.read_text())
    secret = document["tenants"][0]["applications"][1]["passwordCredentials"][0]
    assert secret == {"displayName": "ci", "hint": "fir"}  # never the value


def test_prune_deletes_only_what_the_file_no_longer_names(cli: Cli, names: Names, tmp_path: Path) -> None:
    path = trust_file(tmp_path, names, fics=GITHUB_FIC)
    changes(cli, "apply", "-f", str(path))
    trust_file(tmp_path, names)  # github-main removed from the file
    assert changes(cli, "plan", "-f", str(path)) == []
    pruned = changes(cli, "plan", "-f", str(path), "--prune")
    assert pruned == [
        {"action": "delete", "kind": "fic", "name": "Fabrikam/caller/github-main", "detail": ""}
    ]
    result = cli("apply", "-f", str(path), "--prune")
    assert "- fic Fabrikam/caller/github-main" in result.stdout
    fics = json.loads(cli("fic", "list", names.domain, "caller", "--json").stdout)
    assert [f["name"] for f in fics] == ["google-sa"]
    assert changes(cli, "apply", "-f", str(path), "--prune") == []


def _client_secret_works(live: RunningAuthority, names: Names, secret: str) -> bool:
    response = httpx.post(
        live.token_url(names.tenant_id),
        data={
            "grant_type": "client_credentials",
            "client_id": names.caller_app,
            "client_secret": secret,
            "scope": "api://blob-api/.default",
        },
        verify=ssl.create_default_context(cafile=str(live.ca_file)),
    )
    return response.status_code == 200


def test_secrets_come_from_the_cli_side_environment_and_are_replaced_only_when_changed(
    cli: Cli, live: RunningAuthority, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names, secrets=SECRET)
    first = {"FABRIKAM_SECRET": "first-secret-value-0123456789"}
    created = cli("apply", "-f", str(path), env=first)
    assert "+ secret Fabrikam/caller/ci: new" in created.stdout
    assert "first-secret-value" not in created.stdout + created.stderr
    assert _client_secret_works(live, names, "first-secret-value-0123456789")
    assert changes(cli, "apply", "-f", str(path), env=first) == []
    second = {"FABRIKAM_SECRET": "second-secret-value-9876543210"}
    assert changes(cli, "plan", "-f", str(path), env=second) == [
        {"action": "update", "kind": "secret", "name": "Fabrikam/caller/ci", "detail": "the value changed"}
    ]
    changes(cli, "apply", "-f", str(path), env=second)
    assert _client_secret_works(live, names, "second-secret-value-9876543210")
    assert not _client_secret_works(live, names, "first-secret-value-0123456789")


def test_certificate_files_are_read_next_to_the_trust_file(cli: Cli, names: Names, tmp_path: Path) -> None:
    cert = make_client_certificate("fabrikam caller")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "caller.pem").write_bytes(cert.cert_pem)
    keys = (
        "        keyCredentials:\n          - {displayName: caller-cert, certificateFile: certs/caller.pem}\n"
    )
    path = trust_file(tmp_path, names, extra=keys)
    changes(cli, "apply", "-f", str(path))
    listed = json.loads(cli("cert", "list", names.domain, "caller", "--json").stdout)
    assert [(c["displayName"], c["customKeyIdentifier"]) for c in listed] == [("caller-cert", cert.sha1_hex)]
    assert changes(cli, "apply", "-f", str(path)) == []


def test_a_bad_trust_file_names_file_and_line_and_exits_2(cli: Cli, names: Names, tmp_path: Path) -> None:
    path = trust_file(tmp_path, names)
    path.write_text(path.read_text().replace("            subject:", "            subjekt:"))
    result = cli("plan", "-f", str(path))
    assert result.exit_code == 2
    assert f"{path}:17" in result.stderr
    assert "unknown key 'subjekt'" in result.stderr and "did you mean 'subject'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_secret_source_is_refused_before_anything_is_sent(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names, secrets=SECRET)
    result = cli("apply", "-f", str(path), env={"FABRIKAM_SECRET": ""})
    assert result.exit_code == 2
    assert "FABRIKAM_SECRET" in result.stderr and f"{path}:" in result.stderr
    assert cli("tenant", "show", names.tenant_id).exit_code == 1


def test_a_problem_only_the_server_can_see_points_back_at_the_file_line(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    keep = "        passwordCredentials:\n          - {displayName: legacy, hint: abc}\n"
    path = trust_file(tmp_path, names, secrets=keep)
    result = cli("plan", "-f", str(path))
    assert result.exit_code == 2
    assert f"{path}:19" in result.stderr and "no stored secret of that name" in result.stderr
    assert "<api>" not in result.stderr


def test_an_unreachable_authority_exits_3_and_says_what_to_do(cli: Cli, names: Names, tmp_path: Path) -> None:
    path = trust_file(tmp_path, names)
    result = cli("plan", "-f", str(path), "--url", "https://127.0.0.1:9", "--admin-key", "kla_x")
    assert result.exit_code == 3
    assert "cannot reach the authority at https://127.0.0.1:9" in result.stderr
    assert "keyless serve" in result.stderr


def test_waiting_for_an_authority_that_never_comes_gives_up_with_exit_3(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    path = trust_file(tmp_path, names)
    result = cli(
        "apply", "-f", str(path), "--url", "https://127.0.0.1:9", "--admin-key", "k", "--wait", "0.5"
    )
    assert result.exit_code == 3
    assert "did not answer within 0.5 s" in result.stderr


def test_a_wrong_admin_key_is_a_configuration_problem(cli: Cli, live: RunningAuthority, names: Names) -> None:
    result = cli("tenant", "list", "--admin-key", "kla_wrong")
    assert result.exit_code == 2
    assert "admin key was refused" in result.stderr


def test_apply_refuses_an_identifier_uri_another_stored_application_owns(
    cli: Cli, names: Names, tmp_path: Path
) -> None:
    """Two resources answering to one audience: ``api-two`` may not take ``api://blob-api`` from the
    stored ``api-one`` even when the file names only ``api-two``."""
    first = tmp_path / "one.yaml"
    first.write_text(
        f"tenants:\n  - id: {names.tenant_id}\n    displayName: Fabrikam\n    applications:\n"
        f"      - {{displayName: api-one, appId: {names.api_app}, identifierUris: [api://blob-api]}}\n"
    )
    assert cli("apply", "-f", str(first)).exit_code == 0
    second = tmp_path / "two.yaml"
    second.write_text(
        f"tenants:\n  - id: {names.tenant_id}\n    displayName: Fabrikam\n    applications:\n"
        f"      - {{displayName: api-two, appId: {names.caller_app}, identifierUris: [api://blob-api/]}}\n"
    )

    result = cli("apply", "-f", str(second))

    assert result.exit_code == 2, result.stdout
    assert f"{second}:5" in result.stderr
    assert "'api-two'" in result.stderr and "'api-one'" in result.stderr and names.api_app in result.stderr
    assert "identifierUris already exists" in result.stderr
    listed = cli("app", "list", names.tenant_id, "--json")
    assert "api-two" not in listed.stdout and "api-one" in listed.stdout


def test_apply_while_another_apply_holds_the_lock_says_so(tmp_path: Path, names: Names) -> None:
    with run_authority(tmp_path / "authority", apply_lock_timeout=0.5) as authority:
        other_node = SqlStore.from_url(authority.authority.settings.database)
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other_node.transaction(lock_timeout=5):
                held.set()
                release.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            result = Cli(authority.data_dir)("apply", "-f", str(trust_file(tmp_path, names)))
        finally:
            release.set()
            holder.join(10)
            other_node.close()
        assert result.exit_code == 1, result.output
        assert "another apply is in progress" in result.output
        assert "wait for the other apply to finish" in result.output
        assert Cli(authority.data_dir)("apply", "-f", str(trust_file(tmp_path, names))).exit_code == 0


def test_export_writes_the_trust_graph_as_dot_and_mermaid(cli: Cli, names: Names, tmp_path: Path) -> None:
    changes(cli, "apply", "-f", str(trust_file(tmp_path, names, fics=GITHUB_FIC)))
    dot = cli("export", "--tenant", names.tenant_id, "--format", "dot")
    assert dot.exit_code == 0, dot.stderr
    text = dot.stdout
    assert text.startswith('digraph "Fabrikam" {')
    assert 'label="github-main\\nrepo:fabrikam/app:ref:refs/heads/main", shape=note' in text
    assert '[label="https://accounts.google.com", shape=ellipse]' in text
    assert 'label="Blob.Read", style=dashed' in text  # caller holds Blob.Read on blob-api
    if shutil.which("dot"):
        rendered = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, check=False)
        assert rendered.returncode == 0, rendered.stderr
    mermaid = cli("export", "--tenant", names.tenant_id, "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n")
    assert '"github-main<br/>repo:fabrikam/app:ref:refs/heads/main"' in mermaid
    assert '-.->|"Blob.Read"|' in mermaid
    written = cli("export", "--tenant", names.tenant_id, "--format", "mermaid", "-o", str(tmp_path / "g.mmd"))
    assert written.exit_code == 0 and (tmp_path / "g.mmd").read_text() == mermaid
