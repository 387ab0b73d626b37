"""The recovery sweep (DESIGN.md section 6): move parked and poisoned messages back once the main flow is healthy.

Parking is parker.py; moving one message (and giving up on it) is moves.py.

Sweep: a timer (and POST /recovery/replay) first checks that the main flow is healthy
(queue writable, tables answering); if so it moves parked messages and the host's poison
messages back into their flow with recovery_count+1, at most RECOVERY_BATCH_SIZE per run.
Past RECOVERY_MAX_REINSERTS a message becomes a `catastrophic` failure for manual retry.
Each message is deleted only after it was re-enqueued (or recorded), and received under a
lease, so overlapping sweeps never move the same message twice and a crash duplicates
rather than loses. One message that cannot be moved is counted as an error and left in place;
it never ends the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Literal

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.errors import ReboundError, StorageUnavailable
from shared.failures.ports import FailureSink
from shared.jobs.ports import JobControl
from shared.logs import log_event
from shared.messages.ports import MessageQueue, PayloadStore
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from shared.recovery.models import RecoveryQueueStatus, RecoveryStatus, SweepResult
from shared.recovery.moves import MessageMoves, Moved
from shared.recovery.ports import MainFlowProbe, MessageSource, RecoveryFlow, SweepState
from shared.values import utc_now

logger = logging.getLogger("rebound.recovery")

#: How long a sweep holds a message it is moving (others cannot see it meanwhile).
SWEEP_LEASE_S = 60


class RecoverySweeper:
    def __init__(
        self,
        *,
        flow: RecoveryFlow,
        poison: Sequence[MessageSource],
        inbound: InboundShards,
        retired: Callable[[], Awaitable[Sequence[MessageSource]]] | None = None,
        job_pages: MessageQueue,
        payloads: PayloadStore,
        failures: FailureSink,
        jobs: JobControl,
        state: SweepState,
        main_flow: MainFlowProbe,
        max_reinserts: int,
        batch_size: int,
        max_inbound_depth: int,
        metrics: Metrics,
        audit: AuditTrail,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._audit = audit
        self._flow = flow
        self._poison = poison
        self._retired = retired
        self._inbound = inbound
        self._state = state
        self._main_flow = main_flow
        self._batch_size = batch_size
        self._max_inbound_depth = max_inbound_depth
        self._clock = clock
        self._jobs = jobs
        self._moves = MessageMoves(
            flow=flow,
            inbound=inbound,
            job_pages=job_pages,
            payloads=payloads,
            failures=failures,
            jobs=jobs,
            max_reinserts=max_reinserts,
            metrics=metrics,
            clock=clock,
        )

    def sources(self) -> list[MessageSource]:
        return [self._flow, *self._flow.extra_sources(), *self._poison]

    async def _retired_sources(self) -> list[MessageSource]:
        """The retired inbound shards that still exist, and their poison queues (INBOUND_SHARDS was lowered)."""
        if self._retired is None:
            return []
        try:
            return list(await self._retired())
        except StorageUnavailable:
            log_event(logger, "recovery.retired_shards_unlisted", level=logging.WARNING)
            return []

    async def _all_sources(self) -> list[MessageSource]:
        return [*self.sources(), *await self._retired_sources()]

    async def status(self) -> RecoveryStatus:
        """Every queue and the last sweep, asked at once: during an outage each waits its storage timeout,
        and one after the other they kept the portal waiting for their sum. What did not answer is `unknown`."""
        retired = await self._retired_sources()
        sources = [*self.sources(), *retired]
        answers = await asyncio.gather(
            *(source.status() for source in sources), self._state.last(), return_exceptions=True
        )
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, StorageUnavailable):
                raise answer
        queues = [
            answer
            for source, answer in zip(sources, answers, strict=False)
            # an empty queue of a retired shard is nothing to report
            if isinstance(answer, RecoveryQueueStatus) and (answer.count or source not in retired)
        ]
        unknown = [
            source.name
            for source, answer in zip(sources, answers, strict=False)
            if isinstance(answer, StorageUnavailable)
        ]
        for name in unknown:
            log_event(logger, "recovery.status_unavailable", level=logging.WARNING, queue=name)
        last_sweep = answers[-1]
        if isinstance(last_sweep, StorageUnavailable):
            unknown.append("last_sweep")
        return RecoveryStatus(
            backend=self._flow.backend,
            queues=queues,
            last_sweep=last_sweep if isinstance(last_sweep, SweepResult) else None,
            unknown=unknown,
        )

    async def replay(self, *, actor: Actor) -> SweepResult:
        """A sweep run by hand (`POST /recovery/replay`), recorded in the audit trail with what it moved."""
        result = await self.sweep(trigger="manual")
        details = result.model_dump(mode="json", include={"healthy", "reinserted", "gave_up", "errors", "by_queue"})
        details["jobs_resumed"], details["reason"] = result.jobs_resumed, result.reason
        await self._audit.record(actor, AuditAction.RECOVERY_REPLAY, details=details)
        return result

    async def sweep(self, *, trigger: Literal["timer", "manual"]) -> SweepResult:
        started = self._clock()
        unhealthy = await self._health_problem()
        if unhealthy is not None:
            result = SweepResult(
                started_at=started, finished_at=self._clock(), trigger=trigger, healthy=False, reason=unhealthy
            )
            log_event(logger, "recovery.sweep_skipped", level=logging.WARNING, reason=unhealthy)
            await self._remember(result)
            return result
        tally = _Tally()
        budget = self._batch_size
        for source in await self._all_sources():
            budget = await self._drain(source, budget, tally)
            if budget <= 0 or tally.reason is not None:
                break
        resumed = await self._jobs.resume_stalled(now=self._clock())
        result = SweepResult(
            started_at=started,
            finished_at=self._clock(),
            trigger=trigger,
            healthy=True,
            reinserted=tally.reinserted,
            gave_up=tally.gave_up,
            errors=tally.errors,
            by_queue=tally.by_queue,
            jobs_resumed=resumed,
            reason=tally.reason,
        )
        log_event(
            logger, "recovery.swept", trigger=trigger, reinserted=result.reinserted, gave_up=result.gave_up,
            errors=result.errors, jobs_resumed=resumed, reason=result.reason,
        )  # fmt: skip
        await self._remember(result)
        return result

    # --- steps -------------------------------------------------------------------------------

    async def _health_problem(self) -> str | None:
        """None when the main flow can take messages back; else why not."""
        try:
            await self._main_flow.check()
        except ReboundError as exc:
            return f"main storage unhealthy: {exc.message}"
        return None

    async def _drain(self, source: MessageSource, budget: int, tally: _Tally) -> int:
        while budget > 0:
            # A batch holds many integrations' messages: pause while any shard is over the limit.
            if await self._inbound.deepest() > self._max_inbound_depth:
                tally.reason = f"paused: an inbound shard is deeper than {self._max_inbound_depth} (backpressure)"
                return budget
            try:
                batch = await source.receive(min(32, budget), lease_s=SWEEP_LEASE_S)
            except StorageUnavailable:
                tally.errors += 1
                return budget
            if not batch:
                return budget
            for message in batch:
                budget -= 1
                try:
                    moved = await self._moves.move(source, message)
                except ReboundError as exc:
                    # Left in place: its lease lapses and the next sweep tries again.
                    tally.errors += 1
                    log_event(logger, "recovery.move_failed", level=logging.WARNING, queue=source.name, error=exc.code)
                    continue
                tally.count(source.name, moved)
        return budget

    async def _remember(self, result: SweepResult) -> None:
        try:
            await self._state.remember(result)
        except StorageUnavailable:
            log_event(logger, "recovery.state_unsaved", level=logging.WARNING)


class _Tally:
    def __init__(self) -> None:
        self.reinserted = 0
        self.gave_up = 0
        self.errors = 0
        self.by_queue: dict[str, int] = {}
        self.reason: str | None = None

    def count(self, queue: str, moved: Moved) -> None:
        if moved.lease_lost:
            # Still on its queue, now another receiver's: it was not finished here.
            self.errors += 1
            return
        if moved.gave_up:
            self.gave_up += 1
        else:
            self.reinserted += 1
        self.by_queue[queue] = self.by_queue.get(queue, 0) + 1
