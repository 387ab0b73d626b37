"""The audit trail in the `audit` table: month partitions, two rows per entry, newest first in both.

PK = the entry's UTC month (`YYYYMM`). Each entry is one row under RK `a|<entry id>` (the global
trail) and, when it concerns an integration, one more under RK `i|<integration>|<entry id>` (that
integration's trail). Entry ids are inverted time (shared.ids), so either trail reads newest first
as a key range, and both rows of an entry share a partition: they are written in one transaction,
never one without the other. A listing walks the months from the newest down; the retention purge
removes whole old months (and the old end of the month it cuts through) in transactions of 100.

Rows are upserted: appending the same entry again (a retried write) leaves it as it was.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.models import Actor, AuditAction, AuditEntry, AuditFilter, AuditPage
from shared.errors import BadParameter
from shared.ids import RECORD_ID_PATTERN, id_prefix_at
from shared.storage.cursors import decode_cursor, encode_cursor
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Entity, Table
from shared.tokens import Cursor
from shared.values import utc_now

GLOBAL = "a|"
#: How far ahead of this instance's clock a listing starts: another instance's clock may run ahead.
CLOCK_SKEW = timedelta(days=1)
#: Rows asked of the service per page when the filters are applied by the service.
SERVER_PAGE = 500
#: Months one page request walks at most; a sparse filter over a long trail goes on from the cursor.
MONTHS_PER_PAGE = 24
_BUCKET = re.compile(r"^[0-9]{6}$")


def bucket_of(moment: datetime) -> str:
    """The partition of an entry made at `moment`: its UTC year and month."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}{utc.month:02d}"


def previous_bucket(bucket: str) -> str:
    year, month = int(bucket[:4]), int(bucket[4:])
    return f"{year - 1:04d}12" if month == 1 else f"{year:04d}{month - 1:02d}"


def trail_prefix(integration: str | None) -> str:
    return GLOBAL if integration is None else f"i|{integration}|"


class TableAuditStore:
    def __init__(self, table: Table, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._table = table
        self._clock = clock

    async def append(self, entry: AuditEntry) -> None:
        bucket = bucket_of(entry.at)
        rows = [_row_of(entry, bucket, GLOBAL)]
        if entry.integration is not None:
            rows.append(_row_of(entry, bucket, trail_prefix(entry.integration)))
        await self._table.transact([BatchOperation.upsert(row) for row in rows])

    async def page(self, selection: AuditFilter, *, limit: int, cursor: Cursor | None) -> AuditPage:
        """Newest month first; within a month, the trail's key range. At most MONTHS_PER_PAGE months a
        request: a page cut short there (perhaps empty) carries the cursor of the next month."""
        start, after = _position(cursor)
        newest = bucket_of(min(selection.to or datetime.max.replace(tzinfo=UTC), self._clock() + CLOCK_SKEW))
        bucket = start if start is not None else newest
        oldest = await self._oldest_bucket()
        if oldest is not None and selection.from_ is not None:
            oldest = max(oldest, bucket_of(selection.from_))
        items: list[AuditEntry] = []
        for _ in range(MONTHS_PER_PAGE):
            if oldest is None or bucket < oldest:
                return AuditPage(items, None)
            text, parameters = _query(selection, bucket, after)
            rows = self._table.query(text, parameters, page_size=min(SERVER_PAGE, limit + 1))
            async for row in rows:
                if len(items) == limit:
                    await rows.aclose()
                    return AuditPage(items, _cursor(bucket, trail_prefix(selection.integration) + items[-1].id))
                items.append(_entry_of(row))
            bucket, after = previous_bucket(bucket), None
        more = oldest is not None and bucket >= oldest
        return AuditPage(items, _cursor(bucket, None) if more else None)

    async def _oldest_bucket(self) -> str | None:
        # Rows come in key order: the first row of the table is in its oldest month.
        page = await self._table.query_page("PartitionKey ge @low", {"low": "0"}, page_size=1, select=["PartitionKey"])
        return str(page.items[0]["PartitionKey"]) if page.items else None

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        """Whole months before the cutoff's, then the old end of the cutoff's month."""
        removed = 0
        cut = bucket_of(cutoff)
        queries: list[tuple[str, dict[str, Any]]] = [
            ("PartitionKey lt @cut", {"cut": cut}),
            ("PartitionKey eq @cut and At lt @cutoff", {"cut": cut, "cutoff": cutoff}),
        ]
        for text, parameters in queries:
            batch: list[BatchOperation] = []
            async for row in self._table.query(text, parameters, select=["PartitionKey", "RowKey"]):
                if batch and (
                    len(batch) == MAX_BATCH_OPERATIONS or row["PartitionKey"] != batch[0].entity["PartitionKey"]
                ):
                    await self._table.transact(batch)
                    batch = []
                if removed >= limit:
                    break
                batch.append(BatchOperation.delete(row["PartitionKey"], row["RowKey"]))
                # Entries are counted once: by their global row.
                removed += str(row["RowKey"]).startswith(GLOBAL)
            await self._table.transact(batch)
            if removed >= limit:
                break
        return removed


def _query(selection: AuditFilter, bucket: str, after: str | None) -> tuple[str, dict[str, Any]]:
    prefix = trail_prefix(selection.integration)
    # The trail's key range within the month, narrowed by time: ids are inverted time ('.' sorts after '-').
    low = prefix + (id_prefix_at(selection.to) if selection.to is not None else "")
    high = prefix + (id_prefix_at(selection.from_) + "." if selection.from_ is not None else "~")
    clauses = ["PartitionKey eq @pk", "RowKey ge @low", "RowKey lt @high"]
    parameters: dict[str, Any] = {"pk": bucket, "low": low, "high": high}
    if after is not None:
        clauses.append("RowKey gt @after")
        parameters["after"] = after
    if selection.action is not None:
        clauses.append("Action eq @action")
        parameters["action"] = selection.action.value
    if selection.actor is not None:
        # Spaces inside the parentheses: the SDK's substitution misreads `@actor)` (DESIGN.md section 10).
        clauses.append("( ActorId eq @actor or ActorName eq @actor )")
        parameters["actor"] = selection.actor
    return " and ".join(clauses), parameters


def _position(cursor: Cursor | None) -> tuple[str | None, str | None]:
    """The month and the RowKey a cursor resumes after; `BadParameter("cursor")` for one not made here."""
    if cursor is None:
        return None, None
    token = decode_cursor(cursor) or {}
    bucket, after = token.get("month"), token.get("after")
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or not (after is None or isinstance(after, str)):
        raise BadParameter("cursor", "is not a cursor this API returned")
    if after is not None:
        entry_id = after.rpartition("|")[2]
        if not after.startswith(("a|", "i|")) or re.fullmatch(RECORD_ID_PATTERN, entry_id) is None:
            raise BadParameter("cursor", "is not a cursor this API returned")
    return bucket, after


def _cursor(bucket: str, after: str | None) -> Cursor:
    """Where the next page starts: in `bucket`, after the row `after` (or at the month's newest)."""
    return Cursor(encode_cursor({"month": bucket, "after": after}) or "")


def _row_of(entry: AuditEntry, bucket: str, prefix: str) -> Entity:
    row: Entity = {
        "PartitionKey": bucket,
        "RowKey": prefix + entry.id,
        "EntryId": entry.id,
        "At": entry.at,
        "Action": entry.action.value,
        "ActorName": entry.actor.name,
        "ActorId": entry.actor.id,
        "ActorAuth": entry.actor.auth,
        "Details": json.dumps(entry.details, separators=(",", ":")),
    }
    if entry.integration is not None:
        row["Integration"] = entry.integration
    if entry.target is not None:
        row["Target"] = entry.target
    return row


def _entry_of(row: Entity) -> AuditEntry:
    return AuditEntry(
        id=row["EntryId"],
        at=row["At"],
        actor=Actor(name=row["ActorName"], id=row["ActorId"], auth=row["ActorAuth"]),
        action=AuditAction(row["Action"]),
        integration=row.get("Integration"),
        target=row.get("Target"),
        details=json.loads(row.get("Details") or "{}"),
    )
