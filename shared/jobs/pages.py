"""The `jobs` queue as both halves of a job see it: enqueue a page, who may run it, and resuming a stalled job.

The lifecycle queues a job's first page and resumes a stalled job when someone looks at it; the
runner queues every next page, holds the claim and resumes stalled jobs for the watchdog. The
message format is `PageMessage` (shared/jobs/ports.py), which the recovery sweep reads as well.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from shared.jobs.models import Job, JobLimits
from shared.jobs.ports import JobRecord, PageMessage
from shared.logs import log_event
from shared.messages.ports import MessageQueue

logger = logging.getLogger("rebound.jobs")

#: A page claim lapses this long after a page should have finished at the rate limit
#: (the holder is presumed dead: host killed mid-page).
CLAIM_GRACE = timedelta(seconds=60)


class JobPages:
    def __init__(self, queue: MessageQueue, *, limits: JobLimits) -> None:
        self._queue = queue
        self.limits = limits

    @property
    def claim_timeout(self) -> timedelta:
        """How long a page may take at the rate limit, plus the grace before its claim counts as abandoned."""
        return timedelta(seconds=self.limits.page_size / self.limits.rate_per_s) + CLAIM_GRACE

    async def enqueue(self, job: Job, *, delay_s: int | None = None) -> None:
        await self._queue.send(PageMessage(job.integration, job.id).text(), delay_s=delay_s)

    def claimed_by_another(self, record: JobRecord, message_id: str, now: datetime) -> bool:
        """True while another page message's claim is fresh. The host re-delivering the same message
        after a crash carries the same id and may take the page over at once."""
        claim, claimed_at = record.checkpoint.claim, record.checkpoint.claimed_at
        if claim is None or claim == message_id or claimed_at is None:
            return False
        return now - claimed_at < self.claim_timeout

    async def resume_if_stalled(self, record: JobRecord, now: datetime) -> bool:
        """Re-enqueue a page when an active job stopped checkpointing (its page message was lost)."""
        last = record.updated_at or record.job.created_at
        if not record.job.state.is_active or now - last < self.claim_timeout:
            return False
        # A duplicate page message is harmless: the claim lets only one run.
        await self.enqueue(record.job)
        log_event(
            logger, "job.resumed", level=logging.WARNING, integration=record.job.integration, job_id=record.job.id
        )
        return True
