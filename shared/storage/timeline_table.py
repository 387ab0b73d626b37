"""Message timelines in the `timeline` table: one partition per message, its events in time order.

PK = `<integration>|<message id>` ('|' is in neither), so one message's events are one partition,
read as a single ordered range and written in one transaction. RK = `<UTC time, 20 digits>|<key>`:
fixed-width time sorts oldest first, and the key tells apart events of one instant; the same event
recorded twice (a reconstructed `received`, an attempt recorded again) has the same RowKey and is
upserted, not duplicated. Spread over many small partitions, a busy integration's timelines never
contend for one partition (Azure's per-partition throughput is the limit that matters).

Rows expire FAILURE_RETENTION_DAYS after the event (the retention timer's purge: a scan on `At`,
bounded per run, since no key orders the table by time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from shared.errors import BadParameter
from shared.storage.cursors import decode_cursor, encode_cursor
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Entity, Table
from shared.timeline.models import TimelineEvent, TimelineItem, TimelinePage
from shared.tokens import Cursor

_ROW_KEY = re.compile(r"^[0-9]{20}\|[A-Za-z0-9._-]{1,80}$")


def partition_of(integration: str, message_id: str) -> str:
    return f"{integration}|{message_id}"


def row_key_of(item: TimelineItem) -> str:
    utc = item.at.astimezone(UTC)
    return f"{utc:%Y%m%d%H%M%S}{utc.microsecond:06d}|{item.key}"


class TableTimelineStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def append(self, integration: str, message_id: str, items: Sequence[TimelineItem]) -> None:
        partition = partition_of(integration, message_id)
        rows = [BatchOperation.upsert(_row_of(partition, item)) for item in items]
        for start in range(0, len(rows), MAX_BATCH_OPERATIONS):
            await self._table.transact(rows[start : start + MAX_BATCH_OPERATIONS])

    async def page(self, integration: str, message_id: str, *, limit: int, cursor: Cursor | None) -> TimelinePage:
        query = "PartitionKey eq @pk"
        parameters: dict[str, str] = {"pk": partition_of(integration, message_id)}
        after = _after(cursor)
        if after is not None:
            query += " and RowKey gt @after"
            parameters["after"] = after
        rows = self._table.query(query, parameters, page_size=min(limit + 1, 1000))
        items: list[TimelineItem] = []
        last = ""
        async for row in rows:
            if len(items) == limit:
                await rows.aclose()
                return TimelinePage(items, Cursor(encode_cursor({"after": last}) or ""))
            items.append(_item_of(row))
            last = str(row["RowKey"])
        return TimelinePage(items, None)

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        removed = 0
        batch: list[BatchOperation] = []
        rows = self._table.query("At lt @cutoff", {"cutoff": cutoff}, page_size=1000, select=["PartitionKey", "RowKey"])
        async for row in rows:
            if removed >= limit:
                await rows.aclose()
                break
            if batch and (len(batch) == MAX_BATCH_OPERATIONS or row["PartitionKey"] != batch[0].entity["PartitionKey"]):
                await self._table.transact(batch)
                batch = []
            batch.append(BatchOperation.delete(row["PartitionKey"], row["RowKey"]))
            removed += 1
        await self._table.transact(batch)
        return removed


def _after(cursor: Cursor | None) -> str | None:
    """The RowKey a cursor resumes after; `BadParameter("cursor")` for one this store did not issue."""
    if cursor is None:
        return None
    token = decode_cursor(cursor) or {}
    after = token.get("after")
    if not isinstance(after, str) or _ROW_KEY.fullmatch(after) is None:
        raise BadParameter("cursor", "is not a cursor this API returned")
    return after


def _row_of(partition: str, item: TimelineItem) -> Entity:
    row: Entity = {
        "PartitionKey": partition,
        "RowKey": row_key_of(item),
        "At": item.at,
        "Event": item.event.value,
        "Key": item.key,
        "Details": json.dumps(item.details, separators=(",", ":"), default=str),
    }
    if item.instance is not None:
        row["Instance"] = item.instance
    return row


def _item_of(row: Entity) -> TimelineItem:
    return TimelineItem(
        at=row["At"],
        event=TimelineEvent(row["Event"]),
        instance=row.get("Instance"),
        details=json.loads(row.get("Details") or "{}"),
        key=row["Key"],
    )
