"""Retry and delete jobs over failures: started atomically, run page by page, checkpointed.

A job is a frozen selection (all, a filter, or ids) of one integration's failures that existed
when it was created. Each `jobs` queue message runs one page:

  claim the job (versioned save) → handle up to JOB_PAGE_SIZE failures at the rate limit →
  checkpoint counts and cursor (versioned save) → enqueue the next page, or finish and free the lock.

Retry re-enqueues the failure's envelope (same message id, resend_count+1, counters reset)
and only then removes the failure: a crash in between can send a message twice (receivers
deduplicate on Idempotency-Key, which is that same id), never lose it. A removed failure is
never selected again, so a page that runs twice never re-sends what it already removed.
Delete removes the failure, then its content. The batches themselves are `shared.jobs.batches`.

The audit trail gets `job.start` (the starter as actor) before the first page is queued, `job.cancel`
when a cancel is asked for, and `job.finish` (the starter again) before a job's final state is saved,
so a job that ends is recorded even when the save that ends it has to be done again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.audit.models import SYSTEM_ACTOR, Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.config.ports import IntegrationStore
from shared.errors import (
    BadParameter,
    ConcurrencyConflict,
    Conflict,
    IntegrationNotFound,
    JobNotFound,
    ReboundError,
)
from shared.failures.models import FailureFilter
from shared.failures.ports import FailureStore
from shared.ids import newest_first_id
from shared.jobs.batches import Batch, BatchItem, JobBatches
from shared.jobs.models import Job, JobAction, JobLimits, JobRequest, JobState, selection_summary
from shared.jobs.ports import Checkpoint, JobRecord, JobStore
from shared.logs import log_event
from shared.messages.ports import MessageQueue, PayloadStore
from shared.operability.metrics import Counter, Metrics
from shared.recovery.ports import Parking
from shared.tokens import Cursor

logger = logging.getLogger("rebound.jobs")

#: A page claim lapses this long after a page should have finished at the rate limit
#: (the holder is presumed dead: host killed mid-page).
CLAIM_GRACE = timedelta(seconds=60)
#: While `inbound` is deeper than the limit, a retry page waits this long before trying again.
BACKPRESSURE_DELAY_S = 5

T = TypeVar("T")


class JobService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        integrations: IntegrationStore,
        failures: FailureStore,
        payloads: PayloadStore,
        inbound: MessageQueue,
        job_pages: MessageQueue,
        limits: JobLimits,
        metrics: Metrics,
        audit: AuditTrail,
        parker: Parking | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._integrations = integrations
        self._failures = failures
        self._inbound = inbound
        self._job_pages = job_pages
        self._limits = limits
        self._metrics = metrics
        self._audit = audit
        self._batches = JobBatches(failures=failures, payloads=payloads, inbound=inbound, parker=parker)
        self._sleep = sleep
        self._monotonic = monotonic

    # --- API ---------------------------------------------------------------------------------

    async def start(self, integration: str, request: JobRequest, *, actor: Actor, now: datetime) -> Job:
        """202 material: the job is stored, holds the lock, is in the audit trail, and its first page is queued.

        Recorded before the first page is queued, so no item is handled for a job the trail does not
        know; when the entry or the page cannot be written the job ends as failed and frees the lock.
        """
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
            created_by=actor,
        )
        await self._jobs.create(job)
        details = {"action": job.action.value, "selection": selection_summary(job.selection), "total": total}
        recorded = False
        try:
            await self._audit.record(
                actor, AuditAction.JOB_START, integration=integration, target=job.id, details=details
            )
            recorded = True
            await self._enqueue_page(job)
        except ReboundError:
            # Without its first page the job would hold the lock forever.
            reason = "could not queue the job" if recorded else "could not record the job in the audit trail"
            await self._end_unstarted(job, reason, recorded=recorded, now=now)
            raise
        log_event(logger, "job.started", integration=integration, job_id=job.id, action=job.action.value, total=total)
        return job

    async def _end_unstarted(self, job: Job, reason: str, *, recorded: bool, now: datetime) -> None:
        failed = job.model_copy(update={"state": JobState.FAILED, "finished_at": now, "last_error": reason})
        if recorded:
            # Its start is in the trail: so is its end, if the trail takes it (the caller's error stands anyway).
            with contextlib.suppress(ReboundError):
                await self._record_finish(failed)
        record = await self._jobs.get(job.integration, job.id)
        if record is not None:
            await self._jobs.save(record, failed, Checkpoint(), now=now)
        await self._jobs.release_lock(job.integration, job.id)

    async def _record_finish(self, job: Job) -> None:
        details = {
            "state": job.state.value, "total": job.total, "processed": job.processed, "succeeded": job.succeeded,
            "failed": job.failed, "skipped": job.skipped, "last_error": job.last_error,
        }  # fmt: skip
        await self._audit.record(
            job.created_by or SYSTEM_ACTOR, AuditAction.JOB_FINISH, integration=job.integration, target=job.id,
            details=details,
        )  # fmt: skip

    async def _require_integration(self, integration: str) -> None:
        """A job needs an integration to work on: one with a config, or one with failures recorded under
        it (`_unknown`, or an integration whose config was deleted, keeps its failures until a job or the
        retention purge removes them). Anything else is a 404, not a job that finds nothing."""
        if await self._integrations.get(integration) is None and not await self._failures.has_any(integration):
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

    async def cancel(self, integration: str, job_id: str, *, actor: Actor, now: datetime) -> Job:
        """Ask the runner to stop at the next page boundary; 409 when the job already ended."""
        for _ in range(5):
            record = await self._load(integration, job_id)
            if not record.job.state.is_active:
                state = record.job.state.value
                raise Conflict(f"job {job_id!r} has already ended ({state})", details={"state": state})
            job = record.job.model_copy(update={"cancel_requested": True})
            try:
                saved = await self._jobs.save(record, job, record.checkpoint, now=now)
            except ReboundError as exc:
                if exc.code == "concurrency_conflict":
                    continue
                raise
            log_event(logger, "job.cancel_requested", integration=integration, job_id=job_id)
            await self._audit.record(actor, AuditAction.JOB_CANCEL, integration=integration, target=job_id)
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
                record, job, replace(record.checkpoint, claim=claim, claimed_at=now), now=now
            )
        except ReboundError as exc:
            if exc.code == "concurrency_conflict":
                return None  # someone else claimed it first
            raise
        if job.total is None and job.selection.filter is not None:
            total = await self._failures.count(job.integration, job.selection.filter, not_after=job.created_at)
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
        self, record: JobRecord, job: Job, *, cursor: Cursor | None, claim: str, now: datetime
    ) -> JobRecord:
        """Save the page's progress and release the claim.

        A cancel request lands on the same job while the page runs, so the version taken at claim
        time may be stale: then re-read, keep the cancel request, and write the page's counts on
        top, as long as the claim is still this page's. The work is done; it must be counted.
        """
        for _ in range(5):
            try:
                return await self._jobs.save(
                    record, job, Checkpoint(cursor, pages=record.checkpoint.pages + 1), now=now
                )
            except ConcurrencyConflict:
                fresh = await self._jobs.get(job.integration, job.id)
                if fresh is None or fresh.checkpoint.claim != claim:
                    raise
                job = job.model_copy(update={"cancel_requested": fresh.job.cancel_requested})
                # The page count goes on from the claimed record's, whatever the fresh one says.
                pages = record.checkpoint.pages
                record = replace(fresh, checkpoint=replace(fresh.checkpoint, pages=pages))
        raise ConcurrencyConflict(f"job {job.id!r}: the checkpoint kept conflicting")

    async def fail(self, integration: str, job_id: str, *, reason: str, now: datetime) -> None:
        """End an active job as failed (its page kept crashing) and free the integration."""
        record = await self._jobs.get(integration, job_id)
        if record is None or not record.job.state.is_active:
            return
        job = record.job.model_copy(update={"state": JobState.FAILED, "finished_at": now, "last_error": reason[:500]})
        await self._record_finish(job)
        await self._jobs.save(record, job, replace(record.checkpoint, claim=None, claimed_at=None), now=now)
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
        claim, claimed_at = record.checkpoint.claim, record.checkpoint.claimed_at
        if claim is None or claim == message_id or claimed_at is None:
            return False
        return now - claimed_at < self.claim_timeout

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
        return await self._inbound.depth() > self._limits.max_inbound_depth

    async def _enqueue_page(self, job: Job, *, delay_s: int | None = None) -> None:
        text = json.dumps({"integration": job.integration, "job_id": job.id})
        await self._job_pages.send(text, delay_s=delay_s)

    async def _finish(self, record: JobRecord, state: JobState, now: datetime) -> Job:
        job = record.job.model_copy(update={"state": state, "finished_at": now})
        # Before the save that ends it: a crash in between finishes (and records) the job again.
        await self._record_finish(job)
        await self._jobs.save(record, job, replace(record.checkpoint, claim=None, claimed_at=None), now=now)
        await self._jobs.release_lock(job.integration, job.id)
        # Repairs counter drift from crashes between a failure and its counter.
        await self._failures.rebuild_summary(job.integration)
        log_event(
            logger, "job.finished", integration=job.integration, job_id=job.id, state=state.value,
            processed=job.processed, succeeded=job.succeeded, failed=job.failed, skipped=job.skipped,
        )  # fmt: skip
        return job

    async def _process_page(self, record: JobRecord, job: Job) -> _PageResult:
        result = _PageResult(cursor=record.checkpoint.cursor)
        started = self._monotonic()
        seen = 0
        batch: Batch = []
        items = self._page_items(job, record.checkpoint.cursor)
        async with aclosing(items):
            async for item in items:
                seen += 1
                batch.append(item)
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
        return max(1, min(self._failures.max_batch, self._limits.page_size, int(self._limits.rate_per_s)))

    async def _run_batch(self, job: Job, batch: Batch, result: _PageResult, started: float) -> None:
        # The batch starts when its last item may: no item starts before n / rate seconds in.
        await self._pace(started, result.processed + len(batch) - 1)
        if job.action is JobAction.RETRY:
            outcomes = await self._batches.retry(batch)
        else:
            outcomes = await self._batches.delete(batch)
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
        self._metrics.count(Counter.JOB_ITEMS, job.integration, len(batch))

    async def _pace(self, started: float, item: int) -> None:
        """Hold the per-integration rate: item n may start no earlier than n / rate seconds in."""
        due = started + item / self._limits.rate_per_s
        wait = due - self._monotonic()
        if wait > 0:
            await self._sleep(wait)

    async def _page_items(self, job: Job, cursor: Cursor | None) -> AsyncGenerator[BatchItem, None]:
        """The next page of the frozen selection, each with the cursor after it."""
        limit = self._limits.page_size
        if job.selection.ids is not None:
            ids = sorted(set(job.selection.ids))
            start = int(cursor) if cursor else 0
            for index in range(start, min(start + limit, len(ids))):
                found = await self._failures.get(job.integration, ids[index])
                position = Cursor(str(index + 1))
                if found is None or found.failure.failed_at > job.created_at:
                    yield BatchItem(None, None, position)
                else:
                    yield BatchItem(found.failure, found.version, position)
            return
        selection = job.selection.filter or FailureFilter()
        # The store stops after `limit`, so the selection is read to its end here.
        selected = self._failures.select(
            job.integration, selection, not_after=job.created_at, after=cursor, limit=limit
        )
        async for item in selected:
            yield BatchItem(item.failure, item.version, item.position)


@dataclass
class _PageResult:
    cursor: Cursor | None
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    last_error: str | None = None
    rate_per_s: float | None = None
    exhausted: bool = False


def _parse_page_message(message: bytes) -> tuple[str, str]:
    try:
        data: Any = json.loads(message)
        return str(data["integration"]), str(data["job_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadParameter("message", "not a job page message") from exc
