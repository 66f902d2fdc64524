"""Assertion sources: a token file re-read when it rotates (in place or kubelet-style) or nears
expiry, with errors that name the file; the Google metadata server (keyless's emulator, for real);
GitHub Actions' OIDC endpoint (a stand-in on 127.0.0.1); an environment variable; a callable."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.credential._helpers import FakeTime, fake_jwt

from keyless.credential import (
    AssertionSourceError,
    CallableAssertion,
    CredentialUnavailableError,
    EnvironmentAssertion,
    GitHubActionsAssertion,
    MetadataServerAssertion,
    RetryPolicy,
    TokenFileAssertion,
    decode_unverified,
)
from keyless.metadata import DEFAULT_UNIQUE_ID, MetadataServer

# -- token file ------------------------------------------------------------------------------------


def test_the_token_file_is_read_once_while_it_does_not_change(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = fake_jwt()
    path.write_text(token + "\n")
    source = TokenFileAssertion(path)
    assert source.get() == token
    assert source.get() == token
    assert source.reads == 1


def test_a_token_file_rewritten_in_place_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(fake_jwt(n=1))
    source = TokenFileAssertion(path)
    source.get()
    rotated = fake_jwt(n=2, extra="a longer token after rotation")
    path.write_text(rotated)
    assert source.get() == rotated


def test_a_kubelet_style_atomic_rotation_is_picked_up(tmp_path: Path) -> None:
    """The kubelet writes a new timestamped directory and swaps the ``..data`` symlink."""
    volume = tmp_path / "tokens"
    volume.mkdir()

    def publish(name: str, token: str) -> None:
        (volume / name).mkdir()
        (volume / name / "token").write_text(token)
        (volume / "..data_tmp").symlink_to(name)
        os.replace(volume / "..data_tmp", volume / "..data")

    first, second = fake_jwt(n=1), fake_jwt(n=2)
    publish("..2026_01_01_00_00_00.1", first)
    (volume / "token").symlink_to("..data/token")
    source = TokenFileAssertion(volume / "token")
    assert source.get() == first
    publish("..2026_01_01_00_48_00.2", second)
    assert source.get() == second
    assert source.reads == 2


def test_the_file_is_re_read_when_its_token_nears_expiry_even_if_it_looks_unchanged(tmp_path: Path) -> None:
    time_ = FakeTime()
    path = tmp_path / "token"
    old, new = fake_jwt(exp=time_.now + 100, n=1), fake_jwt(exp=time_.now + 3700, n=2)
    assert len(old) == len(new)
    path.write_text(old)
    source = TokenFileAssertion(path, refresh_margin=60, clock=time_)
    assert source.get() == old
    stat = path.stat()
    with path.open("r+") as handle:  # same inode, same size, same mtime: stat cannot tell
        handle.write(new)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    time_.advance(39)
    assert source.get() == old
    time_.advance(2)  # now within 60 s of the old token's exp
    assert source.get() == new
    assert source.reads == 2


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "it is empty"),
        (b"   \n", "it is empty"),
        (b"hunter2-not-a-token", "characters that are not a JWT"),
        (b"a.b", "three base64url parts"),
        (b"eyJhbGciOiJSUzI1NiJ9.!!!.sig", "payload is not base64url"),
        (b"\xff\xfe\x00binary", "not UTF-8 text"),
    ],
)
def test_garbage_in_the_token_file_is_a_clear_error_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "azure-identity-token"
    path.write_bytes(content)
    with pytest.raises(AssertionSourceError) as caught:
        TokenFileAssertion(path).get()
    message = str(caught.value)
    assert str(path) in message
    assert reason in message
    assert caught.value.source == str(path)
    assert "hunter2" not in message  # the content is never echoed


def test_an_expired_token_in_the_file_is_refused_before_entra_would(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(fake_jwt(exp=1_000))
    with pytest.raises(AssertionSourceError, match="AADSTS700024") as caught:
        TokenFileAssertion(path).get()
    assert str(path) in str(caught.value)


def test_a_missing_token_file_makes_the_credential_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "token"
    with pytest.raises(CredentialUnavailableError, match="does not exist") as caught:
        TokenFileAssertion(path).get()
    assert str(path) in str(caught.value)


async def test_the_token_file_async_read_matches_the_sync_one(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = fake_jwt()
    path.write_text(token)
    assert await TokenFileAssertion(path).aget() == token


# -- environment and callables ---------------------------------------------------------------------


def test_the_environment_source_reads_the_variable_on_each_call() -> None:
    environ = {"KEYLESS_FEDERATED_TOKEN": fake_jwt(n=1)}
    source = EnvironmentAssertion(environ=environ)
    assert source.get() == environ["KEYLESS_FEDERATED_TOKEN"]
    environ["KEYLESS_FEDERATED_TOKEN"] = fake_jwt(n=2)
    assert source.get() == environ["KEYLESS_FEDERATED_TOKEN"]
    environ["KEYLESS_FEDERATED_TOKEN"] = "garbage"
    with pytest.raises(AssertionSourceError, match="environment variable KEYLESS_FEDERATED_TOKEN: not a JWT"):
        source.get()
    with pytest.raises(CredentialUnavailableError, match="MY_TOKEN is not set"):
        EnvironmentAssertion("MY_TOKEN", environ={}).get()


async def test_a_callable_may_be_sync_or_async_but_must_return_a_jwt() -> None:
    token = fake_jwt()

    async def coroutine_function() -> str:
        return token

    assert CallableAssertion(lambda: token).get() == token
    assert await CallableAssertion(lambda: token).aget() == token
    assert await CallableAssertion(coroutine_function).aget() == token
    with pytest.raises(TypeError, match=r"keyless\.credential\.aio"):
        CallableAssertion(coroutine_function).get()
    with pytest.raises(AssertionSourceError, match="returned int, not a str"):
        CallableAssertion(lambda: 42).get()  # type: ignore[arg-type, return-value]


# -- Google metadata server (keyless's emulator) ---------------------------------------------------


@pytest.fixture(scope="module")
def metadata() -> Iterator[MetadataServer]:
    with MetadataServer() as server:
        yield server


def test_the_metadata_source_gets_an_id_token_for_entra_from_the_emulator(metadata: MetadataServer) -> None:
    source = MetadataServerAssertion(host=metadata.host_port)
    _, claims = decode_unverified(source.get())
    assert claims["aud"] == "api://AzureADTokenExchange"
    assert claims["sub"] == DEFAULT_UNIQUE_ID
    assert claims["iss"] == metadata.url
    last = metadata.requests[-1]
    assert "/computeMetadata/v1/instance/service-accounts/default/identity?" in last
    assert "audience=api%3A%2F%2FAzureADTokenExchange" in last
    source.close()


def test_the_metadata_source_honours_gce_metadata_host(
    metadata: MetadataServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", metadata.host_port)
    source = MetadataServerAssertion("api://custom-audience")
    assert source.base_url == f"http://{metadata.host_port}"
    assert decode_unverified(source.get())[1]["aud"] == "api://custom-audience"
    source.close()
    monkeypatch.delenv("GCE_METADATA_HOST")
    assert MetadataServerAssertion().base_url == "http://metadata.google.internal"


async def test_the_async_metadata_source_and_its_errors(metadata: MetadataServer) -> None:
    source = MetadataServerAssertion(host=metadata.host_port)
    assert decode_unverified(await source.aget())[1]["sub"] == DEFAULT_UNIQUE_ID
    await source.aclose()
    missing = MetadataServerAssertion(
        host=metadata.host_port, account="nobody@example.iam.gserviceaccount.com"
    )
    with pytest.raises(AssertionSourceError, match="no such service account"):
        await missing.aget()
    await missing.aclose()


def test_a_server_that_is_not_a_metadata_server_is_named_as_such(github: GitHubStandIn) -> None:
    source = MetadataServerAssertion(host=github.host_port)
    with pytest.raises(AssertionSourceError, match="not a metadata server"):
        source.get()
    source.close()


def test_an_unreachable_metadata_server_is_retried_then_reported() -> None:
    source = MetadataServerAssertion(
        host="127.0.0.1:9", timeout=0.5, retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    with pytest.raises(AssertionSourceError, match=r"metadata server http://127\.0\.0\.1:9") as caught:
        source.get()
    assert caught.value.retryable
    source.close()


# -- GitHub Actions (a stand-in for the runner's OIDC endpoint) -------------------------------------


class GitHubStandIn:
    """``GET /_apis/token?api-version=2.0&audience=...`` with ``Authorization: bearer <request token>``."""

    request_token = "runner-request-token"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.token = fake_jwt(
            iss="https://token.actions.githubusercontent.com", sub="repo:org/app:ref:refs/heads/main"
        )
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                stand_in.seen.append({"query": query, "authorization": self.headers.get("Authorization")})
                ok = self.headers.get("Authorization") == f"bearer {stand_in.request_token}"
                body = json.dumps(
                    {"count": 1, "value": stand_in.token} if ok else {"message": "denied"}
                ).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host_port = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host_port}/_apis/token?api-version=2.0"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def environment(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn()
    yield stand_in
    stand_in.close()


async def test_the_github_source_asks_for_the_entra_audience_with_the_request_token(
    github: GitHubStandIn,
) -> None:
    source = GitHubActionsAssertion(environ=github.environment())
    assert source.get() == github.token
    assert await source.aget() == github.token
    query = github.seen[-1]["query"]
    assert query == {"api-version": ["2.0"], "audience": ["api://AzureADTokenExchange"]}
    source.close()
    await source.aclose()


def test_the_github_source_reports_a_refused_request_and_missing_permissions(github: GitHubStandIn) -> None:
    source = GitHubActionsAssertion(request_url=github.url, request_token="wrong")
    with pytest.raises(AssertionSourceError, match="HTTP 401"):
        source.get()
    source.close()
    with pytest.raises(CredentialUnavailableError, match="id-token: write"):
        GitHubActionsAssertion(environ={})
