"""Retry and delete jobs over failures: started atomically, run page by page, checkpointed.

A job is a frozen selection (all, a filter, or ids) of one integration's failures that existed
when it was created. Each `jobs` queue message runs one page:

  claim the job row (ETag) → handle up to JOB_PAGE_SIZE failures at the rate limit →
  checkpoint counts and cursor (ETag) → enqueue the next page, or finish and free the lock.

Retry re-enqueues the failure's envelope (same message id, resend_count+1, counters reset)
and only then removes the failure: a crash in between can send a message twice (receivers
deduplicate on Idempotency-Key, which is that same id), never lose it. A removed failure is
never selected again, so a page that runs twice never re-sends what it already removed.
Delete removes the failure row, then its payload blob.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.concurrency import each
from shared.errors import (
    BadParameter,
    ConcurrencyConflict,
    Conflict,
    IntegrationNotFound,
    JobNotFound,
    ReboundError,
    StorageUnavailable,
)
from shared.failures.models import Failure, FailureFilter
from shared.failures.queries import count_failures, iter_selected
from shared.ids import newest_first_id
from shared.jobs.models import Job, JobAction, JobLimits, JobRequest, JobState
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.wire import pack
from shared.operability.metrics import Counter, count
from shared.recovery.ports import Parking
from shared.storage.failure_rows import failure_from_row
from shared.storage.failure_table import FailureStore, Removal
from shared.storage.integration_table import IntegrationStore
from shared.storage.job_table import JobRecord, JobStore
from shared.storage.payload_blobs import PayloadStore
from shared.storage.queues import QueueGateway
from shared.storage.tables import MAX_BATCH_OPERATIONS

logger = logging.getLogger("rebound.jobs")

#: A page claim lapses this long after a page should have finished at the rate limit
#: (the holder is presumed dead: host killed mid-page).
CLAIM_GRACE = timedelta(seconds=60)
#: While `inbound` is deeper than the limit, a retry page waits this long before trying again.
BACKPRESSURE_DELAY_S = 5
#: Queue sends a retry page runs at once.
CONCURRENCY = 16

T = TypeVar("T")


class JobService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        integrations: IntegrationStore,
        failures: FailureStore,
        payloads: PayloadStore,
        queues: QueueGateway,
        inbound_queue: str,
        jobs_queue: str,
        limits: JobLimits,
        parker: Parking | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._integrations = integrations
        self._failures = failures
        self._payloads = payloads
        self._queues = queues
        self._inbound = inbound_queue
        self._jobs_queue = jobs_queue
        self._limits = limits
        self._parker = parker
        self._sleep = sleep
        self._monotonic = monotonic

    # --- API ---------------------------------------------------------------------------------

    async def start(self, integration: str, request: JobRequest, *, now: datetime) -> Job:
        """202 material: the job is stored, holds the lock, and its first page is queued."""
        await self._require_integration(integration)
        if request.selection.all:
            total: int | None = (await self._failures.summary(integration)).count
        elif request.selection.ids is not None:
            total = len(set(request.selection.ids))
        else:
            total = None  # counted by the first page, off the request path
        job = Job(
            id=newest_first_id(now),
            integration=integration,
            action=request.action,
            selection=request.selection,
            created_at=now,
            total=total,
        )
        await self._jobs.create(job)
        try:
            await self._enqueue_page(job)
        except ReboundError:
            # Without its first page the job would hold the lock forever.
            record = await self._jobs.get(integration, job.id)
            if record is not None:
                failed = job.model_copy(
                    update={"state": JobState.FAILED, "finished_at": now, "last_error": "could not queue the job"}
                )
                await self._jobs.save(record, failed, cursor=None, pages=0, claim=None, claimed_at=None, now=now)
            await self._jobs.release_lock(integration, job.id)
            raise
        log_event(logger, "job.started", integration=integration, job_id=job.id, action=job.action.value, total=total)
        return job

    async def _require_integration(self, integration: str) -> None:
        """A job needs an integration to work on: one with a config, or one with failures recorded under
        it (`_unknown`, or an integration whose config was deleted, keeps its failures until a job or the
        retention purge removes them). Anything else is a 404, not a job that finds nothing."""
        if await self._integrations.get(integration) is None and not await self._failures.exist(integration):
            raise IntegrationNotFound(integration)

    async def get(self, integration: str, job_id: str, *, now: datetime) -> Job:
        record = await self._load(integration, job_id)
        await self._resume_if_stalled(record, now)
        return record.job

    async def list(self, integration: str, *, now: datetime) -> list[Job]:
        jobs = await self._jobs.list(integration)
        for job in jobs:
            if job.state.is_active:
                record = await self._jobs.get(integration, job.id)
                if record is not None:
                    await self._resume_if_stalled(record, now)
        return jobs

    async def cancel(self, integration: str, job_id: str, *, now: datetime) -> Job:
        """Ask the runner to stop at the next page boundary; 409 when the job already ended."""
        for _ in range(5):
            record = await self._load(integration, job_id)
            if not record.job.state.is_active:
                state = record.job.state.value
                raise Conflict(f"job {job_id!r} has already ended ({state})", details={"state": state})
            job = record.job.model_copy(update={"cancel_requested": True})
            try:
                saved = await self._jobs.save(
                    record, job, cursor=record.cursor, pages=record.pages,
                    claim=record.claim, claimed_at=record.claimed_at, now=now,
                )  # fmt: skip
            except ReboundError as exc:
                if exc.code == "concurrency_conflict":
                    continue
                raise
            log_event(logger, "job.cancel_requested", integration=integration, job_id=job_id)
            return saved.job
        raise Conflict(f"job {job_id!r} is changing too fast to cancel; try again")

    # --- runner ------------------------------------------------------------------------------

    @property
    def claim_timeout(self) -> timedelta:
        return timedelta(seconds=self._limits.page_size / self._limits.rate_per_s) + CLAIM_GRACE

    async def run_page(self, message: bytes, *, message_id: str, now: datetime) -> Job | None:
        """Handle one `jobs` queue message. Returns the job as checkpointed, or None if there was nothing to do.

        The claim is the queue message's id: the host re-delivering the same message after a
        crash may take the page over at once; a different (duplicate) message may not while
        the claim is fresh.
        """
        integration, job_id = _parse_page_message(message)
        record = await self._jobs.get(integration, job_id)
        if record is None or not record.job.state.is_active:
            return None
        if self._claimed_by_another(record, message_id, now):
            return None  # a duplicate page message; the holder enqueues the next page
        if record.job.cancel_requested:
            return await self._finish(record, JobState.CANCELLED, now)
        if record.job.action is JobAction.RETRY and await self._inbound_is_full():
            await self._enqueue_page(record.job, delay_s=BACKPRESSURE_DELAY_S)
            return None

        claim = message_id
        job = record.job
        if job.state is JobState.QUEUED:
            job = job.model_copy(update={"state": JobState.RUNNING, "started_at": now})
        try:
            record = await self._jobs.save(
                record, job, cursor=record.cursor, pages=record.pages, claim=claim, claimed_at=now, now=now
            )
        except ReboundError as exc:
            if exc.code == "concurrency_conflict":
                return None  # someone else claimed it first
            raise
        if job.total is None and job.selection.filter is not None:
            total = await count_failures(
                self._failures, job.integration, job.selection.filter, not_after=job.created_at
            )
            job = job.model_copy(update={"total": job.processed + total})

        page = await self._process_page(record, job)
        job = job.model_copy(
            update={
                "processed": job.processed + page.processed,
                "succeeded": job.succeeded + page.succeeded,
                "failed": job.failed + page.failed,
                "skipped": job.skipped + page.skipped,
                "last_error": page.last_error or job.last_error,
                "rate_per_s": page.rate_per_s,
            }
        )
        saved = await self._checkpoint(record, job, cursor=page.cursor, claim=claim, now=now)
        if saved.job.cancel_requested:
            return await self._finish(saved, JobState.CANCELLED, now)
        if page.exhausted:
            return await self._finish(saved, JobState.COMPLETED, now)
        await self._enqueue_page(saved.job)
        return saved.job

    async def _checkpoint(
        self, record: JobRecord, job: Job, *, cursor: str | None, claim: str, now: datetime
    ) -> JobRecord:
        """Save the page's progress and release the claim.

        A cancel request lands on the same row while the page runs, so the ETag taken at claim
        time may be stale: then re-read, keep the cancel request, and write the page's counts on
        top, as long as the claim is still this page's. The work is done; it must be counted.
        """
        for _ in range(5):
            try:
                return await self._jobs.save(
                    record, job, cursor=cursor, pages=record.pages + 1, claim=None, claimed_at=None, now=now
                )
            except ConcurrencyConflict:
                fresh = await self._jobs.get(job.integration, job.id)
                if fresh is None or fresh.claim != claim:
                    raise
                job = job.model_copy(update={"cancel_requested": fresh.job.cancel_requested})
                record = JobRecord(
                    fresh.job, fresh.etag, fresh.cursor, record.pages, fresh.claim, fresh.claimed_at, fresh.updated_at
                )
        raise ConcurrencyConflict(f"job {job.id!r}: the checkpoint kept conflicting")

    async def fail(self, integration: str, job_id: str, *, reason: str, now: datetime) -> None:
        """End an active job as failed (its page kept crashing) and free the integration."""
        record = await self._jobs.get(integration, job_id)
        if record is None or not record.job.state.is_active:
            return
        job = record.job.model_copy(update={"state": JobState.FAILED, "finished_at": now, "last_error": reason[:500]})
        await self._jobs.save(
            record, job, cursor=record.cursor, pages=record.pages, claim=None, claimed_at=None, now=now
        )
        await self._jobs.release_lock(integration, job_id)
        log_event(logger, "job.failed", level=logging.WARNING, integration=integration, job_id=job_id, reason=reason)

    async def resume_stalled(self, *, now: datetime) -> int:
        """Watchdog: re-enqueue the next page of active jobs that stopped checkpointing."""
        resumed = 0
        async for record in self._jobs.active():
            resumed += await self._resume_if_stalled(record, now)
        return resumed

    # --- steps -------------------------------------------------------------------------------

    async def _load(self, integration: str, job_id: str) -> JobRecord:
        record = await self._jobs.get(integration, job_id)
        if record is None:
            raise JobNotFound(f"job {job_id!r} of {integration!r} does not exist", details={"job_id": job_id})
        return record

    def _claimed_by_another(self, record: JobRecord, message_id: str, now: datetime) -> bool:
        if record.claim is None or record.claim == message_id or record.claimed_at is None:
            return False
        return now - record.claimed_at < self.claim_timeout

    async def _resume_if_stalled(self, record: JobRecord, now: datetime) -> bool:
        """Re-enqueue a page when an active job stopped checkpointing (its page message was lost)."""
        last = record.updated_at or record.job.created_at
        if not record.job.state.is_active or now - last < self.claim_timeout:
            return False
        # A duplicate page message is harmless: the claim lets only one run.
        await self._enqueue_page(record.job)
        log_event(
            logger, "job.resumed", level=logging.WARNING, integration=record.job.integration, job_id=record.job.id
        )
        return True

    async def _inbound_is_full(self) -> bool:
        return await self._queues.depth(self._inbound) > self._limits.max_inbound_depth

    async def _enqueue_page(self, job: Job, *, delay_s: int | None = None) -> None:
        text = json.dumps({"integration": job.integration, "job_id": job.id})
        await self._queues.send(self._jobs_queue, text, visibility_timeout_s=delay_s)

    async def _finish(self, record: JobRecord, state: JobState, now: datetime) -> Job:
        job = record.job.model_copy(update={"state": state, "finished_at": now})
        await self._jobs.save(
            record, job, cursor=record.cursor, pages=record.pages, claim=None, claimed_at=None, now=now
        )
        await self._jobs.release_lock(job.integration, job.id)
        # Repairs counter drift from crashes between a failure row and its counter.
        await self._failures.rebuild_summary(job.integration)
        log_event(
            logger, "job.finished", integration=job.integration, job_id=job.id, state=state.value,
            processed=job.processed, succeeded=job.succeeded, failed=job.failed, skipped=job.skipped,
        )  # fmt: skip
        return job

    async def _process_page(self, record: JobRecord, job: Job) -> _PageResult:
        result = _PageResult(cursor=record.cursor)
        started = self._monotonic()
        seen = 0
        batch: _Batch = []
        items = self._page_items(job, record.cursor)
        async with aclosing(items):
            async for failure, etag, position in items:
                seen += 1
                batch.append(_Item(failure, etag, position))
                if len(batch) == self._batch_size:
                    await self._run_batch(job, batch, result, started)
                    batch = []
        if batch:
            await self._run_batch(job, batch, result, started)
        elapsed = self._monotonic() - started
        result.rate_per_s = round(result.processed / elapsed, 2) if elapsed > 0 and result.processed else None
        result.exhausted = seen < self._limits.page_size
        return result

    @property
    def _batch_size(self) -> int:
        """Items handled together: one table transaction at most, and about a second's worth at the rate limit."""
        return max(1, min(MAX_BATCH_OPERATIONS, self._limits.page_size, int(self._limits.rate_per_s)))

    async def _run_batch(self, job: Job, batch: _Batch, result: _PageResult, started: float) -> None:
        # The batch starts when its last item may: no item starts before n / rate seconds in.
        await self._pace(started, result.processed + len(batch) - 1)
        if job.action is JobAction.RETRY:
            outcomes = await self._retry_batch(batch)
        else:
            outcomes = await self._delete_batch(batch)
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ReboundError):
                result.failed += 1
                result.last_error = f"{item.failure.id if item.failure else item.position}: {outcome.message}"[:500]
            elif outcome:
                result.succeeded += 1
            else:
                result.skipped += 1
            result.processed += 1
            result.cursor = item.position
        count(Counter.JOB_ITEMS, job.integration, len(batch))

    async def _pace(self, started: float, item: int) -> None:
        """Hold the per-integration rate: item n may start no earlier than n / rate seconds in."""
        due = started + item / self._limits.rate_per_s
        wait = due - self._monotonic()
        if wait > 0:
            await self._sleep(wait)

    async def _page_items(self, job: Job, cursor: str | None) -> AsyncGenerator[tuple[Failure | None, str, str], None]:
        """The next page of the frozen selection: (failure or None if gone, etag, cursor after it)."""
        limit = self._limits.page_size
        if job.selection.ids is not None:
            ids = sorted(set(job.selection.ids))
            start = int(cursor) if cursor else 0
            for index in range(start, min(start + limit, len(ids))):
                found = await self._failures.get(job.integration, ids[index])
                if found is None or found[0].failed_at > job.created_at:
                    yield None, "", str(index + 1)
                else:
                    yield found[0], found[1], str(index + 1)
            return
        selection = job.selection.filter or FailureFilter()
        # One service page per job page when the table filters everything itself (a 1,000-row
        # page for 100 items cost ~0.6 s of SDK parsing per job page once deletes were batched).
        rows = iter_selected(
            self._failures, job.integration, selection, after_row_key=cursor, not_after=job.created_at, page_size=limit
        )
        async with aclosing(rows):
            yielded = 0
            async for row in rows:
                yield failure_from_row(row), str(row["_etag"]), str(row["RowKey"])
                yielded += 1
                if yielded == limit:
                    return

    async def _retry_batch(self, batch: _Batch) -> _Outcomes:
        """Enqueue every present failure's message (CONCURRENCY at a time), then remove those that went out.

        Enqueue before remove: a crash in between sends a message twice, never loses one. When
        `inbound` is unreachable (and there is nowhere to park), what was sent is still removed
        before the error ends the page, so the re-run does not send it again.
        """
        present = [item for item in batch if item.failure is not None]
        sent_errors = await each(present, self._enqueue_again, limit=CONCURRENCY, errors=ReboundError)
        sent = [item for item, error in zip(present, sent_errors, strict=True) if error is None]
        removal = await self._failures.remove_many([(item.present, item.etag) for item in sent])
        await self._discard_overflow(removal.removed)
        unavailable = next((e for e in sent_errors if isinstance(e, StorageUnavailable)), None)
        if unavailable is not None:
            raise unavailable  # the host re-runs the page; the checkpoint and the removals make that safe
        errors = {item.present.id: error for item, error in zip(present, sent_errors, strict=True) if error}
        return _outcomes(batch, removal, errors)

    async def _discard_overflow(self, removed: Sequence[Failure]) -> None:
        """The resent messages carry their whole headers again; the copies kept for the resend can go.
        Best effort: what stays behind is removed by the retention purge."""
        refs = [ref for ref in map(self._failures.overflow_ref, removed) if ref]
        if refs:
            await self._payloads.delete_many(refs)

    async def _enqueue_again(self, item: _Item) -> None:
        envelope = resend_envelope(await self._failures.restore(item.present))
        _, text = await pack(envelope, self._payloads)
        try:
            await self._queues.send(self._inbound, text)
        except StorageUnavailable:
            if self._parker is None:
                raise
            # The message is safe in the recovery flow; the sweep puts it on inbound later.
            await self._parker.park_envelope(envelope, "retry job could not enqueue to inbound")

    async def _delete_batch(self, batch: _Batch) -> _Outcomes:
        """Remove the present failures (transactions of 100), then their content (Blob Batch requests)."""
        present = [item for item in batch if item.failure is not None]
        removal = await self._failures.remove_many([(item.present, item.etag) for item in present])
        blobs = [(failure, ref) for failure in removal.removed for ref in self._failures.content_refs(failure)]
        # A batch that cannot reach storage raises here: the rows are gone, and the retention
        # purge removes content left behind.
        blob_errors = await self._payloads.delete_many([ref for _, ref in blobs])
        unavailable = next((e for e in blob_errors if isinstance(e, StorageUnavailable)), None)
        if unavailable is not None:
            raise unavailable
        errors: dict[str, ReboundError] = {
            failure.id: error for (failure, _), error in zip(blobs, blob_errors, strict=True) if error
        }
        return _outcomes(batch, removal, errors)


@dataclass(frozen=True)
class _Item:
    """One selected failure: None when it is gone (an id that no longer exists), its ETag, the cursor after it."""

    failure: Failure | None
    etag: str
    position: str

    @property
    def present(self) -> Failure:
        assert self.failure is not None
        return self.failure


#: True: retried/deleted by this page; False: already gone (skipped); an error: failed, left in place.
_Outcome = bool | ReboundError
# (module-level aliases: inside JobService, `list` is its method)
_Batch = list[_Item]
_Outcomes = list[_Outcome]


def _outcomes(batch: _Batch, removal: Removal, errors: dict[str, ReboundError]) -> _Outcomes:
    """Per item: its error (send or content), else its ETag conflict, else whether this page removed it."""
    failed: dict[str, ReboundError] = {failure.id: conflict for failure, conflict in removal.changed}
    failed.update(errors)
    removed = {failure.id for failure in removal.removed}
    return [
        False if item.failure is None else failed.get(item.failure.id, item.failure.id in removed) for item in batch
    ]


@dataclass
class _PageResult:
    cursor: str | None
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    last_error: str | None = None
    rate_per_s: float | None = None
    exhausted: bool = False


def resend_envelope(failure: Failure) -> Envelope:
    """The failure's message as it goes back to `inbound`: same id, resend_count+1, counters reset."""
    return Envelope(
        id=failure.message_id,
        integration=failure.integration,
        sender=failure.sender,
        receiver=failure.receiver,
        correlation_id=failure.correlation_id,
        content_type=failure.content_type,
        headers=failure.headers,
        body_ref=failure.body_ref,
        received_at=failure.received_at or failure.failed_at,
        resend_count=failure.resend_count + 1,
    )


def _parse_page_message(message: bytes) -> tuple[str, str]:
    try:
        data: Any = json.loads(message)
        return str(data["integration"]), str(data["job_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadParameter("message", "not a job page message") from exc
