"""The credential against a real keyless authority over HTTPS: sync and async, a token file that
rotates, the seed scenario with keyless's Google metadata emulator, and 200 threads / 200 tasks
asking at once for exactly one token request, counted at the authority (its audit log)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from tests._support.authority_server import Federation, RunningAuthority, seed_federation
from tests._support.oidc_issuer import TestIssuer
from tests.credential._helpers import FakeTime
from tests.credential.conftest import SUBJECT

from keyless.credential import (
    ClientAssertionCredential,
    ClientAuthenticationError,
    WorkloadIdentityCredential,
    aio,
)
from keyless.metadata import DEFAULT_UNIQUE_ID, MetadataServer


class AuditLog(logging.Handler):
    """The authority's audit lines: one 'federated assertion accepted' per token request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def accepted(self, sub: str | None = None) -> int:
        return sum(
            "federated assertion accepted" in line and (sub is None or f"sub={sub} " in line + " ")
            for line in self.lines
        )


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    logger, handler = logging.getLogger("keyless.audit"), AuditLog()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def verified_claims(authority: RunningAuthority, federation: Federation, token: str) -> dict[str, Any]:
    """Check the token as blob-api would: discovery -> jwks_uri -> signature, issuer, audience."""
    context = authority.ssl_context()
    metadata = httpx.get(
        f"{authority.base_url}/{federation.tenant_id}/v2.0/.well-known/openid-configuration", verify=context
    ).json()
    key = jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=federation.resource.app_id, issuer=metadata["issuer"]
    )
    return claims


def sync_credential(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> ClientAssertionCredential:
    return ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: issuer.mint(sub=SUBJECT),
        authority=authority.base_url,
        verify=authority.ssl_context(),
    )


def test_a_federated_assertion_becomes_an_access_token_with_the_apps_role(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, audit: AuditLog
) -> None:
    with sync_credential(authority, federation, issuer) as credential:
        info = credential.get_token_info(federation.scope)
        token = credential.get_token(federation.scope)
    claims = verified_claims(authority, federation, token.token)
    assert claims["roles"] == ["Blob.Read"]
    assert claims["azp"] == federation.client.app_id
    assert token.token == info.token
    # the client's request time + expires_in: the server's exp, or a second earlier across a tick
    assert token.expires_on == info.expires_on
    assert claims["exp"] - 1 <= token.expires_on <= claims["exp"]
    assert info.refresh_on is not None
    assert info.refresh_on < info.expires_on
    assert audit.accepted() == 1


async def test_the_async_credential_gets_the_same_kind_of_token(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    async def assertion() -> str:
        return issuer.mint(sub=SUBJECT)

    async with aio.ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        assertion,
        authority=authority.base_url,
        verify=authority.ca_file,
    ) as credential:
        token = await credential.get_token(federation.scope)
        assert (await credential.get_token_info(federation.scope)).token == token.token
    assert verified_claims(authority, federation, token.token)["roles"] == ["Blob.Read"]


def test_the_authoritys_refusal_arrives_with_its_aadsts_code_and_ids(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer
) -> None:
    credential = ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: issuer.mint(sub="someone-else"),
        authority=authority.base_url,
        verify=authority.ssl_context(),
    )
    with credential, pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(federation.scope)
    error = caught.value
    assert (error.aadsts, error.error, error.status) == (700213, "invalid_client", 401)
    assert error.trace_id
    assert error.correlation_id
    assert error.error_description is not None
    assert error.error_description.startswith("AADSTS700213:")


def test_a_rotated_token_file_is_used_for_the_next_token_request(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, audit: AuditLog, tmp_path: Path
) -> None:
    authority.admin.create_fic(
        federation.client,
        name="rotated",
        issuer=issuer.url,
        subject="rotated-subject",
        audiences=["api://AzureADTokenExchange"],
    )
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(issuer.mint(sub=SUBJECT))
    environ = {
        "AZURE_TENANT_ID": federation.tenant_id,
        "AZURE_CLIENT_ID": federation.client.app_id,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_AUTHORITY_HOST": authority.base_url,
    }
    clock = FakeTime()
    with WorkloadIdentityCredential(
        environ=environ, verify=authority.ssl_context(), clock=clock
    ) as credential:
        first = credential.get_token(federation.scope)
        token_file.write_text(issuer.mint(sub="rotated-subject", lifetime=7200))
        clock.advance(5400)  # the first access token is due (expired, even)
        second = credential.get_token(federation.scope)
    assert first.token != second.token
    assert audit.accepted(SUBJECT) == 1
    assert audit.accepted("rotated-subject") == 1


# -- the seed scenario: Google metadata (keyless's emulator) -> keyless authority -------------------


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    with MetadataServer() as server:
        yield server


def test_the_seed_scenario_metadata_server_to_authority_without_secrets(
    authority: RunningAuthority, metadata: MetadataServer
) -> None:
    federation = seed_federation(authority.admin, issuer=metadata.url, subject=DEFAULT_UNIQUE_ID)
    environ = {
        "AZURE_TENANT_ID": federation.tenant_id,
        "AZURE_CLIENT_ID": federation.client.app_id,
        "AZURE_AUTHORITY_HOST": authority.base_url,
        "GCE_METADATA_HOST": metadata.host_port,
    }
    with WorkloadIdentityCredential(environ=environ, verify=authority.ssl_context()) as credential:
        assert credential.source.__class__.__name__ == "MetadataServerAssertion"
        token = credential.get_token(federation.scope)
    assert verified_claims(authority, federation, token.token)["roles"] == ["Blob.Read"]
    assert any("/identity?audience=api%3A%2F%2FAzureADTokenExchange" in line for line in metadata.requests)


async def test_the_seed_scenario_works_async_too(
    authority: RunningAuthority, metadata: MetadataServer
) -> None:
    federation = seed_federation(authority.admin, issuer=metadata.url, subject=DEFAULT_UNIQUE_ID)
    async with aio.WorkloadIdentityCredential(
        tenant_id=federation.tenant_id,
        client_id=federation.client.app_id,
        source="metadata",
        authority=authority.base_url,
        environ={"GCE_METADATA_HOST": metadata.host_port},
        verify=authority.ssl_context(),
    ) as credential:
        token = await credential.get_token(federation.scope)
    assert verified_claims(authority, federation, token.token)["roles"] == ["Blob.Read"]


# -- concurrency -----------------------------------------------------------------------------------


def test_200_threads_asking_at_once_cause_exactly_one_token_request(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, audit: AuditLog
) -> None:
    credential = sync_credential(authority, federation, issuer)
    start = threading.Barrier(200)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            tokens.append(credential.get_token(federation.scope).token)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    credential.close()
    assert errors == []
    assert len(tokens) == 200
    assert len(set(tokens)) == 1
    assert audit.accepted() == 1


async def test_200_tasks_asking_at_once_cause_exactly_one_token_request(
    authority: RunningAuthority, federation: Federation, issuer: TestIssuer, audit: AuditLog
) -> None:
    async with aio.ClientAssertionCredential(
        federation.tenant_id,
        federation.client.app_id,
        lambda: issuer.mint(sub=SUBJECT),
        authority=authority.base_url,
        verify=authority.ssl_context(),
    ) as credential:
        tokens = await asyncio.gather(*(credential.get_token(federation.scope) for _ in range(200)))
    assert len({t.token for t in tokens}) == 1
    assert audit.accepted() == 1
