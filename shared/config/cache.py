"""Integration configs for the hot path: read from the table, kept briefly in memory.

The engine looks the config up for every message; a short TTL turns that into one table read
per integration per few seconds, and a config change still takes effect quickly everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.config.models import IntegrationConfig
from shared.config.ports import IntegrationStore
from shared.errors import StorageUnavailable


class ConfigCache:
    def __init__(
        self,
        store: IntegrationStore,
        *,
        ttl_s: float = 10.0,
        cache_misses: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        # Ingest must accept an integration the moment it is created; the engine may remember
        # a miss briefly so a flood for a deleted integration does not hammer the table.
        self._cache_misses = cache_misses
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, IntegrationConfig | None]] = {}

    async def get(self, integration: str) -> IntegrationConfig | None:
        entry = self._entries.get(integration)
        now = self._monotonic()
        if entry is not None and now - entry[0] < self._ttl_s:
            return entry[1]
        try:
            config = await self._store.get(integration)
        except StorageUnavailable:
            # During an outage the last known config is better than none (ingest can still park).
            if entry is not None and entry[1] is not None:
                return entry[1]
            raise
        if config is not None or self._cache_misses:
            self._entries[integration] = (now, config)
        return config
