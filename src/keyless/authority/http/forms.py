"""Reading a token request: form body with a size cap, strict content type, no duplicate
parameters, and the optional HTTP Basic client authentication (RFC 6749 2.3.1)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from keyless.authority.token.aadsts import refuse

__all__ = ["read_basic_auth", "read_form"]

MAX_FIELDS = 64


async def read_form(request: Request, limit: int) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise refuse(90014, limit=limit).with_detail(f"content type {ctype or 'missing'!r}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise refuse(90014, limit=limit).with_detail(f"declared body size {declared}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise refuse(90014, limit=limit).with_detail("body too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise refuse(90014, limit=limit).with_detail(f"unreadable form: {exc}") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise refuse(9002313, detail=f"Parameter '{name[:64]}' appears more than once.")
        form[name] = value
    return form


def read_basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise refuse(9002313, detail="Only HTTP Basic client authentication is accepted in the header.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise refuse(9002313, detail="The Basic authorization header is not valid base64.") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise refuse(9002313, detail="The Basic authorization header has no ':'.")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
