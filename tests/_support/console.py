"""Helpers for the console's tests: the CSRF field of a page, and signing in."""

from __future__ import annotations

import re

import httpx


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    form = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in", data={"csrf": csrf_of(form.text), "key": key, "next": "/console/overview"}
    )
