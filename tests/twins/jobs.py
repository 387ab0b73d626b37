"""`MemoryJobStore`: jobs and each integration's job lock, in memory (the twin of `TableJobStore`)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from shared.errors import ConcurrencyConflict, JobAlreadyActive
from shared.jobs.models import Job
from shared.jobs.ports import Checkpoint, JobRecord
from shared.tokens import Version
from tests.twins.faults import Twin

_versions = itertools.count(1)


def _next_version() -> Version:
    return Version(f"v{next(_versions)}")


@dataclass(frozen=True)
class _Kept:
    job: Job
    version: Version
    checkpoint: Checkpoint
    updated_at: datetime | None


class MemoryJobStore(Twin):
    """Implements `shared.jobs.ports.JobStore`.

    The job and its integration's lock are taken in one step (no await between the check and the
    write), so of any number of concurrent `create`s exactly one wins, as with the table
    transaction. Versions are counters: every save makes a new one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[tuple[str, str], _Kept] = {}
        #: integration -> the id of the job holding its lock
        self._locks: dict[str, str] = {}

    async def create(self, job: Job) -> None:
        async with self.call("create"):
            holder = self._locks.get(job.integration)
            if holder is not None:
                raise JobAlreadyActive(job.integration, holder)
            if (job.integration, job.id) in self._jobs:
                raise ConcurrencyConflict(f"job {job.id!r} of {job.integration!r} exists")
            self._locks[job.integration] = job.id
            self._jobs[(job.integration, job.id)] = _Kept(job, _next_version(), Checkpoint(), None)

    async def get(self, integration: str, job_id: str) -> JobRecord | None:
        async with self.call("get"):
            kept = self._jobs.get((integration, job_id))
            return None if kept is None else JobRecord(kept.job, kept.version, kept.checkpoint, kept.updated_at)

    async def save(self, record: JobRecord, job: Job, checkpoint: Checkpoint, *, now: datetime) -> JobRecord:
        async with self.call("save"):
            key = (job.integration, job.id)
            kept = self._jobs.get(key)
            if kept is None:
                raise ConcurrencyConflict(f"job {job.id!r} of {job.integration!r} is gone")
            if kept.version != record.version:
                raise ConcurrencyConflict(f"job {job.id!r} of {job.integration!r} changed since it was read")
            # A claim is kept only with the time it was taken (a claim without one could never lapse).
            if checkpoint.claim is None or checkpoint.claimed_at is None:
                checkpoint = Checkpoint(checkpoint.cursor, checkpoint.pages)
            saved = _Kept(job, _next_version(), checkpoint, now)
            self._jobs[key] = saved
            return JobRecord(saved.job, saved.version, saved.checkpoint, saved.updated_at)

    async def release_lock(self, integration: str, job_id: str) -> None:
        async with self.call("release_lock"):
            if self._locks.get(integration) == job_id:
                del self._locks[integration]

    async def active(self) -> AsyncIterator[JobRecord]:
        async with self.call("active"):
            # The lock holders, by integration (a snapshot: the watchdog may save them meanwhile).
            holders = sorted(self._locks.items())
        for integration, job_id in holders:
            record = await self.get(integration, job_id)
            if record is not None:
                yield record

    async def list(self, integration: str, *, limit: int = 50) -> list[Job]:
        async with self.call("list"):
            # Job ids sort newest first.
            ids = sorted(job_id for (owner, job_id) in self._jobs if owner == integration)
            return [self._jobs[(integration, job_id)].job for job_id in ids[:limit]]

    # --- affordances -------------------------------------------------------------------------

    def lock_holder(self, integration: str) -> str | None:
        """The id of the job holding the integration's lock, if any."""
        return self._locks.get(integration)
