"""The demo API of ``keyless dev``: a small blob store kept on disk.

It is a real service (containers of blobs, PUT/GET/LIST/DELETE, ETags, streaming), meant to run
behind ``keyless guard``, which checks the caller's token and roles; the store itself only reads the
identity headers the guard forwards, to record who wrote a blob. Names are restricted so a blob
can never be written outside its container directory.

    PUT    /containers/{container}                 create a container
    GET    /containers                              list containers
    GET    /containers/{container}                  list blobs (JSON)
    PUT    /containers/{container}/blobs/{name}     write a blob (body streamed to disk)
    GET    /containers/{container}/blobs/{name}     read a blob
    DELETE /containers/{container}/blobs/{name}     delete a blob
    GET    /healthz
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

__all__ = ["DEFAULT_POLICY", "create_blob_api"]

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
_BLOB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
MAX_BLOB = 64 * 1024 * 1024

# The guard policy that goes with this API (YAML-equivalent), used by ``keyless dev``.
DEFAULT_POLICY = {
    "anonymous": ["/healthz"],
    "default": "deny",
    "rules": [
        {"path": "/containers/**", "methods": ["GET"], "any_of": ["role:Blob.Read", "role:Blob.Write"]},
        {"path": "/containers/**", "methods": ["PUT", "DELETE"], "all_of": ["role:Blob.Write"]},
    ],
}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def container(self, name: str) -> Path | None:
        return self.root / name if _NAME.match(name) else None

    def blob(self, container: str, name: str) -> Path | None:
        folder = self.container(container)
        if folder is None or not _BLOB.match(name) or name in (".", ".."):
            return None
        return folder / name

    @staticmethod
    def meta_path(blob: Path) -> Path:
        return blob.with_name(f".{blob.name}.json")


def create_blob_api(root: Path) -> Starlette:
    store = BlobStore(root)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def list_containers(request: Request) -> Response:
        names = sorted(p.name for p in store.root.iterdir() if p.is_dir())
        return JSONResponse({"containers": names})

    async def put_container(request: Request) -> Response:
        folder = store.container(request.path_params["container"])
        if folder is None:
            return _error(400, "InvalidContainerName", "3-63 lower-case letters, digits and '-'")
        existed = folder.exists()
        folder.mkdir(exist_ok=True)
        return JSONResponse({"name": folder.name}, status_code=200 if existed else 201)

    async def list_blobs(request: Request) -> Response:
        folder = store.container(request.path_params["container"])
        if folder is None or not folder.is_dir():
            return _error(404, "ContainerNotFound", "no such container")
        blobs = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            meta = json.loads(store.meta_path(path).read_text()) if store.meta_path(path).exists() else {}
            blobs.append({"name": path.name, "size": path.stat().st_size, **meta})
        return JSONResponse({"container": folder.name, "blobs": blobs})

    async def put_blob(request: Request) -> Response:
        path = store.blob(request.path_params["container"], request.path_params["name"])
        if path is None:
            return _error(400, "InvalidName", "invalid container or blob name")
        if not path.parent.is_dir():
            return _error(404, "ContainerNotFound", "create the container first (PUT /containers/NAME)")
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BLOB:
                        return _error(413, "BlobTooLarge", f"blobs are limited to {MAX_BLOB} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        etag = f'"{digest.hexdigest()[:32]}"'
        meta: dict[str, str | None] = {
            "etag": etag,
            "contentType": request.headers.get("content-type", "application/octet-stream"),
            "writtenBy": request.headers.get("x-keyless-app-id") or request.headers.get("x-keyless-subject"),
        }
        store.meta_path(path).write_text(json.dumps(meta))
        return JSONResponse(
            {"name": path.name, "size": size, **meta}, status_code=201, headers={"ETag": etag}
        )

    async def get_blob(request: Request) -> Response:
        path = store.blob(request.path_params["container"], request.path_params["name"])
        if path is None or not path.is_file():
            return _error(404, "BlobNotFound", "no such blob")
        meta = json.loads(store.meta_path(path).read_text()) if store.meta_path(path).exists() else {}
        headers = {"ETag": meta["etag"]} if "etag" in meta else {}
        return FileResponse(path, media_type=meta.get("contentType"), headers=headers)

    async def delete_blob(request: Request) -> Response:
        path = store.blob(request.path_params["container"], request.path_params["name"])
        if path is None or not path.is_file():
            return _error(404, "BlobNotFound", "no such blob")
        path.unlink()
        store.meta_path(path).unlink(missing_ok=True)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/healthz", health, methods=["GET"]),
            Route("/containers", list_containers, methods=["GET"]),
            Route("/containers/{container}", put_container, methods=["PUT"]),
            Route("/containers/{container}", list_blobs, methods=["GET"]),
            Route("/containers/{container}/blobs/{name}", put_blob, methods=["PUT"]),
            Route("/containers/{container}/blobs/{name}", get_blob, methods=["GET"]),
            Route("/containers/{container}/blobs/{name}", delete_blob, methods=["DELETE"]),
        ]
    )
