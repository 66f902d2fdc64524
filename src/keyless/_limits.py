"""Resource bounds of every HTTP server keyless starts, as plain data (no server dependency), so the
guard's configuration and the authority's settings can carry them.

The protocol that enforces them lives in :mod:`keyless._boundedhttp`; the defaults and their
meaning live here, once, and each service's settings read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LIMIT_DESCRIPTIONS", "ServerLimits"]

LIMIT_DESCRIPTIONS = {
    "max_header_bytes": "Largest request line plus headers accepted (bytes); larger is refused with 431.",
    "max_headers": "Most header fields in one request; more is refused with 431.",
    "header_timeout": (
        "Seconds a client has to send a whole request line and headers; slower is refused with 408 "
        "(a new connection that sends nothing is closed)."
    ),
    "keep_alive_timeout": "Seconds an idle keep-alive connection stays open after a response.",
    "max_connections": (
        "Concurrent connections per server process; requests on connections past it get 503."
    ),
}


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Per-process bounds on what a client can make a server hold: see ``LIMIT_DESCRIPTIONS``."""

    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000

    def __post_init__(self) -> None:
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be at least 1024")
        if self.max_headers < 8:
            raise ValueError("max_headers must be at least 8")
        if not self.header_timeout > 0 or not self.keep_alive_timeout > 0:
            raise ValueError("header_timeout and keep_alive_timeout must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
