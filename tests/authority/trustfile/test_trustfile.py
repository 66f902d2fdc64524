"""Trust as code: loading and validating trust files, plan / apply / prune, export round trips."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keyless.authority._service import Authority
from keyless.authority.directory.admin import DirectoryAdmin
from keyless.authority.directory.secrets import secret_matches
from keyless.authority.trustfile.reconcile import (
    Change,
    apply,
    export,
    load_trust_file,
    parse_trust_document,
    plan,
)
from keyless.authority.trustfile.schema import ACCEPTED_KEYS
from keyless.config import load_authority_settings
from keyless.errors import ConfigurationError
from keyless.jose import x5t_sha1
from keyless.jose._x509 import self_signed_certificate

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT_ID = "99999999-9999-4999-8999-999999999999"
API_APP = "11111111-1111-1111-1111-111111111111"
CALLER_APP = "22222222-2222-2222-2222-222222222222"
ROLE_ID = "33333333-3333-3333-3333-333333333333"
GOOGLE = "https://accounts.google.com"
SECRET = "s3cret-from-the-environment-0123456789"

BASE = f"""\
tenants:
  - id: {TENANT_ID}
    displayName: Contoso
    domains: [contoso.example]
    signingAlgorithm: RS256
    applications:
      - displayName: blob-api
        appId: {API_APP}
        identifierUris: [api://blob-api]
        api: {{requestedAccessTokenVersion: 2}}
        appRoleAssignmentRequired: true
        appRoles:
          - {{id: {ROLE_ID}, value: Blob.Read, displayName: Read blobs, allowedMemberTypes: [Application]}}
      - displayName: cloud-run-caller
        appId: {CALLER_APP}
        federatedIdentityCredentials:
          - name: cloud-run
            issuer: https://accounts.google.com
            subject: "112233445566778899001"
            audiences: [api://AzureADTokenExchange]
        passwordCredentials:
          - displayName: ci
            valueFrom: {{env: CALLER_SECRET}}
        keyCredentials:
          - displayName: deploy-cert
            certificateFile: ./cert.pem
        appRoleAssignments:
          - {{resource: blob-api, appRole: Blob.Read}}
"""


# --------------------------------------------------------------------------- helpers


def _certificate_pem(common_name: str) -> str:
    der = self_signed_certificate(ec.generate_private_key(ec.SECP256R1()), common_name)
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode("ascii")


@pytest.fixture
async def store_authority(tmp_path: Path) -> AsyncIterator[Authority]:
    """An authority on a temporary data directory, not serving: the store and its admin."""
    opened = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    yield opened
    await opened.aclose()


@pytest.fixture
def admin(store_authority: Authority) -> DirectoryAdmin:
    return store_authority.admin


@pytest.fixture
def trust_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "trust"
    folder.mkdir()
    (folder / "cert.pem").write_text(_certificate_pem("deploy"))
    monkeypatch.setenv("CALLER_SECRET", SECRET)
    return folder


def _write(folder: Path, text: str, name: str = "trust.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _problems(excinfo: pytest.ExceptionInfo[ConfigurationError]) -> list[str]:
    return excinfo.value.problems


def _summary(changes: Any) -> list[tuple[str, str, str]]:
    return [(c.action, c.kind, c.name) for c in changes]


# --------------------------------------------------------------------------- apply and plan


def test_apply_creates_every_object_in_the_file(admin: DirectoryAdmin, trust_dir: Path) -> None:
    applied = apply(admin, load_trust_file(_write(trust_dir, BASE)))

    assert _summary(applied) == [
        ("create", "tenant", "Contoso"),
        ("create", "application", "Contoso/blob-api"),
        ("create", "application", "Contoso/cloud-run-caller"),
        ("create", "fic", "Contoso/cloud-run-caller/cloud-run"),
        ("create", "secret", "Contoso/cloud-run-caller/ci"),
        ("create", "certificate", "Contoso/cloud-run-caller/deploy-cert"),
        ("create", "roleAssignment", "Contoso/cloud-run-caller -> blob-api/Blob.Read"),
    ]
    store = admin.store
    tenant = store.get_tenant("contoso.example")
    assert (tenant.id, tenant.signing_alg) == (TENANT_ID, "RS256")
    api = admin.find_application(TENANT_ID, API_APP)
    assert api.requested_access_token_version == 2
    assert api.app_role_assignment_required
    assert [(r.id, r.value) for r in api.app_roles] == [(ROLE_ID, "Blob.Read")]
    caller = admin.find_application(TENANT_ID, "cloud-run-caller")
    (fic,) = store.list_fics(caller.object_id)
    assert (fic.issuer, fic.subject, fic.audiences) == (
        "https://accounts.google.com",
        "112233445566778899001",
        ("api://AzureADTokenExchange",),
    )
    (secret,) = store.list_secrets(caller.object_id)
    assert secret.display_name == "ci"
    assert secret_matches(SECRET, secret.secret_hash, secret.salt)
    (cert,) = store.list_certificates(caller.object_id)
    assert cert.display_name == "deploy-cert"
    (assignment,) = store.list_role_assignments(TENANT_ID)
    assert (assignment.principal_id, assignment.resource_id, assignment.app_role_id) == (
        caller.service_principal_id,
        api.service_principal_id,
        ROLE_ID,
    )


def test_plan_lists_the_changes_without_making_them(admin: DirectoryAdmin, trust_dir: Path) -> None:
    planned = plan(admin, load_trust_file(_write(trust_dir, BASE)))

    assert len(planned) == 7
    assert admin.store.list_tenants() == []
    assert str(planned).splitlines()[0] == f"+ tenant Contoso: id {TENANT_ID}"


def test_applying_the_same_file_twice_gives_an_empty_second_plan(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    doc = load_trust_file(_write(trust_dir, BASE))
    apply(admin, doc)

    assert list(plan(admin, doc, prune=True)) == []
    assert not apply(admin, doc, prune=True)


def test_a_changed_fic_subject_is_an_update_of_that_credential(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    changed = load_trust_file(_write(trust_dir, BASE.replace("112233445566778899001", "998877")))

    planned = plan(admin, changed)
    applied = apply(admin, changed)

    expected = Change(
        "update", "fic", "Contoso/cloud-run-caller/cloud-run", "subject: '112233445566778899001' -> '998877'"
    )
    assert list(planned) == list(applied) == [expected]
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    assert [f.subject for f in admin.store.list_fics(caller.object_id)] == ["998877"]


def test_changed_tenant_and_application_properties_are_updates(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    changed = BASE.replace("signingAlgorithm: RS256", "signingAlgorithm: ES256").replace(
        "api: {requestedAccessTokenVersion: 2}", "requestedAccessTokenVersion: 1"
    )

    applied = apply(admin, load_trust_file(_write(trust_dir, changed)))

    assert list(applied) == [
        Change("update", "tenant", "Contoso", "signingAlgorithm: 'RS256' -> 'ES256'"),
        Change("update", "application", "Contoso/blob-api", "requestedAccessTokenVersion: 2 -> 1"),
    ]
    assert admin.store.get_tenant(TENANT_ID).signing_alg == "ES256"
    assert not plan(admin, load_trust_file(trust_dir / "trust.yaml"))


def test_app_roles_without_an_id_keep_their_id_across_applies(admin: DirectoryAdmin, trust_dir: Path) -> None:
    text = BASE.replace(f"id: {ROLE_ID}, ", "")
    apply(admin, load_trust_file(_write(trust_dir, text)))
    first = admin.find_application(TENANT_ID, API_APP).app_roles[0].id

    assert not plan(admin, load_trust_file(_write(trust_dir, text)))
    assert admin.find_application(TENANT_ID, API_APP).app_roles[0].id == first


def test_without_prune_objects_the_file_does_not_name_are_kept(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    extra = admin.create_application(TENANT_ID, "hand-made")

    assert not plan(admin, load_trust_file(trust_dir / "trust.yaml"))
    assert admin.store.get_application(extra.object_id).display_name == "hand-made"


def test_prune_deletes_what_the_file_no_longer_names_but_not_other_tenants(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    admin.create_fic(caller, name="by-hand", issuer="https://issuer.example", subject="x")
    admin.add_secret(caller, "by-hand")
    admin.add_certificate(caller, _certificate_pem("by-hand"), "by-hand-cert")
    admin.create_application(TENANT_ID, "stray")
    other = admin.create_tenant("Other", tenant_id=OTHER_TENANT_ID)
    admin.create_application(other.id, "elsewhere")
    slim = BASE.split("        appRoleAssignments:")[0]  # the caller no longer holds the role

    planned = plan(admin, load_trust_file(_write(trust_dir, slim)), prune=True)
    applied = apply(admin, load_trust_file(trust_dir / "trust.yaml"), prune=True)

    assert list(planned) == list(applied)
    assert _summary(applied) == [
        ("delete", "application", "Contoso/stray"),
        ("delete", "fic", "Contoso/cloud-run-caller/by-hand"),
        ("delete", "secret", "Contoso/cloud-run-caller/by-hand"),
        ("delete", "certificate", "Contoso/cloud-run-caller/by-hand-cert"),
        ("delete", "roleAssignment", "Contoso/cloud-run-caller -> blob-api/Blob.Read"),
    ]
    assert [a.display_name for a in admin.store.list_applications(TENANT_ID)] == [
        "blob-api",
        "cloud-run-caller",
    ]
    assert admin.store.list_role_assignments(TENANT_ID) == []
    assert [a.display_name for a in admin.store.list_applications(other.id)] == ["elsewhere"]
    assert not plan(admin, load_trust_file(trust_dir / "trust.yaml"), prune=True)


def test_fics_beyond_the_tenant_limit_are_a_plan_problem_unless_pruned(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    text = BASE.replace("    signingAlgorithm: RS256\n", "    maxFederatedIdentityCredentialsPerApp: 1\n")
    apply(admin, load_trust_file(_write(trust_dir, text)))
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    admin.delete_fic(caller, "cloud-run")
    admin.create_fic(caller, name="stray", issuer="https://issuer.example", subject="s")
    doc = load_trust_file(trust_dir / "trust.yaml")

    with pytest.raises(ConfigurationError, match="more than the limit of 1"):
        plan(admin, doc)
    assert _summary(apply(admin, doc, prune=True)) == [
        ("delete", "fic", "Contoso/cloud-run-caller/stray"),
        ("create", "fic", "Contoso/cloud-run-caller/cloud-run"),
    ]


# --------------------------------------------------------------------------- secrets and certificates


def test_a_secret_whose_value_changed_is_replaced(
    admin: DirectoryAdmin, trust_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    monkeypatch.setenv("CALLER_SECRET", "a-rotated-value-9876543210")

    applied = apply(admin, load_trust_file(trust_dir / "trust.yaml"))

    assert list(applied) == [Change("update", "secret", "Contoso/cloud-run-caller/ci", "the value changed")]
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    (secret,) = admin.store.list_secrets(caller.object_id)
    assert secret_matches("a-rotated-value-9876543210", secret.secret_hash, secret.salt)


def test_an_expired_secret_is_renewed(admin: DirectoryAdmin, trust_dir: Path) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    (old,) = admin.store.list_secrets(caller.object_id)
    admin.remove_secret(caller, old.key_id)
    admin.add_secret(caller, "ci", value=SECRET, lifetime=-60)

    applied = apply(admin, load_trust_file(trust_dir / "trust.yaml"))

    assert [c.detail for c in applied] == ["the stored secret expired"]
    (renewed,) = admin.store.list_secrets(caller.object_id)
    assert renewed.end > renewed.start


def test_a_secret_can_come_from_a_file_next_to_the_trust_file(admin: DirectoryAdmin, trust_dir: Path) -> None:
    (trust_dir / "secret.txt").write_text("value-from-a-file-0123456789\n")
    text = BASE.replace("{env: CALLER_SECRET}", "{file: secret.txt}")

    apply(admin, load_trust_file(_write(trust_dir, text)))

    caller = admin.find_application(TENANT_ID, CALLER_APP)
    (secret,) = admin.store.list_secrets(caller.object_id)
    assert secret_matches("value-from-a-file-0123456789", secret.secret_hash, secret.salt)
    assert secret.hint == "val"


def test_a_literal_secret_in_the_file_is_refused(trust_dir: Path) -> None:
    text = BASE.replace("valueFrom: {env: CALLER_SECRET}", "value: hunter2")

    with pytest.raises(ConfigurationError) as excinfo:
        load_trust_file(_write(trust_dir, text))

    assert _problems(excinfo) == [
        f"{trust_dir / 'trust.yaml'}:23: passwordCredential 'ci': secrets come from env or file, never from "
        "the trust file: use valueFrom: {env: NAME} or {file: PATH}"
    ]


def test_valuefrom_given_as_a_plain_string_is_refused_as_a_literal_secret(trust_dir: Path) -> None:
    text = BASE.replace("valueFrom: {env: CALLER_SECRET}", "valueFrom: hunter2")

    with pytest.raises(ConfigurationError, match="secrets come from env or file"):
        load_trust_file(_write(trust_dir, text))


def test_an_unset_variable_and_missing_files_are_reported_together(
    trust_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLER_SECRET")
    (trust_dir / "cert.pem").unlink()
    path = _write(trust_dir, BASE)

    with pytest.raises(ConfigurationError) as excinfo:
        load_trust_file(path)

    assert _problems(excinfo) == [
        f"{path}:23: passwordCredential 'ci' valueFrom: environment variable CALLER_SECRET is not set",
        f"{path}:26: keyCredential 'deploy-cert': file '{trust_dir / 'cert.pem'}' does not exist",
    ]


def test_documents_sent_over_the_api_may_not_read_the_servers_env_or_files(trust_dir: Path) -> None:
    data = yaml.safe_load(BASE)

    with pytest.raises(ConfigurationError) as excinfo:
        parse_trust_document(data)

    assert _problems(excinfo) == [
        "<api>: tenants[0].applications[1].passwordCredentials[0].valueFrom.env: passwordCredential 'ci' "
        "valueFrom: env references are not accepted here (they would read the server's)",
        "<api>: tenants[0].applications[1].keyCredentials[0].certificateFile: keyCredential 'deploy-cert': "
        "certificateFile is not accepted here (it would read the server's files); use certificate",
    ]


def test_certificates_are_matched_by_thumbprint_and_may_be_inline(
    admin: DirectoryAdmin, trust_dir: Path
) -> None:
    pem = (trust_dir / "cert.pem").read_text()
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    data = yaml.safe_load(BASE)
    caller = data["tenants"][0]["applications"][1]
    caller["keyCredentials"] = [{"displayName": "deploy-cert", "certificate": pem}]
    caller["passwordCredentials"] = [{"displayName": "ci", "hint": "s3c"}]

    assert not plan(admin, parse_trust_document(data))

    caller["keyCredentials"][0]["displayName"] = "renamed"
    (change,) = plan(admin, parse_trust_document(data))
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    assert change == Change(
        "update", "certificate", "Contoso/cloud-run-caller/renamed", f"thumbprint {x5t_sha1(der)}"
    )


def test_a_hint_only_secret_that_does_not_exist_is_a_plan_problem(admin: DirectoryAdmin) -> None:
    doc = parse_trust_document(
        {
            "tenants": [
                {
                    "id": TENANT_ID,
                    "displayName": "Contoso",
                    "applications": [
                        {
                            "displayName": "a",
                            "appId": API_APP,
                            "passwordCredentials": [{"displayName": "x", "hint": "abc"}],
                        }
                    ],
                }
            ]
        }
    )

    with pytest.raises(ConfigurationError) as excinfo:
        plan(admin, doc)

    assert _problems(excinfo) == [
        "<api>: tenants[0].applications[0].passwordCredentials[0]: Contoso/a/x: no stored secret of that "
        "name, and the file gives no valueFrom to create it from"
    ]


# --------------------------------------------------------------------------- validation


BROKEN = f"""\
tenants:
  - id: not-a-guid
    displayName: Contoso
    domains: [contoso]
    applications:
      - displayName: blob-api
        appId: {API_APP}
        appRoles:
          - {{value: Blob.Read}}
          - {{value: Blob.Read}}
      - displayName: caller
        identifierUri: [api://caller]
        federatedIdentityCredentials:
          - name: x
            issuer: https://accounts.google.com
            subject: 42
          - name: two-audiences
            issuer: https://accounts.google.com
            subject: "1"
            audiences: [api://AzureADTokenExchange, api://other]
          - name: two-audiences
            issuer: https://accounts.google.com
            subject: "2"
        appRoleAssignments:
          - {{resource: blob-apj, appRole: Blob.Read}}
          - {{resource: blob-api, appRole: Blob.Write}}
"""


def test_every_problem_is_reported_at_once_with_file_and_line(trust_dir: Path) -> None:
    path = _write(trust_dir, BROKEN)

    with pytest.raises(ConfigurationError) as excinfo:
        load_trust_file(path)

    assert _problems(excinfo) == [
        f"{path}:2: tenant 'Contoso': id 'not-a-guid' is not a GUID",
        f"{path}:4: tenant 'Contoso': domain 'contoso' is not a DNS name",
        f"{path}:8: application 'blob-api': app role value 'Blob.Read' is used 2 times",
        f"{path}:12: application 'caller': unknown key 'identifierUri' (did you mean 'identifierUris'?)",
        f"{path}:11: application 'caller': appId is required",
        f"{path}:16: federatedIdentityCredential 'x': subject must be a string, not a number (quote it)",
        f"{path}:17: federatedIdentityCredential 'two-audiences': Federated identity credentials must have "
        "exactly one audience.",
        f"{path}:25: application 'caller': appRoleAssignment: resource 'blob-apj' is not an application of "
        "this tenant in the file (did you mean 'blob-api'?)",
        f"{path}:26: application 'caller': appRoleAssignment: 'blob-api' has no app role 'Blob.Write' "
        "(did you mean 'Blob.Read'?)",
    ]


def test_fic_names_and_duplicates_follow_graphs_rules(trust_dir: Path) -> None:
    more_fics = (
        "          - {name: -bad name, issuer: https://accounts.google.com, subject: '7'}\n"
        f"          - {{name: same-pair, issuer: {GOOGLE}, subject: '112233445566778899001'}}\n"
        "          - {name: same-pair, issuer: https://accounts.google.com, subject: '8'}\n"
        "        passwordCredentials:"
    )
    path = _write(trust_dir, BASE.replace("        passwordCredentials:", more_fics))

    with pytest.raises(ConfigurationError) as excinfo:
        load_trust_file(path)

    assert _problems(excinfo) == [
        f"{path}:21: federatedIdentityCredential '-bad name': name '-bad name' must be 3-120 characters of "
        "letters, digits, '-' and '_', starting with a letter or digit",
        f"{path}:16: application 'cloud-run-caller': federated credential name 'same-pair' is used 2 times",
        f"{path}:16: application 'cloud-run-caller': issuer and subject pair "
        "'https://accounts.google.com 112233445566778899001' is used 2 times",
    ]


def test_duplicate_ids_keys_and_names_are_reported(trust_dir: Path) -> None:
    text = (
        BASE
        + f"""\
  - id: {TENANT_ID}
    displayName: Again
    displayName: Again2
    domains: [contoso.example]
    applications:
      - {{displayName: clone, appId: {API_APP}}}
"""
    )
    path = _write(trust_dir, text)

    with pytest.raises(ConfigurationError) as excinfo:
        load_trust_file(path)

    assert _problems(excinfo) == [
        f"{path}:31: tenant 'Again2': key 'displayName' is given twice",
        f"{path}:29: tenant 'Again2': id {TENANT_ID} is also tenant 'Contoso'",
        f"{path}:29: tenant 'Again2': domain 'contoso.example' is also tenant 'Contoso''s",
        f"{path}:34: application 'clone': appId {API_APP} is also application 'blob-api'",
    ]


def test_token_version_aliases_must_agree(trust_dir: Path) -> None:
    text = BASE.replace(
        "api: {requestedAccessTokenVersion: 2}",
        "api: {requestedAccessTokenVersion: 2}\n        requestedAccessTokenVersion: 1",
    )

    with pytest.raises(ConfigurationError, match="disagree"):
        load_trust_file(_write(trust_dir, text))


def test_invalid_yaml_names_its_line(trust_dir: Path) -> None:
    path = _write(trust_dir, "tenants:\n  - id: [unclosed\n")

    with pytest.raises(ConfigurationError, match=re.escape(f"{path}:3: not valid YAML")):
        load_trust_file(path)


def test_an_empty_file_or_missing_tenants_is_reported(trust_dir: Path) -> None:
    with pytest.raises(ConfigurationError, match="the trust document is empty"):
        load_trust_file(_write(trust_dir, ""))
    with pytest.raises(
        ConfigurationError, match=r"trust.yaml:1: document: unknown key 'tenant' \(did you mean"
    ):
        load_trust_file(_write(trust_dir, "tenant: []\n"))


# --------------------------------------------------------------------------- export


def test_export_then_load_then_plan_is_empty(admin: DirectoryAdmin, trust_dir: Path) -> None:
    apply(admin, load_trust_file(_write(trust_dir, BASE)))
    caller = admin.find_application(TENANT_ID, CALLER_APP)
    admin.add_secret(caller, "")  # an unnamed secret made through the API
    admin.create_fic(caller, name="described", issuer="https://issuer.example", subject="s", description="d")

    exported = export(admin)
    path = _write(trust_dir, yaml.safe_dump(exported, sort_keys=False), "exported.yaml")
    reloaded = load_trust_file(path)

    assert not plan(admin, reloaded, prune=True)
    caller_entry = exported["tenants"][0]["applications"][1]
    assert caller_entry["passwordCredentials"] == [
        {"displayName": "ci", "hint": SECRET[:3]},
        {"displayName": "", "hint": admin.store.list_secrets(caller.object_id)[-1].hint},
    ]
    assert caller_entry["keyCredentials"][0]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert caller_entry["appRoleAssignments"] == [{"resource": "blob-api", "appRole": "Blob.Read"}]
    assert "secretText" not in json.dumps(exported)


def test_export_can_be_limited_to_named_tenants(admin: DirectoryAdmin) -> None:
    admin.create_tenant("One", tenant_id=TENANT_ID, domains=["one.example"])
    admin.create_tenant("Two", tenant_id=OTHER_TENANT_ID)

    assert [t["displayName"] for t in export(admin, ["one.example"])["tenants"]] == ["One"]


# --------------------------------------------------------------------------- the JSON schema


def _schema() -> dict[str, Any]:
    text = resources.files("keyless.authority").joinpath("trust-file.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_the_schema_lists_exactly_the_keys_the_loader_accepts() -> None:
    schema = _schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for name, keys in ACCEPTED_KEYS.items():
        node = schema if name == "document" else schema["$defs"][name]
        assert sorted(node["properties"]) == sorted(keys), name
        assert node["additionalProperties"] is False, name


def _conforms(instance: object, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """The subset of JSON Schema the trust-file schema uses (no jsonschema dependency)."""
    if "$ref" in schema:
        return _conforms(instance, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, where)
    problems: list[str] = []
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}
    if "type" in schema and not isinstance(instance, kinds[schema["type"]]):
        return [f"{where}: not {schema['type']}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{where}: {instance!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        problems.append(f"{where}: {instance!r} does not match {schema['pattern']}")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        problems += [f"{where}: {key!r} missing" for key in schema.get("required", []) if key not in instance]
        for key, value in instance.items():
            if key in properties:
                problems += _conforms(value, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{where}: {key!r} not allowed")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += _conforms(item, schema["items"], root, f"{where}[{i}]")
    return problems


def test_the_example_and_an_export_conform_to_the_schema(admin: DirectoryAdmin, trust_dir: Path) -> None:
    schema = _schema()
    apply(admin, load_trust_file(_write(trust_dir, BASE)))

    assert _conforms(yaml.safe_load(BASE), schema, schema) == []
    assert _conforms(export(admin), schema, schema) == []
    assert _conforms(yaml.safe_load(BROKEN), schema, schema) != []
