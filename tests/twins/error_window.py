"""`MemoryErrorWindow`: failures per integration per fixed interval, in memory (the twin of `TableErrorWindow`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from tests.twins.faults import Twin


def _interval_start(now: datetime, interval_minutes: int) -> int:
    """Epoch second at which the fixed interval of `interval_minutes` that contains `now` began."""
    length = interval_minutes * 60
    epoch = int(now.timestamp())
    return epoch - epoch % length


class MemoryErrorWindow(Twin):
    """Implements `shared.delivery.ports.ErrorWindow`. Affordance: `reads`, the number of `count` calls.

    Unlike `TableErrorWindow` it caches nothing: every `count` reads the current numbers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._counts: Counter[tuple[str, int]] = Counter()

    async def record(self, integration: str, *, interval_minutes: int, now: datetime) -> None:
        async with self.call("record"):
            self._counts[(integration, _interval_start(now, interval_minutes))] += 1

    async def count(self, integration: str, *, interval_minutes: int, now: datetime) -> int:
        async with self.call("count"):
            return self._counts[(integration, _interval_start(now, interval_minutes))]

    async def purge_before(self, integration: str, before: datetime) -> int:
        async with self.call("purge_before"):
            cutoff = int(before.timestamp())
            old = [key for key in self._counts if key[0] == integration and key[1] < cutoff]
            for key in old:
                del self._counts[key]
            return len(old)

    @property
    def reads(self) -> int:
        return self.calls["count"]
