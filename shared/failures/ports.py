"""What the failures capability needs from storage, as the domain sees it.

The store alone knows how a failure is kept (keys, versions, the counters beside the rows); the
domain gets failures, opaque versions (`shared.tokens.Version`) for conditional removal, and opaque
cursors (`shared.tokens.Cursor`) to go on where a listing stopped. `TableFailureStore`
(shared/storage/failure_table.py) implements `FailureStore` on Azure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.errors import ConcurrencyConflict
from shared.failures.models import Failure, FailureFilter, FailureGroup, FailurePage, FailureSummary
from shared.tokens import Cursor, Version

#: Failures one page request may examine when `q` (reason contains) filters on our side.
DEFAULT_SCAN_BUDGET = 5000


@dataclass(frozen=True)
class StoredFailure:
    """A failure as read, with the version a conditional removal checks."""

    failure: Failure
    version: Version


@dataclass(frozen=True)
class SelectedFailure:
    """One failure of a frozen selection, and the position to resume after it."""

    failure: Failure
    version: Version
    position: Cursor


@dataclass
class Removal:
    """What `FailureLog.remove_many` did with each failure it was given."""

    #: Removed by this call (and uncounted).
    removed: list[Failure] = field(default_factory=list)
    #: Already gone when this call tried (someone else removed them).
    gone: list[Failure] = field(default_factory=list)
    #: Changed since they were read (their version no longer matches): left in place.
    changed: list[tuple[Failure, ConcurrencyConflict]] = field(default_factory=list)


class FailureSink(Protocol):
    """Where the engine and recovery record a failure."""

    async def add(self, failure: Failure) -> Failure:
        """Record the failure and count it; returns it as stored (credential headers masked, fitted to the
        store's limits; the whole values are kept beside the content for `restore`)."""
        ...


class FailureLog(FailureSink, Protocol):
    """The failures themselves: read, list, select, remove."""

    @property
    def max_batch(self) -> int:
        """Failures one `remove_many` call removes per atomic batch."""
        ...

    async def get(self, integration: str, failure_id: str) -> StoredFailure | None: ...

    async def has_any(self, integration: str) -> bool:
        """True when the integration has at least one failure (one cheap read, not the counters)."""
        ...

    async def page(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        limit: int,
        cursor: Cursor | None = None,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
    ) -> FailurePage:
        """One page, newest first; `next_cursor` is None only when nothing more can match.

        With `q`, a page may hold fewer than `limit` items and still have a cursor: the scan budget
        ran out first. A cursor this store did not issue raises `BadParameter("cursor", ...)`.
        """
        ...

    def select(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        not_after: datetime,
        after: Cursor | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[SelectedFailure]:
        """A frozen selection, newest first: failures matching `selection` that failed at or before
        `not_after`, resuming after the position `after`; at most `limit` (a hint of how many the
        caller takes, so the store reads no more than it needs)."""
        ...

    async def count(self, integration: str, selection: FailureFilter, *, not_after: datetime | None = None) -> int:
        """Failures matching `selection`, counted by reading them (not the counters)."""
        ...

    async def remove(self, failure: Failure, *, version: Version | None = None) -> bool:
        """Remove and uncount it; False when it was already gone. `ConcurrencyConflict` when `version`
        is given and the failure changed since."""
        ...

    async def remove_many(self, items: Sequence[tuple[Failure, Version | None]]) -> Removal: ...

    async def restore(self, failure: Failure) -> Failure:
        """The failure with the whole values of its overflow fields (for a resend); as given when it has none."""
        ...

    def overflow_ref(self, failure: Failure) -> str | None:
        """The payload that keeps the failure's whole values, when it has one."""
        ...

    def content_refs(self, failure: Failure) -> list[str]:
        """Every payload that goes with the failure: its content and, when it has one, its overflow."""
        ...

    async def purge_older_than(self, integration: str, cutoff: datetime, *, limit: int) -> list[list[str]]:
        """Remove up to `limit` failures that failed before `cutoff`; per failure, the payloads that went
        with it (the caller deletes them)."""
        ...

    async def integrations(self) -> list[str]:
        """Every integration that has (or recently had) failures."""
        ...

    async def ping(self) -> None:
        """A cheap read; `StorageUnavailable` when the store does not answer."""
        ...


class FailureCounts(Protocol):
    """The per-group counters beside the failures: the overview and groups never read the failures."""

    async def summary(self, integration: str) -> FailureSummary: ...

    async def groups(self, integration: str) -> list[FailureGroup]:
        """Like-failures with their counts, largest first."""
        ...

    async def overview(self) -> list[FailureSummary]:
        """Every integration with failures, most recent failure first."""
        ...

    async def rebuild_summary(self, integration: str) -> FailureSummary:
        """Recount the integration from its failures and replace its counters (repairs drift)."""
        ...


class FailureStore(FailureLog, FailureCounts, Protocol):
    """Failures and their counters."""
