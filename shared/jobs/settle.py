"""Whether a retry worked: a retry job's resent messages counted as the engine settles them (issue 19).

A resent envelope carries its job's id (`Envelope.job_id`). `JobSettleCounter` is an engine observer:
a delivery of such a message counts `delivered` for the job, a failure recorded for it counts
`failed_again`; retries, delays, holds and parking leave it pending. Counters are sharded by writer:
each counter (one per instance) owns a shard row per job and replaces it with its running totals,
so instances never contend for a row and a write retried after a lost answer writes the same totals.
Concurrent settles of one job on one instance are coalesced: while a write is in flight the next
settles wait, and one write carries them all. A read sums the shards (`SettleCounts.totals`).

At-least-once delivery shows here: a message the engine took twice (a duplicate) settles twice. A
copy the engine dropped as a duplicate of a delivered message (its claim-check blob gone, issue 15)
counts as delivered: the receiver has it, and it must not stay pending for ever. What a job shows is
capped by what it resent (`with_settled`), so a duplicate never makes "delivered 200 of 100 resent".
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from shared.delivery.engine import Delivered, DuplicateDropped, FailureRecorded, Outcome
from shared.errors import ReboundError
from shared.jobs.models import Job, JobAction
from shared.jobs.ports import SettleCounts, SettleTally
from shared.logs import log_event
from shared.messages.models import Envelope

logger = logging.getLogger("rebound.jobs")

_Key = tuple[str, str]


class JobSettleCounter:
    def __init__(self, counts: SettleCounts, *, shard: str | None = None) -> None:
        self._counts = counts
        #: This writer's shard: new per instance (and per restart), so no two writers share one.
        self.shard = shard or uuid.uuid4().hex[:12]
        self._totals: dict[_Key, SettleTally] = {}
        self._pending: dict[_Key, SettleTally] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}

    async def observe(self, envelope: Envelope, outcome: Outcome) -> None:
        if envelope.job_id is None:
            return
        if isinstance(outcome, Delivered | DuplicateDropped):
            settled = SettleTally(delivered=1)
        elif isinstance(outcome, FailureRecorded):
            settled = SettleTally(failed_again=1)
        else:
            return  # still on its way: pending
        key = (envelope.integration, envelope.job_id)
        self._pending[key] = self._pending.get(key, SettleTally()) + settled
        await self._flush(key)

    async def flush(self) -> None:
        """Write what earlier failed writes left pending (shutdown)."""
        for key in list(self._pending):
            await self._flush(key)

    async def _flush(self, key: _Key) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            pending = self._pending.pop(key, None)
            if pending is None:
                return  # the write that just ended carried this settle too
            total = self._totals.get(key, SettleTally()) + pending
            try:
                await self._counts.save_shard(key[0], key[1], self.shard, total)
            except ReboundError as exc:
                # Kept for the job's next settle (or shutdown) to write; the message itself is settled.
                self._pending[key] = self._pending.get(key, SettleTally()) + pending
                log_event(
                    logger, "job.settle_count_deferred", level=logging.WARNING, integration=key[0], job_id=key[1],
                    error=exc.code,
                )  # fmt: skip
                return
            self._totals[key] = total


def with_settled(job: Job, tally: SettleTally | None) -> Job:
    """A retry job as the API shows it: resent (its succeeded items), then delivered, failed again and pending."""
    if job.action is not JobAction.RETRY:
        return job
    if job.target is not None:
        # Sent elsewhere: the job delivered each message itself (succeeded) or kept its failure (failed),
        # so nothing is left for the engine to settle.
        return job.model_copy(
            update={"resent": job.succeeded, "delivered": job.succeeded, "failed_again": 0, "pending": 0}
        )
    tally = tally or SettleTally()
    resent = job.succeeded
    # Settles are counted per copy, and at-least-once means a message can be settled twice (a page sent
    # again after a lost removal, two copies that both failed). The card speaks of the messages resent,
    # so its figures never add up to more than that: a delivery wins over a failure of another copy.
    delivered = min(tally.delivered, resent)
    failed_again = min(tally.failed_again, resent - delivered)
    pending = resent - delivered - failed_again
    return job.model_copy(
        update={"resent": resent, "delivered": delivered, "failed_again": failed_again, "pending": pending}
    )
