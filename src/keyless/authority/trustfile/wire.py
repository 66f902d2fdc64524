"""A *resolved* trust document: what ``keyless plan`` / ``keyless apply`` send to a running authority.

A trust file names its secrets and certificates by reference (``valueFrom: {env|file}``,
``certificateFile``), and a server must never resolve those against its own environment or files.
So the CLI loads and validates the file where it lives (every problem as ``file:line``), resolves
the references there, and sends the result over the admin API (TLS, admin key):

* certificates inline as PEM (``certificate``);
* a secret with a value as ``{displayName, secretText}``; one without (an exported ``hint``) as
  ``{displayName, hint}``, which keeps the stored secret as it is.

The server turns it back into the same ``TrustDocument`` and plans or applies it exactly as
``keyless serve --trust FILE`` would, so a changed secret is replaced and an unchanged one is not.
Secret values travel only in the request; plans and answers never carry them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyless.authority.trustfile.read import parse_trust_document
from keyless.authority.trustfile.schema import TrustDocument, Where
from keyless.authority.trustfile.write import document_data

__all__ = ["from_wire", "localize_problems", "to_wire"]

SOURCE = "<api>"


# -- the client side --------------------------------------------------------------------------------


def to_wire(doc: TrustDocument) -> dict[str, Any]:
    """The loaded (and resolved) document as JSON for the admin API, secrets included."""
    return document_data(doc, secret_values=True)


def _places(doc: TrustDocument) -> dict[str, str]:
    """``tenants[0].applications[1]`` -> ``trust.yaml:12`` for every object that has a place."""
    found: dict[str, str] = {}

    def note(where: Where) -> None:
        if where.path:
            found[where.path] = str(where)

    for tenant in doc.tenants:
        note(tenant.where)
        for app in tenant.applications:
            note(app.where)
            for secret in app.secrets:
                note(secret.where)
            for assignment in app.role_assignments:
                note(assignment.where)
    return found


def localize_problems(problems: Sequence[tuple[str | None, str]], doc: TrustDocument) -> list[str]:
    """The server's problems, each given as (``target``: its path in the document such as
    ``tenants[0].applications[1]``, or None; message), pointed back at the file's lines."""
    places = _places(doc)
    result = []
    for target, message in problems:
        path = target or ""
        while path and path not in places:
            path = path.rsplit(".", 1)[0] if "." in path else ""
        if path:
            result.append(f"{places[path]}: {message}")
        elif target:
            result.append(f"{SOURCE}: {target}: {message}")
        else:
            result.append(message)
    return result


# -- the server side --------------------------------------------------------------------------------


def from_wire(data: object) -> TrustDocument:
    """Parse a resolved document: the usual validation, with ``secretText`` values accepted."""
    return parse_trust_document(data, source=SOURCE, inline_secrets=True)
