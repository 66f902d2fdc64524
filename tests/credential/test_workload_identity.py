"""WorkloadIdentityCredential reads the variables users already set (AZURE_*, with KEYLESS_* twins
that win) and picks the assertion source the environment offers: a token file, a token in a
variable, GitHub Actions, the Google metadata server; explicit arguments win over all of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyless.credential import (
    CredentialUnavailableError,
    EnvironmentAssertion,
    GitHubActionsAssertion,
    MetadataServerAssertion,
    TokenFileAssertion,
    WorkloadIdentityCredential,
)
from keyless.credential.aio import WorkloadIdentityCredential as AsyncWorkloadIdentityCredential
from keyless.errors import ConfigurationError

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0c1c5a3f-52a2-4a0e-bb5e-2f3c4e5d6a7b"


@pytest.fixture(autouse=True)
def not_on_google_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("keyless.credential._config._PRODUCT_NAME", tmp_path / "no-dmi")


def azure_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "azure-identity-token"),
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
        **extra,
    }


def test_the_azure_workload_identity_variables_configure_a_token_file_credential(tmp_path: Path) -> None:
    credential = WorkloadIdentityCredential(environ=azure_env(tmp_path))
    assert (credential.tenant_id, credential.client_id) == (TENANT, CLIENT)
    assert credential.authority == "https://login.microsoftonline.com"
    assert isinstance(credential.source, TokenFileAssertion)
    assert credential.source.path == tmp_path / "azure-identity-token"


def test_keyless_variables_win_over_azure_ones_and_arguments_over_both(tmp_path: Path) -> None:
    environ = azure_env(
        tmp_path,
        KEYLESS_TENANT_ID="contoso.example",
        KEYLESS_CLIENT_ID="keyless-client",
        KEYLESS_FEDERATED_TOKEN_FILE=str(tmp_path / "keyless-token"),
        KEYLESS_AUTHORITY_HOST="localhost:8443",
    )
    credential = WorkloadIdentityCredential(environ=environ)
    assert (credential.tenant_id, credential.client_id) == ("contoso.example", "keyless-client")
    assert credential.authority == "https://localhost:8443"
    assert isinstance(credential.source, TokenFileAssertion)
    assert credential.source.path == tmp_path / "keyless-token"
    explicit = WorkloadIdentityCredential(
        tenant_id=TENANT, client_id="argument", token_file_path=tmp_path / "arg", environ=environ
    )
    assert explicit.client_id == "argument"
    assert isinstance(explicit.source, TokenFileAssertion)
    assert explicit.source.path == tmp_path / "arg"


def test_missing_tenant_and_client_are_reported_together() -> None:
    with pytest.raises(CredentialUnavailableError) as caught:
        WorkloadIdentityCredential(environ={"AZURE_FEDERATED_TOKEN_FILE": "/t"})
    assert "tenant_id (or AZURE_TENANT_ID / KEYLESS_TENANT_ID)" in str(caught.value)
    assert "client_id (or AZURE_CLIENT_ID / KEYLESS_CLIENT_ID)" in str(caught.value)


def test_sources_are_detected_in_order_file_env_github_metadata(tmp_path: Path) -> None:
    base = {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT}
    github = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://runner/_apis/token",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x",
    }
    metadata = {"GCE_METADATA_HOST": "127.0.0.1:8080"}
    everything = {
        **base,
        **github,
        **metadata,
        "KEYLESS_FEDERATED_TOKEN": "a.b.c",
        "AZURE_FEDERATED_TOKEN_FILE": "/t",
    }
    assert isinstance(WorkloadIdentityCredential(environ=everything).source, TokenFileAssertion)
    del everything["AZURE_FEDERATED_TOKEN_FILE"]
    assert isinstance(WorkloadIdentityCredential(environ=everything).source, EnvironmentAssertion)
    del everything["KEYLESS_FEDERATED_TOKEN"]
    assert isinstance(WorkloadIdentityCredential(environ=everything).source, GitHubActionsAssertion)
    source = WorkloadIdentityCredential(environ={**base, **metadata}).source
    assert isinstance(source, MetadataServerAssertion)
    assert source.base_url == "http://127.0.0.1:8080"
    on_cloud_run = WorkloadIdentityCredential(environ={**base, "K_SERVICE": "caller"}).source
    assert isinstance(on_cloud_run, MetadataServerAssertion)
    assert on_cloud_run.base_url == "http://metadata.google.internal"


def test_no_source_is_a_clear_error_listing_the_options() -> None:
    with pytest.raises(CredentialUnavailableError) as caught:
        WorkloadIdentityCredential(environ={"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT})
    message = str(caught.value)
    for option in (
        "AZURE_FEDERATED_TOKEN_FILE",
        "GCE_METADATA_HOST",
        "id-token: write",
        "KEYLESS_FEDERATED_TOKEN",
    ):
        assert option in message


def test_a_source_can_be_forced_and_tuned_from_the_environment(tmp_path: Path) -> None:
    environ = azure_env(
        tmp_path,
        KEYLESS_ASSERTION_SOURCE="metadata",
        KEYLESS_ASSERTION_AUDIENCE="api://custom",
        KEYLESS_METADATA_ACCOUNT="caller@proj.iam.gserviceaccount.com",
    )
    source = WorkloadIdentityCredential(environ=environ).source
    assert isinstance(source, MetadataServerAssertion)
    assert (source.audience, source.account) == ("api://custom", "caller@proj.iam.gserviceaccount.com")
    forced = WorkloadIdentityCredential(source="env", environ=environ).source
    assert isinstance(forced, EnvironmentAssertion)
    with pytest.raises(CredentialUnavailableError, match="token_file_path"):
        WorkloadIdentityCredential(
            source="file", environ={"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT}
        )
    with pytest.raises(ValueError, match="unknown assertion source 'ftp'"):
        WorkloadIdentityCredential(source="ftp", environ=environ)  # type: ignore[arg-type]


def test_an_http_authority_is_refused_like_azure_identity_does(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"TLS protected \(https\)"):
        WorkloadIdentityCredential(environ=azure_env(tmp_path, AZURE_AUTHORITY_HOST="http://localhost:8443"))


async def test_the_async_credential_reads_the_same_environment(tmp_path: Path) -> None:
    credential = AsyncWorkloadIdentityCredential(environ=azure_env(tmp_path))
    assert isinstance(credential.source, TokenFileAssertion)
    assert (credential.tenant_id, credential.client_id) == (TENANT, CLIENT)
    await credential.close()
