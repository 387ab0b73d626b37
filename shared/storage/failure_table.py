"""Failures in the `failures` table, and their counts per group in `failuresummary`.

failures:       PK = integration, RK = inverted time + unique suffix (newest first); the RK is the failure id.
failuresummary: PK = integration, RK = "<group>-<shard>". One counter per failure group (like
                failures: same origin, status and normalised reason), spread over shards so
                many instances recording the same kind of failure at once do not serialise on
                one ETag'd row. The overview and the groups panel add these rows up; neither
                ever scans the failures themselves.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import ConcurrencyConflict
from shared.failures.models import Failure, FailureGroup, FailureOrigin, FailureSummary
from shared.ids import id_prefix_at
from shared.storage.failure_rows import failure_from_row, failure_to_row, fitted_for_row, overflow_blob_name
from shared.storage.payload_blobs import PayloadStore
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Entity, Table

SUMMARY_SHARDS = 4
_MAX_CONFLICT_RETRIES = 8
_SAMPLE_REASON_CHARS = 500


@dataclass
class _Tally:
    """A group's counter (one shard, or shards added up)."""

    origin: str
    status_code: int | None
    sample_reason: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, count: int, first: datetime | None, last: datetime | None) -> None:
        self.count += count
        if first is not None:
            self.first = first if self.first is None else min(self.first, first)
        if last is not None:
            self.last = last if self.last is None else max(self.last, last)

    def to_row(self, integration: str, group: str, shard: int) -> Entity:
        row: Entity = {
            "PartitionKey": integration,
            "RowKey": f"{group}-{shard}",
            "Group": group,
            "Count": self.count,
            "Origin": self.origin,
            "SampleReason": self.sample_reason[:_SAMPLE_REASON_CHARS],
        }
        optional = {"StatusCode": self.status_code, "FirstFailedAt": self.first, "LastFailedAt": self.last}
        row.update({key: value for key, value in optional.items() if value is not None})
        return row

    @classmethod
    def of_row(cls, row: Entity) -> _Tally:
        tally = cls(origin=row["Origin"], status_code=row.get("StatusCode"), sample_reason=row.get("SampleReason", ""))
        tally.add(int(row.get("Count", 0)), row.get("FirstFailedAt"), row.get("LastFailedAt"))
        return tally

    @classmethod
    def of_failure(cls, failure: Failure) -> _Tally:
        return cls(origin=failure.origin.value, status_code=failure.status_code, sample_reason=failure.reason)


@dataclass
class Removal:
    """What `FailureStore.remove_many` did with each failure it was given."""

    #: Deleted by this call (and uncounted).
    removed: list[Failure] = field(default_factory=list)
    #: Already gone when this call tried (someone else removed them).
    gone: list[Failure] = field(default_factory=list)
    #: Changed since they were read (their ETag no longer matches): left in place.
    changed: list[tuple[Failure, ConcurrencyConflict]] = field(default_factory=list)


class FailureStore:
    def __init__(
        self, failures: Table, summary: Table, payloads: PayloadStore, *, rng: random.Random | None = None
    ) -> None:
        self._failures = failures
        self._summary = summary
        self._payloads = payloads
        self._rng = rng or random.Random()

    @property
    def table(self) -> Table:
        return self._failures

    async def add(self, failure: Failure) -> Failure:
        """Write the failure row, then count it; returns the failure as stored (masked, fitted).

        Whatever the row cannot hold whole goes to the overflow blob first, so a row never points
        at an overflow that is not there. The row goes before the counter: a crash between the two
        undercounts (repaired by `rebuild_summary`), never counts a failure that is not there.
        """
        stored, whole = fitted_for_row(failure)
        if whole:
            data = json.dumps(whole, separators=(",", ":")).encode()
            await self._payloads.put(
                overflow_blob_name(stored.integration, stored.id), data, content_type="application/json"
            )
        await self._failures.insert(failure_to_row(stored))
        await self._bump(stored, +1)
        return stored

    async def restore(self, failure: Failure) -> Failure:
        """The failure with the whole values of its overflow fields (for a resend); as given when it has none.

        An overflow blob gone missing (purged, deleted by hand) leaves the masked values: the resend
        then goes out without those credentials, and the receiver's answer says so.
        """
        if not failure.overflow:
            return failure
        blob = await self._payloads.get(overflow_blob_name(failure.integration, failure.id))
        if blob is None:
            return failure
        whole: dict[str, Any] = json.loads(blob.data)
        return Failure.model_validate({**failure.model_dump(mode="json"), **whole, "overflow": []})

    @staticmethod
    def overflow_ref(failure: Failure) -> str | None:
        return overflow_blob_name(failure.integration, failure.id) if failure.overflow else None

    @classmethod
    def content_refs(cls, failure: Failure) -> list[str]:
        """Every blob that goes with the failure: its content and, when it has one, its overflow."""
        return [ref for ref in (failure.body_ref, cls.overflow_ref(failure)) if ref]

    async def exist(self, integration: str) -> bool:
        """True when the integration has at least one failure row (one key-only read, not the counters)."""
        page = await self._failures.query_page(
            "PartitionKey eq @pk", {"pk": integration}, page_size=1, select=["RowKey"]
        )
        return bool(page.items)

    async def get(self, integration: str, failure_id: str) -> tuple[Failure, str] | None:
        row = await self._failures.get(integration, failure_id)
        return None if row is None else (failure_from_row(row), str(row["_etag"]))

    async def remove(self, failure: Failure, *, etag: str | None = None) -> bool:
        """Delete the row (ETag-guarded when given) and uncount it; False if it was already gone."""
        if not await self._failures.delete(failure.integration, failure.id, etag=etag):
            return False
        await self._bump(failure, -1)
        return True

    async def remove_many(self, items: Sequence[tuple[Failure, str | None]]) -> Removal:
        """Delete many failures, ETag-guarded, in table transactions of up to 100, then uncount them.

        A transaction is all-or-nothing: when one of its rows changed or vanished since it was
        read, the service refuses the whole batch, and this falls back to deleting that batch
        one row at a time, so the changed row is skipped (left in place, reported in
        `changed`) and the rest are still removed. Counters are decremented once per failure
        group per call, not once per failure. A counter that cannot be written for contention
        is left to `rebuild_summary` (run when every job ends), as with a crash between row
        and counter: the rows are gone either way.
        """
        result = Removal()
        by_partition: dict[str, list[tuple[Failure, str | None]]] = {}
        for failure, etag in items:
            by_partition.setdefault(failure.integration, []).append((failure, etag))
        for integration, rows in by_partition.items():
            for start in range(0, len(rows), MAX_BATCH_OPERATIONS):
                batch = rows[start : start + MAX_BATCH_OPERATIONS]
                try:
                    await self._failures.transact(
                        [BatchOperation.delete(integration, failure.id, etag or None) for failure, etag in batch]
                    )
                except ConcurrencyConflict:
                    await self._remove_one_by_one(batch, result)
                else:
                    result.removed.extend(failure for failure, _ in batch)
        await self._uncount(result.removed)
        return result

    async def _remove_one_by_one(self, batch: Sequence[tuple[Failure, str | None]], result: Removal) -> None:
        """The fallback after a refused transaction. Each row is read first: Azurite answers an ETag'd
        delete of a missing row with 204 (Azure: 404), and a gone row must not be uncounted."""
        for failure, etag in batch:
            row = await self._failures.get(failure.integration, failure.id)
            if row is None:
                result.gone.append(failure)
                continue
            try:
                if etag and row["_etag"] != etag:
                    raise ConcurrencyConflict(f"{self._failures.name}: failure {failure.id} changed since it was read")
                deleted = await self._failures.delete(failure.integration, failure.id, etag=etag)
            except ConcurrencyConflict as exc:
                result.changed.append((failure, exc))
                continue
            (result.removed if deleted else result.gone).append(failure)

    async def _uncount(self, removed: Iterable[Failure]) -> None:
        by_group: dict[tuple[str, str], tuple[Failure, int]] = {}
        for failure in removed:
            key = (failure.integration, failure.group)
            sample, count = by_group.get(key, (failure, 0))
            by_group[key] = (sample, count + 1)
        for sample, count in by_group.values():
            try:
                await self._bump(sample, -count)
            except ConcurrencyConflict:
                continue  # drift, repaired by rebuild_summary; the rows are gone regardless

    async def _bump(self, failure: Failure, delta: int) -> None:
        for _ in range(_MAX_CONFLICT_RETRIES):
            shard = self._rng.randrange(SUMMARY_SHARDS)
            row = await self._summary.get(failure.integration, f"{failure.group}-{shard}")
            tally = _Tally.of_failure(failure) if row is None else _Tally.of_row(row)
            if delta > 0:
                tally.add(delta, failure.failed_at, failure.failed_at)
                tally.sample_reason = failure.reason
            else:
                tally.add(delta, None, None)
            updated = tally.to_row(failure.integration, failure.group, shard)
            try:
                if row is None:
                    await self._summary.insert(updated)
                else:
                    await self._summary.update(updated, etag=str(row["_etag"]))
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"failure summary of {failure.integration!r}: too much contention")

    async def _group_tallies(self, integration: str) -> dict[str, _Tally]:
        groups: dict[str, _Tally] = {}
        async for row in self._summary.query("PartitionKey eq @pk", {"pk": integration}):
            _merge(groups, row["Group"], _Tally.of_row(row))
        return groups

    async def groups(self, integration: str) -> list[FailureGroup]:
        """Like-failures of one integration with their counts, largest first."""
        groups = [
            FailureGroup(
                group=group,
                origin=FailureOrigin(tally.origin),
                status_code=tally.status_code,
                sample_reason=tally.sample_reason,
                count=tally.count,
                first_failed_at=tally.first,
                last_failed_at=tally.last,
            )
            for group, tally in (await self._group_tallies(integration)).items()
            if tally.count > 0
        ]
        return sorted(groups, key=lambda g: (-g.count, g.group))

    async def summary(self, integration: str) -> FailureSummary:
        return _summary_of(integration, (await self._group_tallies(integration)).values())

    async def overview(self) -> list[FailureSummary]:
        """Every integration with failures, most recent failure first."""
        by_integration: dict[str, dict[str, _Tally]] = {}
        async for row in self._summary.query("PartitionKey ne @empty", {"empty": ""}):
            _merge(by_integration.setdefault(row["PartitionKey"], {}), row["Group"], _Tally.of_row(row))
        items = [_summary_of(name, groups.values()) for name, groups in by_integration.items()]
        live = [item for item in items if item.count > 0]
        return sorted(live, key=lambda s: s.last_failed_at or datetime.min, reverse=True)

    async def rebuild_summary(self, integration: str) -> FailureSummary:
        """Recount one integration from its failure rows (streamed) and replace its counters.

        A failure recorded while this runs can be missed until the next rebuild; jobs call it
        when they finish, which is when drift (crashes between row and counter) gets repaired.
        """
        groups: dict[str, _Tally] = {}
        async for row in self._failures.query(
            "PartitionKey eq @pk", {"pk": integration}, select=["Group", "Origin", "StatusCode", "Reason", "FailedAt"]
        ):
            tally = _Tally(origin=row["Origin"], status_code=row.get("StatusCode"), sample_reason=row["Reason"])
            tally.add(1, row["FailedAt"], row["FailedAt"])
            _merge(groups, row["Group"], tally)
        operations = [BatchOperation.upsert(tally.to_row(integration, group, 0)) for group, tally in groups.items()]
        keep = {f"{group}-0" for group in groups}
        async for row in self._summary.query("PartitionKey eq @pk", {"pk": integration}, select=["RowKey"]):
            if row["RowKey"] not in keep:
                operations.append(BatchOperation.delete(integration, row["RowKey"]))
        for start in range(0, len(operations), MAX_BATCH_OPERATIONS):
            await self._summary.transact(operations[start : start + MAX_BATCH_OPERATIONS])
        return _summary_of(integration, groups.values())

    async def integrations(self) -> list[str]:
        """Every integration that has (or recently had) failure counters."""
        seen: set[str] = set()
        async for row in self._summary.query("PartitionKey ne @empty", {"empty": ""}, select=["PartitionKey"]):
            seen.add(row["PartitionKey"])
        return sorted(seen)

    async def purge_older_than(self, integration: str, cutoff: datetime, *, limit: int) -> list[list[str]]:
        """Delete up to `limit` failures that failed before `cutoff`, in transactions of 100.

        Returns, per failure, the blobs that went with it (the caller deletes them). Old failures
        are at the end of the partition (inverted-time keys), so this is one key-range query.
        """
        purged: list[list[str]] = []
        batch: list[BatchOperation] = []
        async for row in self._failures.query(
            "PartitionKey eq @pk and RowKey ge @old", {"pk": integration, "old": id_prefix_at(cutoff)},
            select=["RowKey", "BodyRef", "Overflow"],
        ):  # fmt: skip
            batch.append(BatchOperation.delete(integration, row["RowKey"]))
            refs = [row["BodyRef"]] if row.get("BodyRef") else []
            if row.get("Overflow"):
                refs.append(overflow_blob_name(integration, row["RowKey"]))
            purged.append(refs)
            if len(batch) == MAX_BATCH_OPERATIONS:
                await self._failures.transact(batch)
                batch = []
            if len(purged) >= limit:
                break
        await self._failures.transact(batch)
        return purged

    async def list_rows(
        self, query: str, parameters: dict[str, Any], *, page_size: int = 100
    ) -> AsyncIterator[tuple[Failure, str]]:
        async for row in self._failures.query(query, parameters, page_size=page_size):
            yield failure_from_row(row), str(row["_etag"])


def _merge(groups: dict[str, _Tally], group: str, tally: _Tally) -> None:
    known = groups.get(group)
    if known is None:
        groups[group] = tally
    else:
        known.add(tally.count, tally.first, tally.last)


def _summary_of(integration: str, groups: Iterable[_Tally]) -> FailureSummary:
    count, first, last = 0, None, None
    by_origin: dict[str, int] = {}
    for tally in groups:
        if tally.count <= 0:
            continue
        count += tally.count
        by_origin[tally.origin] = by_origin.get(tally.origin, 0) + tally.count
        first = tally.first if first is None or (tally.first is not None and tally.first < first) else first
        last = tally.last if last is None or (tally.last is not None and tally.last > last) else last
    return FailureSummary(
        integration=integration,
        count=count,
        first_failed_at=first if count else None,
        last_failed_at=last if count else None,
        by_origin=dict(sorted(by_origin.items())),
    )
