"""The authority's persistence: the ``Store`` contract and its SQL implementation.

``SqlStore`` keeps tenants, applications, credentials and signing keys in SQLite or PostgreSQL
(schema managed by the packaged Alembic migrations, see ``upgrade_to_head``);
``RedisOneTimeUse`` is an optional shared replay cache for ``use_once`` across nodes.
"""

from keyless.authority.store._migrate import upgrade_to_head
from keyless.authority.store._protocol import Store
from keyless.authority.store._redis_once import RedisOneTimeUse
from keyless.authority.store._sql import SqlStore

__all__ = ["RedisOneTimeUse", "SqlStore", "Store", "upgrade_to_head"]
