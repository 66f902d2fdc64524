"""DirectoryAdmin is the one writer: every rule holds whichever entry point writes (the admin API,
trust apply and ``serve --trust`` all come through it), and the rules are pure functions."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keyless.authority import Authority, DirectoryAdmin, apply, load_trust_file
from keyless.authority.directory import rules
from keyless.authority.model import AppRole
from keyless.config import load_authority_settings
from keyless.errors import AlreadyExists, ConfigurationError

TENANT = "8d3c1f5e-2b4a-4c6d-9e8f-0a1b2c3d4e5f"
APP_ONE = "11111111-2222-4333-8444-555555555555"
APP_TWO = "66666666-7777-4888-9999-aaaaaaaaaaaa"


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[DirectoryAdmin]:
    opened = Authority.open(load_authority_settings(data_dir=tmp_path / "data", port=0))
    yield opened.admin
    await opened.aclose()


def test_an_identifier_uri_names_one_application_whoever_writes(
    admin: DirectoryAdmin, tmp_path: Path
) -> None:
    admin.create_tenant("Fabrikam", tenant_id=TENANT)
    one = admin.create_application(TENANT, "api-one", app_id=APP_ONE, identifier_uris=["api://blob-api"])

    with pytest.raises(ConfigurationError) as created:
        admin.create_application(TENANT, "api-two", app_id=APP_TWO, identifier_uris=["api://blob-api/"])
    assert "'api-two'" in str(created.value) and "'api-one'" in str(created.value)

    two = admin.create_application(TENANT, "api-two", app_id=APP_TWO)
    with pytest.raises(ConfigurationError):
        admin.update_application(dataclasses.replace(two, identifier_uris=("api://blob-api",)))

    path = tmp_path / "trust.yaml"
    path.write_text(
        f"tenants:\n  - id: {TENANT}\n    displayName: Fabrikam\n    applications:\n"
        f"      - {{displayName: api-two, appId: {APP_TWO}, identifierUris: [api://blob-api]}}\n"
    )
    with pytest.raises(ConfigurationError) as applied:
        apply(admin, load_trust_file(path))
    (problem,) = applied.value.problems
    assert problem.startswith(f"{path}:5: ") and "'api-one'" in problem and APP_ONE in problem
    assert [a.identifier_uris for a in admin.list_applications(TENANT)] in (
        [one.identifier_uris, ()],
        [(), one.identifier_uris],
    )


def test_fic_names_and_issuer_subject_pairs_are_unique_in_the_writer(admin: DirectoryAdmin) -> None:
    admin.create_tenant("Fabrikam", tenant_id=TENANT)
    app = admin.create_application(TENANT, "caller", app_id=APP_ONE)
    admin.create_fic(app, name="one", issuer="https://issuer.example", subject="a")

    with pytest.raises(AlreadyExists, match="named 'one' already exists"):
        admin.create_fic(app, name="one", issuer="https://issuer.example", subject="b")
    with pytest.raises(AlreadyExists, match="Issuer and subject combination"):
        admin.create_fic(app, name="two", issuer="https://issuer.example", subject="a")


def test_a_role_assignment_is_made_once(admin: DirectoryAdmin) -> None:
    admin.create_tenant("Fabrikam", tenant_id=TENANT)
    role = AppRole(id=APP_TWO, value="Blob.Read", display_name="Read")
    resource = admin.create_application(TENANT, "api", app_id=APP_ONE, app_roles=[role])
    client = admin.create_application(TENANT, "caller", app_id=APP_TWO)
    admin.assign_role(client, resource, "Blob.Read")
    with pytest.raises(AlreadyExists):
        admin.assign_role(client, resource, "Blob.Read")


def test_the_format_rules_are_pure_functions_returning_problems() -> None:
    assert rules.is_guid(TENANT) and not rules.is_guid("not-a-guid")
    assert rules.domain_problems(["ok.example", "nodot", "has space.example"]) == [
        "domain 'nodot' is not a DNS name",
        "domain 'has space.example' is not a DNS name",
    ]
    assert rules.identifier_uri_problems(["api://x", "plain"]) == [
        "identifier URI 'plain' must be a URI such as api://name"
    ]
    assert rules.valid_fic_name("abc") and not rules.valid_fic_name("-ab")
    assert rules.same_identifier_uri("api://x/", "api://x")


def test_ids_given_to_the_writer_must_be_guids(admin: DirectoryAdmin) -> None:
    with pytest.raises(ConfigurationError, match="is not a GUID"):
        admin.create_tenant("Fabrikam", tenant_id="fabrikam")
    admin.create_tenant("Fabrikam", tenant_id=TENANT)
    with pytest.raises(ConfigurationError, match="appId 'api-one' is not a GUID"):
        admin.create_application(TENANT, "api-one", app_id="api-one")
