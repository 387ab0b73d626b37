"""Failures per integration per fixed interval, in the `errorwindow` table, shared by all instances.

PK = integration, RK = "<interval start epoch s>-<shard>". Every instance adds to a random
shard (ETag'd read-modify-write), so concurrent failures do not queue on one row; the count
is the sum of the interval's shards. In-process caching only saves reads for a moment: the
table is the source of truth.
"""

from __future__ import annotations

import random
import time
from datetime import datetime

from shared.errors import ConcurrencyConflict
from shared.storage.cursors import version_of
from shared.storage.tables import Table

ERROR_WINDOW_SHARDS = 8
_MAX_CONFLICT_RETRIES = 8


def interval_start(now: datetime, interval_minutes: int) -> int:
    """Epoch second at which the fixed error-window interval containing `now` began."""
    length = interval_minutes * 60
    epoch = int(now.timestamp())
    return epoch - epoch % length


class TableErrorWindow:
    def __init__(self, table: Table, *, cache_ttl_s: float = 1.0, rng: random.Random | None = None) -> None:
        self._table = table
        self._cache_ttl_s = cache_ttl_s
        self._rng = rng or random.Random()
        self._cache: dict[tuple[str, int], tuple[float, int]] = {}

    @staticmethod
    def _row_key(start: int, shard: int) -> str:
        return f"{start:012d}-{shard}"

    async def record(self, integration: str, *, interval_minutes: int, now: datetime) -> None:
        start = interval_start(now, interval_minutes)
        for _ in range(_MAX_CONFLICT_RETRIES):
            shard = self._rng.randrange(ERROR_WINDOW_SHARDS)
            row_key = self._row_key(start, shard)
            row = await self._table.get(integration, row_key)
            try:
                if row is None:
                    await self._table.insert(
                        {"PartitionKey": integration, "RowKey": row_key, "Count": 1, "IntervalStart": start}
                    )
                else:
                    await self._table.update({**row, "Count": int(row["Count"]) + 1}, etag=version_of(row))
                self._cache.pop((integration, start), None)
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"error window of {integration!r}: too much contention")

    async def count(self, integration: str, *, interval_minutes: int, now: datetime) -> int:
        start = interval_start(now, interval_minutes)
        cached = self._cache.get((integration, start))
        if cached is not None and time.monotonic() - cached[0] < self._cache_ttl_s:
            return cached[1]
        total = 0
        async for row in self._table.query(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            {"pk": integration, "low": f"{start:012d}-", "high": f"{start:012d}."},
            select=["Count"],
        ):
            total += int(row["Count"])
        self._cache[(integration, start)] = (time.monotonic(), total)
        return total

    async def purge_before(self, integration: str, before: datetime) -> int:
        """Delete intervals that started before `before` (old windows are never read again)."""
        removed = 0
        async for row in self._table.query(
            "PartitionKey eq @pk and RowKey lt @high",
            {"pk": integration, "high": f"{int(before.timestamp()):012d}-"},
            select=["RowKey"],
        ):
            removed += await self._table.delete(integration, row["RowKey"])
        return removed
