"""What jobs need from storage, the `jobs` queue message, and the narrow face recovery sees.

`TableJobStore` (shared/storage/job_table.py) implements `JobStore` on Azure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.errors import BadParameter
from shared.jobs.models import Job
from shared.tokens import Cursor, Version


@dataclass(frozen=True)
class Checkpoint:
    """The runner's bookkeeping beside a job."""

    #: Where the job's selection goes on (a position from `FailureLog.select`, or the job's own index into `ids`).
    cursor: Cursor | None = None
    #: Pages completed so far.
    pages: int = 0
    #: Who is processing a page right now, and since when (a crashed holder's claim expires).
    claim: str | None = None
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: the API model, the version a save checks, and the runner's checkpoint."""

    job: Job
    version: Version
    checkpoint: Checkpoint
    updated_at: datetime | None


class JobStore(Protocol):
    async def create(self, job: Job) -> None:
        """Store the job and take its integration's lock atomically; `JobAlreadyActive` when the lock is held."""
        ...

    async def get(self, integration: str, job_id: str) -> JobRecord | None: ...

    async def save(self, record: JobRecord, job: Job, checkpoint: Checkpoint, *, now: datetime) -> JobRecord:
        """Replace the job if nobody changed it since `record` was read; `ConcurrencyConflict` otherwise."""
        ...

    async def release_lock(self, integration: str, job_id: str) -> None:
        """Free the integration for the next job, but only if this job still holds the lock."""
        ...

    def active(self) -> AsyncIterator[JobRecord]:
        """Every active job (the lock holders), for the stalled-job watchdog."""
        ...

    # Last: inside the class body, `list` names this method from here on.
    async def list(self, integration: str, *, limit: int = 50) -> list[Job]:
        """The integration's jobs, newest first."""
        ...


@dataclass(frozen=True)
class PageMessage:
    """A `jobs` queue message: run the next page of one job."""

    integration: str
    job_id: str
    #: Times the recovery sweep put this message back after the host gave up on it.
    recovery_count: int = 0

    @classmethod
    def parse(cls, raw: bytes | str) -> PageMessage:
        """`BadParameter("message", ...)` when it is not a page message."""
        try:
            data: Any = json.loads(raw)
            return cls(str(data["integration"]), str(data["job_id"]), int(data.get("recovery_count", 0)))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadParameter("message", "not a job page message") from exc

    def text(self) -> str:
        data: dict[str, Any] = {"integration": self.integration, "job_id": self.job_id}
        if self.recovery_count:
            data["recovery_count"] = self.recovery_count
        return json.dumps(data)


class JobControl(Protocol):
    """What recovery may do to jobs: end one whose page kept failing, and resume stalled ones."""

    async def fail(self, integration: str, job_id: str, *, reason: str, now: datetime) -> None: ...

    async def resume_stalled(self, *, now: datetime) -> int:
        """Re-enqueue the next page of active jobs that stopped checkpointing; how many."""
        ...


@dataclass(frozen=True)
class SettleTally:
    """How a retry job's resent messages settled, as counted by one shard (or summed over all of them)."""

    delivered: int = 0
    failed_again: int = 0

    def __add__(self, other: SettleTally) -> SettleTally:
        return SettleTally(self.delivered + other.delivered, self.failed_again + other.failed_again)


class SettleCounts(Protocol):
    """Retry jobs' settle counters, sharded: each writer keeps its own shard (one per instance), and a read sums
    them, so instances never contend for a row. `TableSettleCounts` (shared/storage/job_counter_table.py)."""

    async def save_shard(self, integration: str, job_id: str, shard: str, tally: SettleTally) -> None:
        """Replace the shard's totals (a shard has one writer; its totals only grow)."""
        ...

    async def totals(self, integration: str, job_ids: Sequence[str]) -> dict[str, SettleTally]:
        """Per job id, the sum of its shards (jobs without any are left out)."""
        ...
