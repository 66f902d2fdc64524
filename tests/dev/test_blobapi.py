"""The demo blob store: a real service with containers, streamed writes, ETags, and safe names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from keyless.dev._blobapi import create_blob_api


@pytest.fixture
async def client(tmp_path: Path) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_blob_api(tmp_path / "blobs"))
    return httpx.AsyncClient(transport=transport, base_url="http://blob")


async def test_blob_round_trip_with_etag_and_writer(client: httpx.AsyncClient, tmp_path: Path) -> None:
    assert (await client.put("/containers/reports")).status_code == 201
    written = await client.put(
        "/containers/reports/blobs/q3.txt",
        content=b"hello",
        headers={"content-type": "text/plain", "x-keyless-app-id": "caller-app"},
    )
    assert written.status_code == 201
    assert written.json()["writtenBy"] == "caller-app"
    read = await client.get("/containers/reports/blobs/q3.txt")
    assert read.content == b"hello"
    assert read.headers["etag"] == written.headers["etag"]
    listing = (await client.get("/containers/reports")).json()
    assert [b["name"] for b in listing["blobs"]] == ["q3.txt"]
    assert (await client.delete("/containers/reports/blobs/q3.txt")).status_code == 204
    assert (await client.get("/containers/reports/blobs/q3.txt")).status_code == 404
    assert (tmp_path / "blobs" / "reports").is_dir()


def test_dot_segments_and_hidden_names_are_not_blob_names(tmp_path: Path) -> None:
    from keyless.dev._blobapi import BlobStore

    store = BlobStore(tmp_path)
    assert all(store.blob("safe", name) is None for name in ("..", ".", ".hidden", "a/b", "a\\b", ""))
    assert store.blob("../etc", "passwd") is None


@pytest.mark.parametrize("name", [".hidden", "a/b", "%2e%2e", ""])
async def test_blob_names_cannot_escape_the_container(client: httpx.AsyncClient, name: str) -> None:
    await client.put("/containers/safe")
    response = await client.put(f"/containers/safe/blobs/{name}", content=b"x")
    assert response.status_code in (400, 404, 405)


async def test_writing_into_a_missing_container_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.put("/containers/nope/blobs/a.txt", content=b"x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ContainerNotFound"
