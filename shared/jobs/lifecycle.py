"""A job as the API sees it: start one (atomically, holding its integration's lock), read, list, cancel.

Starting stores the job and queues its first page; the pages themselves run in `JobRunner`
(shared/jobs/runner.py), off the request path. Reading a job also resumes it when it stalled,
so a lost page message never leaves a job hanging for whoever watches it.

Who starts or cancels a job is an explicit `actor`: a job keeps its starter (`created_by`), and
the audit trail gets `job.start` before the first page is queued (no item is handled for a job the
trail does not know) and `job.cancel` once the cancel request is saved.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.config.ports import IntegrationStore
from shared.config.service import endpoint_problems
from shared.egress import EgressPolicy
from shared.errors import (
    ConcurrencyConflict,
    Conflict,
    IntegrationNotFound,
    JobNotFound,
    ReboundError,
    RequestValidationError,
)
from shared.failures.ports import FailureStore
from shared.ids import newest_first_id
from shared.jobs.models import Job, JobAction, JobRequest, JobState
from shared.jobs.pages import JobPages
from shared.jobs.ports import Checkpoint, JobRecord, JobStore, SettleCounts
from shared.jobs.settle import with_settled
from shared.jobs.trail import record_finish, record_start
from shared.logs import log_event

logger = logging.getLogger("rebound.jobs")

#: A cancel request re-reads and tries again this often when a page checkpoints meanwhile.
CANCEL_ATTEMPTS = 5


class JobLifecycle:
    def __init__(
        self,
        *,
        jobs: JobStore,
        integrations: IntegrationStore,
        failures: FailureStore,
        pages: JobPages,
        audit: AuditTrail,
        settle_counts: SettleCounts | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._egress = egress
        self._jobs = jobs
        self._settle_counts = settle_counts
        self._integrations = integrations
        self._failures = failures
        self._pages = pages
        self._audit = audit

    async def start(self, integration: str, request: JobRequest, *, actor: Actor, now: datetime) -> Job:
        """202 material: the job is stored, holds the lock, is in the audit trail, and its first page is queued.

        When the entry or the first page cannot be written the job ends as failed and frees the lock.
        """
        self._check_target(request)
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
            target=request.target,
        )
        await self._jobs.create(job)
        recorded = False
        try:
            await record_start(self._audit, job, actor)
            recorded = True
            await self._pages.enqueue(job)
        except ReboundError:
            # Without its first page the job would hold the lock forever.
            reason = "could not queue the job" if recorded else "could not record the job in the audit trail"
            await self._fail_unqueued(job, reason, recorded=recorded, now=now)
            raise
        log_event(logger, "job.started", integration=integration, job_id=job.id, action=job.action.value, total=total)
        return job

    def _check_target(self, request: JobRequest) -> None:
        """A send-elsewhere target passes the egress policy as a config's endpoint must (422 naming `target.*`)."""
        if request.target is None or self._egress is None:
            return
        refused = endpoint_problems("target", request.target, self._egress)
        if refused:
            summary = "; ".join(f"{f['field']}: {f['message']}" for f in refused[:5])
            raise RequestValidationError(f"invalid body: {summary}", refused)

    async def _require_integration(self, integration: str) -> None:
        """A job needs an integration to work on: one with a config, or one with failures recorded under
        it (`_unknown`, or an integration whose config was deleted, keeps its failures until a job or the
        retention purge removes them). Anything else is a 404, not a job that finds nothing."""
        if await self._integrations.get(integration) is None and not await self._failures.has_any(integration):
            raise IntegrationNotFound(integration)

    async def _fail_unqueued(self, job: Job, reason: str, *, recorded: bool, now: datetime) -> None:
        failed = job.model_copy(update={"state": JobState.FAILED, "finished_at": now, "last_error": reason})
        if recorded:
            # Its start is in the trail: so is its end, if the trail takes it (the caller's error stands anyway).
            with contextlib.suppress(ReboundError):
                await record_finish(self._audit, failed)
        record = await self._jobs.get(job.integration, job.id)
        if record is not None:
            await self._jobs.save(record, failed, Checkpoint(), now=now)
        await self._jobs.release_lock(job.integration, job.id)

    async def get(self, integration: str, job_id: str, *, now: datetime) -> Job:
        record = await self._load(integration, job_id)
        await self._pages.resume_if_stalled(record, now)
        return (await settled(self._settle_counts, integration, [record.job]))[0]

    async def list(self, integration: str, *, now: datetime) -> list[Job]:
        jobs = await self._jobs.list(integration)
        for job in jobs:
            if job.state.is_active:
                record = await self._jobs.get(integration, job.id)
                if record is not None:
                    await self._pages.resume_if_stalled(record, now)
        return await settled(self._settle_counts, integration, jobs)

    async def cancel(self, integration: str, job_id: str, *, actor: Actor, now: datetime) -> Job:
        """Ask the runner to stop at the next page boundary; 409 when the job already ended."""
        for _ in range(CANCEL_ATTEMPTS):
            record = await self._load(integration, job_id)
            if not record.job.state.is_active:
                state = record.job.state.value
                raise Conflict(f"job {job_id!r} has already ended ({state})", details={"state": state})
            job = record.job.model_copy(update={"cancel_requested": True})
            try:
                saved = await self._jobs.save(record, job, record.checkpoint, now=now)
            except ConcurrencyConflict:
                continue  # a page checkpointed meanwhile: read it again
            log_event(logger, "job.cancel_requested", integration=integration, job_id=job_id)
            await self._audit.record(actor, AuditAction.JOB_CANCEL, integration=integration, target=job_id)
            return saved.job
        raise Conflict(f"job {job_id!r} is changing too fast to cancel; try again")

    async def _load(self, integration: str, job_id: str) -> JobRecord:
        record = await self._jobs.get(integration, job_id)
        if record is None:
            raise JobNotFound(f"job {job_id!r} of {integration!r} does not exist", details={"job_id": job_id})
        return record


async def settled(counts: SettleCounts | None, integration: str, jobs: Sequence[Job]) -> list[Job]:
    """Retry jobs with their settle counters (issue 19): how many of their resent messages were delivered,
    failed again, or are still on their way."""
    retried = [job.id for job in jobs if job.action is JobAction.RETRY]
    if counts is None or not retried:
        return [with_settled(job, None) for job in jobs]
    totals = await counts.totals(integration, retried)
    return [with_settled(job, totals.get(job.id)) for job in jobs]
