"""The authority's persistence: the ``Store`` contract and its SQL implementation.

``SqlStore`` keeps tenants, applications, credentials and signing keys in SQLite or PostgreSQL
(schema managed by the packaged Alembic migrations, see ``upgrade_to_head``);
``RedisOneTimeUse`` is an optional shared replay cache for ``use_once`` across nodes.
The implementations are imported on first use, so code that only needs the ``Store`` protocol
(and the CLI) does not pay for SQLAlchemy and Alembic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keyless.authority.store._protocol import Store, StoreSnapshot

if TYPE_CHECKING:
    from keyless.authority.store._migrate import upgrade_to_head
    from keyless.authority.store._redis_once import RedisOneTimeUse
    from keyless.authority.store._sql import SqlStore

__all__ = ["RedisOneTimeUse", "SqlStore", "Store", "StoreSnapshot", "upgrade_to_head"]

_LAZY = {
    "SqlStore": "keyless.authority.store._sql",
    "RedisOneTimeUse": "keyless.authority.store._redis_once",
    "upgrade_to_head": "keyless.authority.store._migrate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
