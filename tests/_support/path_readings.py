"""How upstream routers read a request path: the readings the guard's differential path test and
its fuzz suite hold the policy's reading against."""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import unquote_to_bytes

PARTS = ("public", "admin", "blobs")  # the test site's parts; anything else is "other"


def part_of_path(path: str, *, ignore_case: bool = False) -> str:
    """The part of the test site a resolved path belongs to (its first segment)."""
    first = path.split("/")[1] if path.startswith("/") and "/" in path else ""
    first = first.upper().lower() if ignore_case else first
    return first if first in PARTS else "other"


def resolve_like_a_servlet_container(path_info: str, *, ignore_case: bool) -> str:
    """The path a normalising upstream serves for ``PATH_INFO`` (decoded once, as latin-1 by wsgiref).

    Every reading an upstream in the wild applies: UTF-8, ``\\`` as ``/``, ``;`` parameters
    stripped per segment, decoded once more, NFKC, empty and dot segments resolved, case folded.
    """
    text = path_info.encode("latin-1").decode("utf-8", "replace").replace("\\", "/")
    segments = [segment.split(";", 1)[0] for segment in text.split("/")]
    text = unquote_to_bytes("/".join(segments)).decode("utf-8", "replace").replace("\\", "/")
    text = unicodedata.normalize("NFKC", text)
    text = "/".join(segment.split(";", 1)[0] for segment in text.split("/"))
    resolved = posixpath.normpath("/" + text.lstrip("/"))
    return resolved.upper().lower() if ignore_case else resolved
