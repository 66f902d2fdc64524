"""``keyless dev``: the whole system on one machine, and the demo service it protects.

Names are imported on first use: the stack pulls in the authority, the metadata emulator and the
guard, which ``keyless dev`` needs and the rest of the CLI does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyless.dev._scenario import play
    from keyless.dev._stack import DevPorts, DevStack, run_stack

__all__ = ["DevPorts", "DevStack", "play", "run_stack"]

_LAZY = {
    "play": "keyless.dev._scenario",
    "DevPorts": "keyless.dev._stack",
    "DevStack": "keyless.dev._stack",
    "run_stack": "keyless.dev._stack",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
