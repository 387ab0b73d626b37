"""Failures in the `failures` table, and their counts per group in `failuresummary` (failure_summary.py).

failures: PK = integration, RK = the failure id (inverted time + unique suffix: newest first).
Reads by filter are key ranges and parameterised OData (failure_filter.py); the page cursor is
base64 JSON around the last RowKey, a selection's position is the RowKey itself, and a version
is the row's ETag (cursors.py).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import Any

from shared.errors import ConcurrencyConflict
from shared.failures.models import Failure, FailureFilter, FailureGroup, FailureOrigin, FailurePage, FailureSummary
from shared.failures.ports import DEFAULT_SCAN_BUDGET, Removal, SelectedFailure, StoredFailure
from shared.ids import id_prefix_at
from shared.storage.cursors import position_key, row_key_after, version_of
from shared.storage.failure_filter import (
    Q_SCAN_PAGE,
    SCANNED_PROPERTIES,
    SERVER_PAGE,
    STREAM_PAGE,
    build_query,
    scan_page,
    stream_matches,
)
from shared.storage.failure_rows import failure_from_row, failure_to_row, fitted_for_row, overflow_blob_name
from shared.storage.failure_summary import SUMMARY_SHARDS, Tally, merge, summary_of
from shared.storage.payload_blobs import BlobPayloadStore
from shared.storage.tables import MAX_BATCH_OPERATIONS, BatchOperation, Table
from shared.tokens import Cursor, Version
from shared.values import UNKNOWN_INTEGRATION

_MAX_CONFLICT_RETRIES = 8
#: Concurrent point reads of the rows a `q` scan matched.
_READ_CONCURRENCY = 16


class TableFailureStore:
    max_batch = MAX_BATCH_OPERATIONS

    def __init__(
        self, failures: Table, summary: Table, payloads: BlobPayloadStore, *, rng: random.Random | None = None
    ) -> None:
        self._failures = failures
        self._summary = summary
        self._payloads = payloads
        self._rng = rng or random.Random()

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

    def overflow_ref(self, failure: Failure) -> str | None:
        return overflow_blob_name(failure.integration, failure.id) if failure.overflow else None

    def content_refs(self, failure: Failure) -> list[str]:
        """Every blob that goes with the failure: its content and, when it has one, its overflow."""
        return [ref for ref in (failure.body_ref, self.overflow_ref(failure)) if ref]

    async def has_any(self, integration: str) -> bool:
        """True when the integration has at least one failure row (one key-only read, not the counters)."""
        page = await self._failures.query_page(
            "PartitionKey eq @pk", {"pk": integration}, page_size=1, select=["RowKey"]
        )
        return bool(page.items)

    async def get(self, integration: str, failure_id: str) -> StoredFailure | None:
        row = await self._failures.get(integration, failure_id)
        return None if row is None else StoredFailure(failure_from_row(row), version_of(row))

    async def ping(self) -> None:
        """One key read of a small partition: the failures table answers."""
        await self._failures.query_page("PartitionKey eq @pk", {"pk": UNKNOWN_INTEGRATION}, page_size=1)

    # --- reading by filter ---------------------------------------------------------------------

    async def page(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        limit: int,
        cursor: Cursor | None = None,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
    ) -> FailurePage:
        query = build_query(integration, selection, after_row_key=row_key_after(cursor))
        # With `q` or a prefix most rows are read only to be dropped: scan just the keys and what is
        # matched on (a fraction of a full row to transfer and parse), then read the few matches in full.
        scanning = query.scans
        rows, next_cursor, stopped = await scan_page(
            self._failures,
            query,
            limit=limit,
            scan_budget=scan_budget,
            page_size=Q_SCAN_PAGE if scanning else max(min(SERVER_PAGE, limit * 2), 50),
            select=SCANNED_PROPERTIES if scanning else None,
        )
        if not scanning:
            return FailurePage([failure_from_row(row) for row in rows], next_cursor)
        found = await self._read_in_full(integration, [str(row["RowKey"]) for row in rows])
        return FailurePage(found, next_cursor, stopped_early=stopped)

    async def _read_in_full(self, integration: str, row_keys: list[str]) -> list[Failure]:
        """Point reads, a few at a time; a failure removed meanwhile is simply not listed."""
        gate = asyncio.Semaphore(_READ_CONCURRENCY)

        async def read(row_key: str) -> Failure | None:
            async with gate:
                found = await self.get(integration, row_key)
            return None if found is None else found.failure

        return [failure for failure in await asyncio.gather(*(read(key) for key in row_keys)) if failure is not None]

    async def select(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        not_after: datetime,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[SelectedFailure]:
        """The position of a selected failure is its RowKey (kept in a job's checkpoint).

        `BadParameter("cursor")` for a position that is no RowKey this store issued: used as a raw
        key bound, a corrupt checkpoint would select nothing, and its job would end having done nothing.
        """
        query = build_query(integration, selection, after_row_key=position_key(after), not_after=not_after)
        # One service page per `limit` when the table filters everything itself (a 1,000-row
        # page for 100 items cost ~0.6 s of SDK parsing per job page once deletes were batched).
        rows = stream_matches(self._failures, query, page_size=limit or STREAM_PAGE)
        yielded = 0
        async with aclosing(rows):
            async for row in rows:
                yield SelectedFailure(failure_from_row(row), version_of(row), Cursor(str(row["RowKey"])))
                yielded += 1
                if yielded == limit:
                    return

    async def count(self, integration: str, selection: FailureFilter, *, not_after: datetime | None = None) -> int:
        query = build_query(integration, selection, not_after=not_after)
        total = 0
        async for _ in stream_matches(self._failures, query, select=["RowKey"]):
            total += 1
        return total

    # --- removing ------------------------------------------------------------------------------

    async def remove(self, failure: Failure, *, version: Version | None = None) -> bool:
        """Delete the row (ETag-guarded when given) and uncount it; False if it was already gone."""
        if not await self._delete_read_first(failure, version):
            return False
        await self._bump(failure, -1)
        return True

    async def _delete_read_first(self, failure: Failure, version: Version | None) -> bool:
        """Delete one row; False when it was gone. Read first: Azurite answers a delete of a missing
        row (ETag'd or not) with 204 (Azure: 404), and a gone row must not be uncounted again.
        `ConcurrencyConflict` when `version` is given and the row changed since."""
        row = await self._failures.get(failure.integration, failure.id)
        if row is None:
            return False
        if version and version_of(row) != version:
            raise ConcurrencyConflict(f"{self._failures.name}: failure {failure.id} changed since it was read")
        return await self._failures.delete(failure.integration, failure.id, etag=version)

    async def remove_many(self, items: Sequence[tuple[Failure, Version | None]]) -> Removal:
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
        by_partition: dict[str, list[tuple[Failure, Version | None]]] = {}
        for failure, version in items:
            by_partition.setdefault(failure.integration, []).append((failure, version))
        for integration, rows in by_partition.items():
            for start in range(0, len(rows), MAX_BATCH_OPERATIONS):
                batch = rows[start : start + MAX_BATCH_OPERATIONS]
                try:
                    await self._failures.transact(
                        [BatchOperation.delete(integration, failure.id, version or None) for failure, version in batch]
                    )
                except ConcurrencyConflict:
                    await self._remove_one_by_one(batch, result)
                else:
                    result.removed.extend(failure for failure, _ in batch)
        await self._uncount(result.removed)
        return result

    async def _remove_one_by_one(self, batch: Sequence[tuple[Failure, Version | None]], result: Removal) -> None:
        """The fallback after a refused transaction: each row on its own, read first."""
        for failure, version in batch:
            try:
                deleted = await self._delete_read_first(failure, version)
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
            tally = Tally.of_failure(failure) if row is None else Tally.of_row(row)
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
                    await self._summary.update(updated, etag=version_of(row))
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"failure summary of {failure.integration!r}: too much contention")

    async def _group_tallies(self, integration: str) -> dict[str, Tally]:
        groups: dict[str, Tally] = {}
        async for row in self._summary.query("PartitionKey eq @pk", {"pk": integration}):
            merge(groups, row["Group"], Tally.of_row(row))
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
        return summary_of(integration, (await self._group_tallies(integration)).values())

    async def overview(self) -> list[FailureSummary]:
        """Every integration with failures, most recent failure first."""
        by_integration: dict[str, dict[str, Tally]] = {}
        async for row in self._summary.query("PartitionKey ne @empty", {"empty": ""}):
            merge(by_integration.setdefault(row["PartitionKey"], {}), row["Group"], Tally.of_row(row))
        items = [summary_of(name, groups.values()) for name, groups in by_integration.items()]
        live = [item for item in items if item.count > 0]
        return sorted(live, key=lambda s: s.last_failed_at or datetime.min, reverse=True)

    async def rebuild_summary(self, integration: str) -> FailureSummary:
        """Recount one integration from its failure rows (streamed) and replace its counters.

        A failure recorded while this runs can be missed until the next rebuild; jobs call it
        when they finish, which is when drift (crashes between row and counter) gets repaired.
        """
        groups: dict[str, Tally] = {}
        async for row in self._failures.query(
            "PartitionKey eq @pk", {"pk": integration}, select=["Group", "Origin", "StatusCode", "Reason", "FailedAt"]
        ):
            tally = Tally(origin=row["Origin"], status_code=row.get("StatusCode"), sample_reason=row["Reason"])
            tally.add(1, row["FailedAt"], row["FailedAt"])
            merge(groups, row["Group"], tally)
        operations = [BatchOperation.upsert(tally.to_row(integration, group, 0)) for group, tally in groups.items()]
        keep = {f"{group}-0" for group in groups}
        async for row in self._summary.query("PartitionKey eq @pk", {"pk": integration}, select=["RowKey"]):
            if row["RowKey"] not in keep:
                operations.append(BatchOperation.delete(integration, row["RowKey"]))
        for start in range(0, len(operations), MAX_BATCH_OPERATIONS):
            await self._summary.transact(operations[start : start + MAX_BATCH_OPERATIONS])
        return summary_of(integration, groups.values())

    async def integrations(self) -> list[str]:
        """Every integration that has (or recently had) failure counters."""
        seen: set[str] = set()
        async for row in self._summary.query("PartitionKey ne @empty", {"empty": ""}, select=["PartitionKey"]):
            seen.add(row["PartitionKey"])
        return sorted(seen)

    async def purge_older_than(self, integration: str, cutoff: datetime, *, limit: int) -> list[list[str]]:
        """Delete up to `limit` failures that failed before `cutoff`, in transactions of 100.

        Returns, per failure, the blobs that went with it (the caller deletes them). Old failures
        are at the end of the partition (inverted-time keys), so this is one key-range query. A
        failure of exactly `cutoff` has the key prefix of `cutoff` and stays: '.' sorts right after
        the '-' that ends a prefix, so "after prefix." is "failed before cutoff".
        """
        purged: list[list[str]] = []
        batch: list[BatchOperation] = []
        async for row in self._failures.query(
            "PartitionKey eq @pk and RowKey gt @old", {"pk": integration, "old": id_prefix_at(cutoff) + "."},
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
