"""Failures in the `failures` table and per-integration counts in `failuresummary`.

failures:       PK = integration, RK = inverted time + unique suffix (newest first); the RK is the failure id.
failuresummary: PK = integration, RK = shard "0".."N-1". Many instances record failures at
                once; spreading the counter over shards keeps them from serialising on one
                ETag'd row. Readers add the shards up.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared.errors import ConcurrencyConflict
from shared.models import AttemptRecord, Failure, FailureOrigin, UtcDatetime
from shared.storage.tables import BatchOperation, Entity, Table

SUMMARY_SHARDS = 4
_MAX_CONFLICT_RETRIES = 8


class FailureSummary(BaseModel):
    integration: str
    count: int
    first_failed_at: UtcDatetime | None
    last_failed_at: UtcDatetime | None
    by_origin: dict[str, int]


@dataclass
class _Tally:
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    by_origin: dict[str, int] = field(default_factory=dict)


class FailureStore:
    def __init__(self, failures: Table, summary: Table, *, rng: random.Random | None = None) -> None:
        self._failures = failures
        self._summary = summary
        self._rng = rng or random.Random()

    @property
    def table(self) -> Table:
        return self._failures

    async def add(self, failure: Failure) -> None:
        """Write the failure row, then count it. The row goes first: a crash between the two
        undercounts (repaired by `rebuild_summary`), never counts a failure that is not there."""
        await self._failures.insert(failure_to_row(failure))
        await self._bump(failure.integration, +1, failure.origin, failure.failed_at)

    async def get(self, integration: str, failure_id: str) -> tuple[Failure, str] | None:
        row = await self._failures.get(integration, failure_id)
        return None if row is None else (failure_from_row(row), str(row["_etag"]))

    async def remove(self, failure: Failure, *, etag: str | None = None) -> bool:
        """Delete the row (ETag-guarded when given) and uncount it; False if it was already gone."""
        if not await self._failures.delete(failure.integration, failure.id, etag=etag):
            return False
        await self._bump(failure.integration, -1, failure.origin, None)
        return True

    async def _bump(self, integration: str, delta: int, origin: FailureOrigin, failed_at: datetime | None) -> None:
        for _ in range(_MAX_CONFLICT_RETRIES):
            shard = str(self._rng.randrange(SUMMARY_SHARDS))
            row = await self._summary.get(integration, shard)
            updated = _bumped(row, integration, shard, delta, origin, failed_at)
            try:
                if row is None:
                    await self._summary.insert(updated)
                else:
                    await self._summary.update(updated, etag=str(row["_etag"]))
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"failure summary of {integration!r}: too much contention")

    async def summary(self, integration: str) -> FailureSummary:
        tally = _Tally()
        async for row in self._summary.query("PartitionKey eq @pk", {"pk": integration}):
            _add_shard(tally, row)
        return _summary_of(integration, tally)

    async def overview(self) -> list[FailureSummary]:
        """Every integration with failures; reads only the summary table (a few rows per integration)."""
        tallies: dict[str, _Tally] = {}
        async for row in self._summary.query("PartitionKey ne @empty", {"empty": ""}):
            _add_shard(tallies.setdefault(row["PartitionKey"], _Tally()), row)
        items = [_summary_of(name, tally) for name, tally in tallies.items() if tally.count > 0]
        return sorted(items, key=lambda s: s.last_failed_at or datetime.min, reverse=True)

    async def rebuild_summary(self, integration: str) -> FailureSummary:
        """Recount one integration from its failure rows (streamed) and replace its shards."""
        tally = _Tally()
        async for row in self._failures.query(
            "PartitionKey eq @pk", {"pk": integration}, select=["RowKey", "Origin", "FailedAt"]
        ):
            failed_at: datetime = row["FailedAt"]
            tally.count += 1
            tally.by_origin[row["Origin"]] = tally.by_origin.get(row["Origin"], 0) + 1
            tally.first = failed_at if tally.first is None else min(tally.first, failed_at)
            tally.last = failed_at if tally.last is None else max(tally.last, failed_at)
        # One transaction replaces every shard: readers never see a half-rebuilt count. A failure
        # recorded between the scan and this write is lost from the count until the next rebuild.
        shards = [_tally_row(integration, "0", tally)] + [
            _tally_row(integration, str(shard), _Tally()) for shard in range(1, SUMMARY_SHARDS)
        ]
        await self._summary.transact(BatchOperation.upsert(row) for row in shards)
        return _summary_of(integration, tally)

    async def list_rows(
        self, query: str, parameters: dict[str, Any], *, page_size: int = 100
    ) -> AsyncIterator[tuple[Failure, str]]:
        async for row in self._failures.query(query, parameters, page_size=page_size):
            yield failure_from_row(row), str(row["_etag"])


def _origin_property(origin: str) -> str:
    return f"Origin_{origin}"


def _bumped(
    row: Entity | None, integration: str, shard: str, delta: int, origin: FailureOrigin, failed_at: datetime | None
) -> Entity:
    tally = _Tally()
    if row is not None:
        _add_shard(tally, row)
    tally.count += delta
    tally.by_origin[origin.value] = tally.by_origin.get(origin.value, 0) + delta
    if failed_at is not None:
        tally.first = failed_at if tally.first is None else min(tally.first, failed_at)
        tally.last = failed_at if tally.last is None else max(tally.last, failed_at)
    return _tally_row(integration, shard, tally)


def _tally_row(integration: str, shard: str, tally: _Tally) -> Entity:
    row: Entity = {"PartitionKey": integration, "RowKey": shard, "Count": tally.count}
    if tally.first is not None:
        row["FirstFailedAt"] = tally.first
    if tally.last is not None:
        row["LastFailedAt"] = tally.last
    for origin, count in tally.by_origin.items():
        row[_origin_property(origin)] = count
    return row


def _add_shard(tally: _Tally, row: Entity) -> None:
    tally.count += int(row.get("Count", 0))
    for key, value in row.items():
        if key.startswith("Origin_"):
            origin = key.removeprefix("Origin_")
            tally.by_origin[origin] = tally.by_origin.get(origin, 0) + int(value)
    first, last = row.get("FirstFailedAt"), row.get("LastFailedAt")
    if first is not None:
        tally.first = first if tally.first is None else min(tally.first, first)
    if last is not None:
        tally.last = last if tally.last is None else max(tally.last, last)


def _summary_of(integration: str, tally: _Tally) -> FailureSummary:
    by_origin = {origin: count for origin, count in sorted(tally.by_origin.items()) if count > 0}
    empty = tally.count <= 0
    return FailureSummary(
        integration=integration,
        count=max(tally.count, 0),
        first_failed_at=None if empty else tally.first,
        last_failed_at=None if empty else tally.last,
        by_origin=by_origin,
    )


def failure_to_row(failure: Failure) -> Entity:
    row: Entity = {
        "PartitionKey": failure.integration,
        "RowKey": failure.id,
        "MessageId": failure.message_id,
        "FailedAt": failure.failed_at,
        "Reason": failure.reason,
        "Group": failure.group,
        "Origin": failure.origin.value,
        "Attempts": failure.attempts,
        "DelayActions": failure.delay_actions,
        "ResendCount": failure.resend_count,
        "RecoveryCount": failure.recovery_count,
        "Headers": json.dumps(failure.headers, separators=(",", ":")),
        "History": json.dumps([a.model_dump(mode="json") for a in failure.history], separators=(",", ":")),
    }
    optional = {
        "StatusCode": failure.status_code,
        "Sender": failure.sender,
        "Receiver": failure.receiver,
        "CorrelationId": failure.correlation_id,
        "BodyRef": failure.body_ref,
        "ContentType": failure.content_type,
        "ReceivedAt": failure.received_at,
    }
    # Table storage has no nulls: an absent property is the null.
    row.update({key: value for key, value in optional.items() if value is not None})
    return row


def failure_from_row(row: Entity) -> Failure:
    return Failure(
        id=row["RowKey"],
        integration=row["PartitionKey"],
        message_id=row["MessageId"],
        failed_at=row["FailedAt"],
        reason=row["Reason"],
        group=row["Group"],
        origin=FailureOrigin(row["Origin"]),
        status_code=row.get("StatusCode"),
        sender=row.get("Sender"),
        receiver=row.get("Receiver"),
        attempts=row.get("Attempts", 0),
        delay_actions=row.get("DelayActions", 0),
        resend_count=row.get("ResendCount", 0),
        recovery_count=row.get("RecoveryCount", 0),
        correlation_id=row.get("CorrelationId"),
        body_ref=row.get("BodyRef"),
        content_type=row.get("ContentType"),
        headers=json.loads(row.get("Headers") or "{}"),
        received_at=row.get("ReceivedAt"),
        history=[AttemptRecord.model_validate(a) for a in json.loads(row.get("History") or "[]")],
    )
