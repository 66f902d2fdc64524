"""The credential drops into real Azure SDK code: azure-storage-blob's ``BlobServiceClient`` and
azure-core pipelines (``BearerTokenCredentialPolicy``, sync and async) call a service guarded by
keyless's ``GuardMiddleware`` with tokens from a real keyless authority; failures surface as
azure-core's ``ClientAuthenticationError``; plain httpx works through ``KeylessAuth``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core import AsyncPipelineClient, PipelineClient
from azure.core.exceptions import ClientAuthenticationError as AzureClientAuthenticationError
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy, BearerTokenCredentialPolicy
from azure.core.pipeline.transport import AsyncioRequestsTransport, RequestsTransport
from azure.core.rest import HttpRequest
from azure.storage.blob import BlobServiceClient
from tests._support.authority_server import Federation, RunningAuthority
from tests._support.oidc_issuer import TestIssuer
from tests.credential._guarded import GuardedService, run_guarded_service
from tests.credential.conftest import SUBJECT

from keyless.credential import ClientAssertionCredential, KeylessAuth, aio


@pytest.fixture
def service(authority: RunningAuthority, federation: Federation) -> Iterator[GuardedService]:
    with run_guarded_service(authority, federation) as running:
        yield running


def credential(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, client_id: str | None = None
) -> ClientAssertionCredential:
    return ClientAssertionCredential(
        federation.tenant_id,
        client_id or federation.client.app_id,
        lambda: issuer.mint(sub=SUBJECT),
        authority=authority.base_url,
        verify=authority.ssl_context(),
    )


def expected_caller(federation: Federation) -> dict[str, Any]:
    return {"app_id": federation.client.app_id, "roles": ["Blob.Read"], "tenant_id": federation.tenant_id}


def test_blob_service_client_calls_the_guarded_service_with_a_keyless_token(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, service: GuardedService
) -> None:
    with credential(authority, federation, issuer) as cred:
        client = BlobServiceClient(service.base_url, credential=cred, audience="api://blob-api")
        with client:
            info = client.get_account_information()
            client.get_account_information()
    assert (info["sku_name"], info["account_kind"]) == ("Standard_LRS", "StorageV2")
    assert service.callers == [expected_caller(federation)] * 2


def test_an_authentication_failure_reaches_the_storage_caller_as_azure_cores_error(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, service: GuardedService
) -> None:
    with credential(authority, federation, issuer, client_id="not-registered") as cred:
        # azure-storage retries every AzureError, credential failures included (10 times by default)
        client = BlobServiceClient(
            service.base_url, credential=cred, audience="api://blob-api", retry_total=0
        )
        with client, pytest.raises(AzureClientAuthenticationError) as caught:
            client.get_account_information()
    assert caught.value.aadsts == 700016  # type: ignore[attr-defined]
    assert "AADSTS700016" in str(caught.value)
    assert service.callers == []


def test_an_azure_core_pipeline_with_bearer_token_policy_uses_the_credential(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, service: GuardedService
) -> None:
    with credential(authority, federation, issuer) as cred:
        policy = BearerTokenCredentialPolicy(cred, "api://blob-api/.default")
        with PipelineClient(
            service.base_url,
            policies=[policy],
            transport=RequestsTransport(connection_verify=str(authority.ca_file)),
        ) as client:
            response = client.send_request(HttpRequest("GET", f"{service.base_url}/whoami"))
    assert response.status_code == 200
    assert response.json() == expected_caller(federation)


async def test_an_async_azure_core_pipeline_uses_the_async_credential(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, service: GuardedService
) -> None:
    async with aio.ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: issuer.mint(sub=SUBJECT),
        authority=authority.base_url,
        verify=authority.ssl_context(),
    ) as cred:
        policy = AsyncBearerTokenCredentialPolicy(cred, "api://blob-api/.default")
        async with AsyncPipelineClient(
            service.base_url,
            policies=[policy],
            transport=AsyncioRequestsTransport(connection_verify=str(authority.ca_file)),
        ) as client:
            for _ in range(2):
                response = await client.send_request(HttpRequest("GET", f"{service.base_url}/whoami"))
                assert response.status_code == 200
    assert service.callers == [expected_caller(federation)] * 2


async def test_plain_httpx_clients_authenticate_with_keyless_auth(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, service: GuardedService
) -> None:
    context = authority.ssl_context()
    with credential(authority, federation, issuer) as cred:
        auth = KeylessAuth(cred, "api://blob-api/.default")
        with httpx.Client(auth=auth, verify=context) as client:
            assert client.get(f"{service.base_url}/whoami").json() == expected_caller(federation)
        async with httpx.AsyncClient(auth=auth, verify=context) as client:
            assert (await client.get(f"{service.base_url}/whoami")).json() == expected_caller(federation)
    async with (
        aio.ClientAssertionCredential(
            federation.tenant_id,
            federation.client.app_id,
            lambda: issuer.mint(sub=SUBJECT),
            authority=authority.base_url,
            verify=context,
        ) as async_cred,
        httpx.AsyncClient(
            auth=KeylessAuth(async_cred, ["api://blob-api/.default"]), verify=context
        ) as client,
    ):
        assert (await client.get(f"{service.base_url}/whoami")).status_code == 200
    without = httpx.get(f"{service.base_url}/whoami", verify=context)
    assert without.status_code == 401
