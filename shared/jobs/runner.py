"""Running a job, page by page: the `jobs` queue trigger's side of a job (its API side is lifecycle.py).

A job is a frozen selection (all, a filter, or ids) of one integration's failures that existed
when it was created. Each `jobs` queue message runs one page:

  claim the job (versioned save) → handle up to JOB_PAGE_SIZE failures at the rate limit →
  checkpoint counts and cursor (versioned save) → enqueue the next page, or finish and free the lock.

A removed failure is never selected again, so a page that runs twice never re-sends what it
already removed. What one batch of a page does (resend or remove) is `shared.jobs.batches`.
`JobRunner` is also the `JobControl` the recovery sweep uses: fail a job whose page kept
crashing, and resume jobs that stopped checkpointing.

A job's end goes to the audit trail (`job.finish`, as whoever started it) before the save that ends
it: a crash in between finishes (and records) the job again, so the end is recorded at least once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from datetime import datetime

from shared.audit.service import AuditTrail
from shared.errors import ConcurrencyConflict, ReboundError
from shared.failures.models import FailureFilter
from shared.failures.ports import FailureStore
from shared.jobs.batches import Batch, BatchItem, JobBatches
from shared.jobs.models import Job, JobAction, JobState
from shared.jobs.pages import JobPages
from shared.jobs.ports import Checkpoint, JobRecord, JobStore, PageMessage
from shared.jobs.trail import record_finish
from shared.logs import log_event
from shared.messages.shards import InboundShards
from shared.operability.metrics import Counter, Metrics
from shared.tokens import Cursor

logger = logging.getLogger("rebound.jobs")

#: While `inbound` is deeper than the limit, a retry page waits this long before trying again.
BACKPRESSURE_DELAY_S = 5
#: A checkpoint re-reads and tries again this often when a cancel request lands meanwhile.
CHECKPOINT_ATTEMPTS = 5


class JobRunner:
    def __init__(
        self,
        *,
        jobs: JobStore,
        failures: FailureStore,
        pages: JobPages,
        batches: JobBatches,
        inbound: InboundShards,
        metrics: Metrics,
        audit: AuditTrail,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jobs = jobs
        self._failures = failures
        self.pages = pages
        self._limits = pages.limits
        self._batches = batches
        self._inbound = inbound
        self._metrics = metrics
        self._audit = audit
        self._sleep = sleep
        self._monotonic = monotonic

    async def run_page(self, message: bytes | str, *, message_id: str, now: datetime) -> Job | None:
        """Handle one `jobs` queue message. Returns the job as checkpointed, or None if there was nothing to do.

        `BadParameter("message")` when the message is not a page message (the host retries it,
        then moves it to the poison queue, where the recovery sweep counts it as an error).
        """
        page = PageMessage.parse(message)
        record = await self._jobs.get(page.integration, page.job_id)
        if record is None or not record.job.state.is_active:
            return None
        if self.pages.claimed_by_another(record, message_id, now):
            return None  # a duplicate page message; the holder enqueues the next page
        if record.job.cancel_requested:
            return await self._finish(record, JobState.CANCELLED, now)
        sends_to_inbound = record.job.action is JobAction.RETRY and record.job.target is None
        if sends_to_inbound and await self._inbound_is_full(record.job.integration):
            await self.pages.enqueue(record.job, delay_s=BACKPRESSURE_DELAY_S)
            return None
        claimed = await self._claim(record, message_id, now)
        if claimed is None:
            return None  # someone else claimed it first
        return await self._run_claimed(claimed, message_id, now)

    async def _claim(self, record: JobRecord, message_id: str, now: datetime) -> JobRecord | None:
        """Take the page with a versioned save (the claim is the queue message's id); None when another won."""
        job = record.job
        if job.state is JobState.QUEUED:
            job = job.model_copy(update={"state": JobState.RUNNING, "started_at": now})
        try:
            return await self._jobs.save(
                record, job, replace(record.checkpoint, claim=message_id, claimed_at=now), now=now
            )
        except ConcurrencyConflict:
            return None

    async def _run_claimed(self, record: JobRecord, claim: str, now: datetime) -> Job:
        """Process the claimed page, checkpoint it, then finish the job or queue its next page."""
        job = record.job
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
        await self.pages.enqueue(saved.job)
        return saved.job

    async def _checkpoint(
        self, record: JobRecord, job: Job, *, cursor: Cursor | None, claim: str, now: datetime
    ) -> JobRecord:
        """Save the page's progress and release the claim.

        A cancel request lands on the same job while the page runs, so the version taken at claim
        time may be stale: then re-read, keep the cancel request, and write the page's counts on
        top, as long as the claim is still this page's. The work is done; it must be counted.
        """
        for _ in range(CHECKPOINT_ATTEMPTS):
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

    # --- JobControl (what the recovery sweep may do) -----------------------------------------

    async def fail(self, integration: str, job_id: str, *, reason: str, now: datetime) -> None:
        """End an active job as failed (its page kept crashing) and free the integration."""
        record = await self._jobs.get(integration, job_id)
        if record is None or not record.job.state.is_active:
            return
        job = record.job.model_copy(update={"state": JobState.FAILED, "finished_at": now, "last_error": reason[:500]})
        await record_finish(self._audit, job)
        await self._jobs.save(record, job, replace(record.checkpoint, claim=None, claimed_at=None), now=now)
        await self._jobs.release_lock(integration, job_id)
        log_event(logger, "job.failed", level=logging.WARNING, integration=integration, job_id=job_id, reason=reason)

    async def resume_stalled(self, *, now: datetime) -> int:
        """Watchdog: re-enqueue the next page of active jobs that stopped checkpointing."""
        resumed = 0
        async for record in self._jobs.active():
            resumed += await self.pages.resume_if_stalled(record, now)
        return resumed

    # --- steps -------------------------------------------------------------------------------

    async def _inbound_is_full(self, integration: str) -> bool:
        # The integration's own shard: the queue this job fills (docs/design-notes.md, "Backpressure per shard").
        return await self._inbound.depth_of(integration) > self._limits.max_inbound_depth

    async def _finish(self, record: JobRecord, state: JobState, now: datetime) -> Job:
        job = record.job.model_copy(update={"state": state, "finished_at": now})
        # Before the save that ends it: a crash in between finishes (and records) the job again.
        await record_finish(self._audit, job)
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
        if job.target is not None:
            outcomes = await self._batches.send_to(batch, job.target)
        elif job.action is JobAction.RETRY:
            outcomes = await self._batches.retry(batch, job=job)
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
