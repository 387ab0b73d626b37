"""Jobs in the `jobs` table: PK = integration, RK = job id (newest first), plus one lock row.

The lock row (RK "lock") names the active job. It is inserted in the same transaction as the
job row, so of any number of concurrent starts exactly one commits and the others see a
conflict; it is deleted, ETag-guarded, when the job ends.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime

from shared.audit.models import Actor
from shared.errors import ConcurrencyConflict, JobAlreadyActive
from shared.jobs.models import Job, JobAction, JobSelection, JobState
from shared.jobs.ports import Checkpoint, JobRecord
from shared.storage.cursors import version_of
from shared.storage.tables import BatchOperation, Entity, Table
from shared.tokens import Cursor, Version

LOCK_ROW = "lock"


class TableJobStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def create(self, job: Job) -> None:
        """Insert the job and take the integration's lock atomically; JobAlreadyActive if held."""
        lock: Entity = {"PartitionKey": job.integration, "RowKey": LOCK_ROW, "ActiveJobId": job.id}
        try:
            await self._table.transact(
                [BatchOperation.create(lock), BatchOperation.create(_row_of(job, cursor=None, pages=0))]
            )
        except ConcurrencyConflict:
            active = await self._table.get(job.integration, LOCK_ROW)
            raise JobAlreadyActive(job.integration, str(active["ActiveJobId"]) if active else "unknown") from None

    async def get(self, integration: str, job_id: str) -> JobRecord | None:
        if job_id == LOCK_ROW:
            return None
        row = await self._table.get(integration, job_id)
        return None if row is None else _record_of(row)

    async def save(self, record: JobRecord, job: Job, checkpoint: Checkpoint, *, now: datetime) -> JobRecord:
        """Replace the job row if nobody changed it since `record` was read (ConcurrencyConflict otherwise)."""
        row = _row_of(job, cursor=checkpoint.cursor, pages=checkpoint.pages)
        row["UpdatedAt"] = now
        if checkpoint.claim is not None and checkpoint.claimed_at is not None:
            row["Claim"], row["ClaimedAt"] = checkpoint.claim, checkpoint.claimed_at
        etag = await self._table.update(row, etag=record.version)
        return JobRecord(job, Version(etag), checkpoint, now)

    async def release_lock(self, integration: str, job_id: str) -> None:
        """Free the integration for the next job, but only if this job still holds the lock."""
        lock = await self._table.get(integration, LOCK_ROW)
        if lock is not None and lock["ActiveJobId"] == job_id:
            with contextlib.suppress(ConcurrencyConflict):
                await self._table.delete(integration, LOCK_ROW, etag=version_of(lock))

    async def active(self) -> AsyncIterator[JobRecord]:
        """Every active job (for the stalled-job watchdog): lock rows name them."""
        async for lock in self._table.query("RowKey eq @lock", {"lock": LOCK_ROW}):
            record = await self.get(lock["PartitionKey"], str(lock["ActiveJobId"]))
            if record is not None:
                yield record

    # Last: inside the class body, `list` names this method from here on.
    async def list(self, integration: str, *, limit: int = 50) -> list[Job]:
        jobs: list[Job] = []
        async for row in self._table.query(
            "PartitionKey eq @pk and RowKey ne @lock", {"pk": integration, "lock": LOCK_ROW}, page_size=limit
        ):
            jobs.append(_record_of(row).job)
            if len(jobs) == limit:
                break
        return jobs


def _row_of(job: Job, *, cursor: Cursor | None, pages: int) -> Entity:
    row: Entity = {
        "PartitionKey": job.integration,
        "RowKey": job.id,
        "Action": job.action.value,
        "Selection": job.selection.model_dump_json(by_alias=True, exclude_none=True),
        "State": job.state.value,
        "Processed": job.processed,
        "Succeeded": job.succeeded,
        "Failed": job.failed,
        "Skipped": job.skipped,
        "CreatedAt": job.created_at,
        "CancelRequested": job.cancel_requested,
        "Pages": pages,
    }
    optional = {
        "Total": job.total,
        "StartedAt": job.started_at,
        "FinishedAt": job.finished_at,
        "LastError": job.last_error,
        "RatePerS": job.rate_per_s,
        "Cursor": cursor,
        "CreatedBy": job.created_by.model_dump_json() if job.created_by is not None else None,
        # Send elsewhere (issue 19): the endpoint as JSON; its headers hold `%SETTING%` references, as a config's.
        "Target": job.target_json(),
    }
    row.update({key: value for key, value in optional.items() if value is not None})
    return row


def _record_of(row: Entity) -> JobRecord:
    job = Job(
        id=row["RowKey"],
        integration=row["PartitionKey"],
        action=JobAction(row["Action"]),
        selection=JobSelection.model_validate(json.loads(row["Selection"])),
        state=JobState(row["State"]),
        total=row.get("Total"),
        processed=row.get("Processed", 0),
        succeeded=row.get("Succeeded", 0),
        failed=row.get("Failed", 0),
        skipped=row.get("Skipped", 0),
        created_at=row["CreatedAt"],
        started_at=row.get("StartedAt"),
        finished_at=row.get("FinishedAt"),
        last_error=row.get("LastError"),
        cancel_requested=bool(row.get("CancelRequested", False)),
        rate_per_s=row.get("RatePerS"),
        created_by=Actor.model_validate_json(row["CreatedBy"]) if row.get("CreatedBy") else None,
        target=json.loads(row["Target"]) if row.get("Target") else None,
    )
    cursor = row.get("Cursor")
    checkpoint = Checkpoint(
        cursor=None if cursor is None else Cursor(str(cursor)),
        pages=int(row.get("Pages", 0)),
        claim=row.get("Claim"),
        claimed_at=row.get("ClaimedAt"),
    )
    return JobRecord(job=job, version=version_of(row), checkpoint=checkpoint, updated_at=row.get("UpdatedAt"))
