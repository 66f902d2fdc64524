"""Logging for keyless's processes: one handler on the ``keyless`` logger, level from settings.

Audit records (``keyless.audit``) carry codes, tenants, trace ids and reasons; never a secret or a
whole token.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_logging"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "info") -> None:
    """Send keyless's records to stderr at ``level`` (idempotent: safe in every worker process)."""
    logger = logging.getLogger("keyless")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_keyless", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._keyless = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = False
