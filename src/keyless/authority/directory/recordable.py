"""What the audit log and the refusal store may hold of a request: never a value verbatim.

A refused request may carry anything where an identifier belongs: a client secret pasted as
``client_id``, a whole JWT, a newline that would start a forged log line. Before a refusal is
logged or stored, each request value goes through one of these:

* :func:`identifier`: kept when it passed validation (a GUID client id, a tenant GUID or domain),
  otherwise replaced by a fingerprint (``unverified:sha256:<12 hex>``), which lets an admin match
  two refusals of the same value without ever seeing it;
* :func:`printable`: free text (a refusal's reason) with control characters escaped and its length
  bounded, and any unvalidated value it quotes replaced by that value's fingerprint.

So a refusal row is bounded (a few KiB at most) and one audit record is one line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable

__all__ = ["MAX_REASON", "fingerprint", "identifier", "printable"]

MAX_REASON = 1024
MAX_PATH = 256
_WHOLE_WORD_BELOW = 8
_ESCAPES = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F)}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def fingerprint(value: str) -> str:
    """A short, stable stand-in for a value that must not be recorded."""
    return "unverified:sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def identifier(value: str | None, valid: Callable[[str], bool]) -> str | None:
    """``value`` itself when ``valid`` says it is a well-formed identifier, else its fingerprint."""
    if value is None or value == "":
        return value
    return value if len(value) <= 256 and valid(value) else fingerprint(value)


def printable(text: str, *, hide: Iterable[str] = (), limit: int = MAX_REASON) -> str:
    """``text`` as one bounded line; each non-empty value of ``hide`` replaced by its fingerprint.

    Values are replaced in one pass, longest first, so a fingerprint is never rewritten. A value
    shorter than ``_WHOLE_WORD_BELOW`` characters is replaced only where it stands alone (a
    client id ``a`` hides the quoted ``'a'``, not every letter a of the reason)."""
    values = sorted({v for v in hide if v}, key=len, reverse=True)
    if values:
        pattern = "|".join(
            re.escape(v) if len(v) >= _WHOLE_WORD_BELOW else rf"(?<![\w.~-]){re.escape(v)}(?![\w.~-])"
            for v in values
        )
        text = re.sub(pattern, lambda m: fingerprint(m.group(0)), text)
    text = text.translate(_ESCAPES)
    if len(text) > limit:
        text = text[: limit - 20] + f"...({len(text)} chars)"
    return text
