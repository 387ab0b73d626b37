"""`MemoryTimelineStore` and `MemorySettleCounts`: message timelines and retry jobs' settle counters in memory
(the twins of `TableTimelineStore` and `TableSettleCounts`)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from shared.errors import BadParameter
from shared.jobs.ports import SettleTally
from shared.timeline.models import TimelineItem, TimelinePage
from shared.tokens import Cursor
from tests.twins.faults import Twin

_CURSOR = re.compile(r"^memory-timeline:([0-9]+)$")


def _order(item: TimelineItem) -> tuple[datetime, str]:
    return item.at.astimezone(UTC), item.key


class MemoryTimelineStore(Twin):
    """Implements `shared.timeline.ports.TimelineStore`: per message, events by (time, key), oldest first."""

    def __init__(self) -> None:
        super().__init__()
        # Each event kept as its JSON (the key is not part of it), so a reader gets a copy rebuilt from storage.
        self._messages: dict[tuple[str, str], dict[tuple[datetime, str], str]] = {}

    async def append(self, integration: str, message_id: str, items: Sequence[TimelineItem]) -> None:
        async with self.call("append"):
            kept = self._messages.setdefault((integration, message_id), {})
            for item in items:
                kept[_order(item)] = item.model_dump_json()

    async def page(self, integration: str, message_id: str, *, limit: int, cursor: Cursor | None) -> TimelinePage:
        async with self.call("page"):
            start = _start(cursor)
            kept = self._messages.get((integration, message_id), {})
            ordered = [_item(text, key) for (_, key), text in sorted(kept.items())]
            items = ordered[start : start + limit]
            more = len(ordered) > start + limit
            return TimelinePage(items, Cursor(f"memory-timeline:{start + limit}") if more else None)

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        async with self.call("purge_before"):
            removed = 0
            for message, kept in list(self._messages.items()):
                for order in sorted(kept):
                    if removed < limit and order[0] < cutoff:
                        del kept[order]
                        removed += 1
                if not kept:
                    del self._messages[message]
            return removed

    # --- affordances -------------------------------------------------------------------------

    def events(self, integration: str, message_id: str) -> list[str]:
        """The message's event names, oldest first."""
        kept = self._messages.get((integration, message_id), {})
        return [_item(text, key).event.value for (_, key), text in sorted(kept.items())]

    def messages(self) -> list[tuple[str, str]]:
        """Every (integration, message id) with a timeline."""
        return sorted(self._messages)


def _item(text: str, key: str) -> TimelineItem:
    return TimelineItem.model_validate({**json.loads(text), "key": key})


def _start(cursor: Cursor | None) -> int:
    if cursor is None:
        return 0
    found = _CURSOR.match(cursor)
    if found is None:
        raise BadParameter("cursor", "is not a cursor this API returned")
    return int(found.group(1))


class MemorySettleCounts(Twin):
    """Implements `shared.jobs.ports.SettleCounts`: shard rows by (integration, job id, shard)."""

    def __init__(self) -> None:
        super().__init__()
        self._shards: dict[tuple[str, str, str], SettleTally] = {}

    async def save_shard(self, integration: str, job_id: str, shard: str, tally: SettleTally) -> None:
        async with self.call("save_shard"):
            self._shards[(integration, job_id, shard)] = tally

    async def totals(self, integration: str, job_ids: Sequence[str]) -> dict[str, SettleTally]:
        async with self.call("totals"):
            wanted = set(job_ids)
            totals: dict[str, SettleTally] = {}
            for (pk, job_id, _), tally in self._shards.items():
                if pk == integration and job_id in wanted:
                    totals[job_id] = totals.get(job_id, SettleTally()) + tally
            return totals

    # --- affordances -------------------------------------------------------------------------

    def shards(self, integration: str, job_id: str) -> int:
        return sum(1 for pk, job, _ in self._shards if pk == integration and job == job_id)
