"""`MemoryFailureStore`: failures and their per-group counters, in memory (the twin of `TableFailureStore`).

What it keeps as the real store does: ids sort newest first, versions change on every write, a
stale version is a `ConcurrencyConflict`, credential headers are masked with the whole values kept
beside the content (in the payload store, for `restore`), counters are written per group and only
repaired by `rebuild_summary`, and a `q` scan stops at its budget with a cursor. What it leaves to
Azure: fitting values to the Table limits (no truncation here), and its paging's service pages.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import BadParameter, ConcurrencyConflict
from shared.failures.models import (
    Failure,
    FailureFilter,
    FailureGroup,
    FailureOrigin,
    FailurePage,
    FailureSummary,
    prefix_matches,
)
from shared.failures.ports import DEFAULT_SCAN_BUDGET, Removal, SelectedFailure, StoredFailure
from shared.ids import RECORD_ID_PATTERN
from shared.sensitive import mask_headers
from shared.tokens import Cursor, Version
from tests.twins.faults import Twin
from tests.twins.payloads import MemoryPayloadStore

#: Removals per atomic batch, as a Table transaction holds.
MAX_BATCH = 100

_versions = itertools.count(1)
# The twin's own tokens: a page cursor and a selection position are different things, and neither
# is anything another store issued.
_PAGE = "memory-page:"
_POSITION = "memory-position:"


def _next_version() -> Version:
    return Version(f"v{next(_versions)}")


def _after(token: Cursor | None, kind: str, parameter: str = "cursor") -> str | None:
    """The failure id a token resumes after; `BadParameter` for a token this twin did not issue."""
    if token is None:
        return None
    failure_id = token.removeprefix(kind)
    if failure_id == token or re.fullmatch(RECORD_ID_PATTERN, failure_id) is None:
        raise BadParameter(parameter, "is not a cursor this API returned")
    return failure_id


@dataclass(frozen=True)
class _Row:
    failure: Failure
    version: Version


@dataclass
class _Tally:
    """One group's counter: what the overview and the groups panel read instead of the failures."""

    origin: FailureOrigin
    status_code: int | None
    sample_reason: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None

    def add(self, failure: Failure) -> None:
        self.count += 1
        self.first = failure.failed_at if self.first is None else min(self.first, failure.failed_at)
        self.last = failure.failed_at if self.last is None else max(self.last, failure.failed_at)

    @classmethod
    def of(cls, failure: Failure) -> _Tally:
        return cls(failure.origin, failure.status_code, failure.reason)


def _summary(integration: str, tallies: Iterable[_Tally]) -> FailureSummary:
    live = [tally for tally in tallies if tally.count > 0]
    by_origin: dict[str, int] = {}
    for tally in live:
        by_origin[tally.origin.value] = by_origin.get(tally.origin.value, 0) + tally.count
    firsts = [tally.first for tally in live if tally.first is not None]
    lasts = [tally.last for tally in live if tally.last is not None]
    return FailureSummary(
        integration=integration,
        count=sum(tally.count for tally in live),
        first_failed_at=min(firsts, default=None),
        last_failed_at=max(lasts, default=None),
        by_origin=dict(sorted(by_origin.items())),
    )


def _matches(failure: Failure, selection: FailureFilter, not_after: datetime | None) -> bool:
    """Every filter but the scanned ones: `q` and the sender/receiver prefixes (`_scan_matches`)."""
    upper = min((t for t in (selection.to, not_after) if t is not None), default=None)
    return (
        (selection.from_ is None or failure.failed_at >= selection.from_)
        and (upper is None or failure.failed_at <= upper)
        and (selection.group is None or failure.group == selection.group)
        and (selection.origin is None or failure.origin is selection.origin)
        and (selection.message_id is None or failure.message_id == selection.message_id)
        and (selection.correlation_id is None or failure.correlation_id == selection.correlation_id)
        and (selection.ref is None or selection.ref in (failure.message_id, failure.correlation_id))
    )


def _scan_matches(failure: Failure, selection: FailureFilter) -> bool:
    return (
        (selection.q is None or selection.q.casefold() in failure.reason.casefold())
        and prefix_matches(failure.sender, selection.sender)
        and prefix_matches(failure.receiver, selection.receiver)
    )


class MemoryFailureStore(Twin):
    """Implements `shared.failures.ports.FailureStore`.

    Affordances: `edit(failure, **changes)` changes a stored failure behind the store's back (its
    version goes stale), `add_uncounted(failure)` stores one without its counter (a crash between
    the two writes), `arm(...)` from `Twin`.
    """

    def __init__(self, payloads: MemoryPayloadStore, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__()
        self._payloads = payloads
        self._max_batch = max_batch
        self._rows: dict[str, dict[str, _Row]] = {}
        self._tallies: dict[str, dict[str, _Tally]] = {}

    @property
    def max_batch(self) -> int:
        return self._max_batch

    # --- writing -----------------------------------------------------------------------------

    async def add(self, failure: Failure) -> Failure:
        async with self.call("add"):
            stored = await self._store(failure)
            self._count(stored, +1)
            return stored.model_copy(deep=True)

    async def _store(self, failure: Failure) -> Failure:
        masked = mask_headers(failure.headers)
        overflow = ["headers"] if masked != failure.headers else []
        stored = failure.model_copy(update={"headers": masked, "overflow": overflow}, deep=True)
        ref = self.overflow_ref(stored)
        if ref is not None:
            # The whole values first: a stored failure never points at an overflow that is not there.
            whole = json.dumps({"headers": failure.headers}).encode()
            await self._payloads.put(ref, whole, content_type="application/json")
        rows = self._rows.setdefault(failure.integration, {})
        if failure.id in rows:
            raise ConcurrencyConflict(f"failure {failure.id!r} of {failure.integration!r} exists")
        rows[failure.id] = _Row(stored, _next_version())
        return stored

    def _count(self, failure: Failure, delta: int) -> None:
        """Write the group's counter (as `TableFailureStore._bump`: a removal only lowers the count)."""
        groups = self._tallies.setdefault(failure.integration, {})
        tally = groups.setdefault(failure.group, _Tally.of(failure))
        if delta > 0:
            tally.add(failure)
            tally.sample_reason = failure.reason
        else:
            tally.count += delta

    # --- reading -----------------------------------------------------------------------------

    async def get(self, integration: str, failure_id: str) -> StoredFailure | None:
        async with self.call("get"):
            row = self._rows.get(integration, {}).get(failure_id)
            return None if row is None else StoredFailure(row.failure.model_copy(deep=True), row.version)

    async def has_any(self, integration: str) -> bool:
        async with self.call("has_any"):
            return bool(self._rows.get(integration))

    async def ping(self) -> None:
        async with self.call("ping"):
            return None

    def _candidates(
        self, integration: str, selection: FailureFilter, *, after: str | None, not_after: datetime | None = None
    ) -> list[_Row]:
        """Rows matching every filter but `q`, newest first, after the id `after`."""
        rows = self._rows.get(integration, {})
        return [
            rows[failure_id]
            for failure_id in sorted(rows)
            if (after is None or failure_id > after) and _matches(rows[failure_id].failure, selection, not_after)
        ]

    async def page(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        limit: int,
        cursor: Cursor | None = None,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
    ) -> FailurePage:
        async with self.call("page"):
            candidates = self._candidates(integration, selection, after=_after(cursor, _PAGE))
            matched: list[Failure] = []
            # As the table scan does: the cursor follows the last row examined whenever rows remain
            # (they may not match `q`), so a page may be followed by an empty last page.
            for scanned, row in enumerate(candidates, start=1):
                if _scan_matches(row.failure, selection):
                    matched.append(row.failure.model_copy(deep=True))
                more = scanned < len(candidates)
                if len(matched) == limit:
                    return FailurePage(matched, Cursor(_PAGE + row.failure.id) if more else None)
                if scanned >= scan_budget and more:
                    return FailurePage(matched, Cursor(_PAGE + row.failure.id), stopped_early=True)
            return FailurePage(matched, None)

    async def select(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        not_after: datetime,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[SelectedFailure]:
        async with self.call("select"):
            start = _after(after, _POSITION)
            # Read up front, as a service page is: a failure removed while the caller works through
            # the selection is still handed out (with its old version, which then conflicts or is gone).
            rows = [
                row
                for row in self._candidates(integration, selection, after=start, not_after=not_after)
                if _scan_matches(row.failure, selection)
            ][:limit]
        for row in rows:
            yield SelectedFailure(row.failure.model_copy(deep=True), row.version, Cursor(_POSITION + row.failure.id))

    async def count(self, integration: str, selection: FailureFilter, *, not_after: datetime | None = None) -> int:
        async with self.call("count"):
            candidates = self._candidates(integration, selection, after=None, not_after=not_after)
            return sum(1 for row in candidates if _scan_matches(row.failure, selection))

    # --- removing ----------------------------------------------------------------------------

    async def remove(self, failure: Failure, *, version: Version | None = None) -> bool:
        async with self.call("remove"):
            if not self._remove(failure, version):
                return False
            self._count(failure, -1)
            return True

    def _remove(self, failure: Failure, version: Version | None) -> bool:
        rows = self._rows.get(failure.integration, {})
        row = rows.get(failure.id)
        if row is None:
            return False
        if version is not None and row.version != version:
            raise ConcurrencyConflict(f"failure {failure.id!r} of {failure.integration!r} changed since it was read")
        del rows[failure.id]
        return True

    async def remove_many(self, items: Sequence[tuple[Failure, Version | None]]) -> Removal:
        async with self.call("remove_many"):
            result = Removal()
            for failure, version in items:
                try:
                    removed = self._remove(failure, version)
                except ConcurrencyConflict as conflict:
                    result.changed.append((failure, conflict))
                    continue
                (result.removed if removed else result.gone).append(failure)
            # Once per group, as the table store writes each group's counter once per call.
            by_group: dict[tuple[str, str], tuple[Failure, int]] = {}
            for failure in result.removed:
                sample, count = by_group.get((failure.integration, failure.group), (failure, 0))
                by_group[(failure.integration, failure.group)] = (sample, count + 1)
            for sample, count in by_group.values():
                self._count(sample, -count)
            return result

    async def purge_older_than(self, integration: str, cutoff: datetime, *, limit: int) -> list[list[str]]:
        """Counters are left as they are: the caller rebuilds them (`rebuild_summary`), as on Azure."""
        async with self.call("purge_older_than"):
            rows = self._rows.get(integration, {})
            old = [failure_id for failure_id in sorted(rows) if rows[failure_id].failure.failed_at < cutoff][:limit]
            return [self.content_refs(rows.pop(failure_id).failure) for failure_id in old]

    # --- overflow ------------------------------------------------------------------------------

    async def restore(self, failure: Failure) -> Failure:
        async with self.call("restore"):
            ref = self.overflow_ref(failure)
            kept = None if ref is None else await self._payloads.get(ref)
            if kept is None:
                return failure
            whole: dict[str, Any] = json.loads(kept.data)
            return Failure.model_validate({**failure.model_dump(mode="json"), **whole, "overflow": []})

    def overflow_ref(self, failure: Failure) -> str | None:
        return f"overflow/{failure.integration}/{failure.id}.json" if failure.overflow else None

    def content_refs(self, failure: Failure) -> list[str]:
        return [ref for ref in (failure.body_ref, self.overflow_ref(failure)) if ref]

    # --- counters ----------------------------------------------------------------------------

    async def summary(self, integration: str) -> FailureSummary:
        async with self.call("summary"):
            return _summary(integration, self._tallies.get(integration, {}).values())

    async def groups(self, integration: str) -> list[FailureGroup]:
        async with self.call("groups"):
            groups = [
                FailureGroup(
                    group=group,
                    origin=tally.origin,
                    status_code=tally.status_code,
                    sample_reason=tally.sample_reason,
                    count=tally.count,
                    first_failed_at=tally.first,
                    last_failed_at=tally.last,
                )
                for group, tally in self._tallies.get(integration, {}).items()
                if tally.count > 0
            ]
            return sorted(groups, key=lambda g: (-g.count, g.group))

    async def overview(self) -> list[FailureSummary]:
        async with self.call("overview"):
            summaries = [_summary(name, groups.values()) for name, groups in self._tallies.items()]
            live = [summary for summary in summaries if summary.count > 0]
            return sorted(live, key=lambda s: s.last_failed_at or datetime.min, reverse=True)

    async def rebuild_summary(self, integration: str) -> FailureSummary:
        async with self.call("rebuild_summary"):
            groups: dict[str, _Tally] = {}
            rows = self._rows.get(integration, {})
            # Newest first: a group's sample reason is its newest failure's.
            for failure_id in sorted(rows):
                failure = rows[failure_id].failure
                groups.setdefault(failure.group, _Tally.of(failure)).add(failure)
            if groups:
                self._tallies[integration] = groups
            else:
                self._tallies.pop(integration, None)
            return _summary(integration, groups.values())

    async def integrations(self) -> list[str]:
        async with self.call("integrations"):
            return sorted(self._tallies)

    # --- affordances -------------------------------------------------------------------------

    def edit(self, failure: Failure, **changes: Any) -> Failure:
        """Change a stored failure behind the store's back (a concurrent edit): its version goes stale."""
        rows = self._rows[failure.integration]
        edited = rows[failure.id].failure.model_copy(update=changes)
        rows[failure.id] = _Row(edited, _next_version())
        return edited

    async def add_uncounted(self, failure: Failure) -> Failure:
        """Store a failure without counting it: a crash between the row and its counter."""
        return await self._store(failure)
