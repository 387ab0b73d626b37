"""Catastrophic recovery (DESIGN.md section 6): park what cannot go on, sweep it back, give up to manual.

Park: ingest that cannot enqueue, an engine that cannot requeue or record a failure, and a
job that cannot re-enqueue a message put the message on the recovery flow, a separate
failure domain (RecoveryStorage or Service Bus), as a scheduled message.

Sweep: a timer (and POST /recovery/replay) first checks that the main flow is healthy
(queue writable, tables answering); if so it moves parked messages and the host's poison
messages back into their flow with recovery_count+1, at most RECOVERY_BATCH_SIZE per run.
Past RECOVERY_MAX_REINSERTS a message becomes a `catastrophic` failure for manual retry.
Each message is deleted only after it was re-enqueued (or recorded), and received under a
lease, so overlapping sweeps never move the same message twice and a crash duplicates
rather than loses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.errors import ReboundError, StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.failures.ports import FailureSink
from shared.failures.records import new_failure
from shared.jobs.ports import JobControl
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue, PayloadStore
from shared.messages.wire import InvalidEnvelope, pack, parse_envelope
from shared.operability.metrics import Counter, Metrics
from shared.recovery.models import Flow, ParkedMessage, RecoveryStatus, SweepResult, stable_id
from shared.recovery.ports import MainFlowProbe, MessageSource, RecoveryFlow, RecoveryMessage, SweepState
from shared.values import UNKNOWN_INTEGRATION, utc_now

logger = logging.getLogger("rebound.recovery")

#: How long a sweep holds a message it is moving (others cannot see it meanwhile).
SWEEP_LEASE_S = 60


class Parker:
    def __init__(
        self, flow: RecoveryFlow, *, delay_s: int, metrics: Metrics, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._flow = flow
        self._delay_s = delay_s
        self._metrics = metrics
        self._clock = clock

    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        """Park a message for `inbound`. Raises StorageUnavailable when the recovery flow fails too."""
        parked = ParkedMessage(
            flow="inbound", text=envelope.model_dump_json(exclude_none=True), reason=reason, parked_at=self._clock()
        )
        text = parked.model_dump_json()
        if len(text.encode()) > self._flow.max_text_bytes:
            body = envelope.inline_body() or b""
            if not await self._flow.put_body(envelope.id, body, envelope.content_type):
                raise StorageUnavailable(f"message {envelope.id} is too large for the recovery flow")
            slim = envelope.model_copy(update={"body_text": None, "body_b64": None})
            parked = parked.model_copy(
                update={"text": slim.model_dump_json(exclude_none=True), "body_blob": envelope.id}
            )
            text = parked.model_dump_json()
        await self._flow.send(text, delay_s=self._delay_s)
        self._metrics.count(Counter.PARKED, envelope.integration)
        log_event(
            logger, "message.parked", level=logging.WARNING, flow="inbound", integration=envelope.integration,
            message_id=envelope.id, correlation_id=envelope.correlation_id, reason=reason,
        )  # fmt: skip

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        """Park a raw queue message (as the engine or the job runner received it)."""
        if flow == "inbound":
            try:
                envelope = parse_envelope(text.encode(), fallback_id=message_id or stable_id(text))
            except InvalidEnvelope:
                envelope = None
            if envelope is not None:
                await self.park_envelope(envelope, reason)
                return
        parked = ParkedMessage(flow=flow, text=text, reason=reason, parked_at=self._clock())
        await self._flow.send(parked.model_dump_json(), delay_s=self._delay_s)
        self._metrics.count(Counter.PARKED, UNKNOWN_INTEGRATION if flow == "inbound" else "_jobs")
        log_event(logger, "message.parked", level=logging.WARNING, flow=flow, reason=reason)


class RecoverySweeper:
    def __init__(
        self,
        *,
        flow: RecoveryFlow,
        poison: Sequence[MessageSource],
        inbound: MessageQueue,
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
        self._inbound = inbound
        self._job_pages = job_pages
        self._payloads = payloads
        self._failures = failures
        self._jobs = jobs
        self._state = state
        self._main_flow = main_flow
        self._max_reinserts = max_reinserts
        self._batch_size = batch_size
        self._max_inbound_depth = max_inbound_depth
        self._metrics = metrics
        self._clock = clock

    def sources(self) -> list[MessageSource]:
        return [self._flow, *self._flow.extra_sources(), *self._poison]

    async def status(self) -> RecoveryStatus:
        queues = []
        for source in self.sources():
            try:
                queues.append(await source.status())
            except StorageUnavailable:
                log_event(logger, "recovery.status_unavailable", level=logging.WARNING, queue=source.name)
        return RecoveryStatus(backend=self._flow.backend, queues=queues, last_sweep=await self._last_sweep())

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
        for source in self.sources():
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
            if await self._inbound.depth() > self._max_inbound_depth:
                tally.reason = f"paused: inbound is deeper than {self._max_inbound_depth} (backpressure)"
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
                    gave_up = await self._move(source, message)
                except ReboundError as exc:
                    # Left in place: its lease lapses and the next sweep tries again.
                    tally.errors += 1
                    log_event(logger, "recovery.move_failed", level=logging.WARNING, queue=source.name, error=exc.code)
                    continue
                tally.count(source.name, gave_up)
        return budget

    async def _move(self, source: MessageSource, message: RecoveryMessage) -> bool:
        """Put one message back into its flow (or give it up); True when it was given up."""
        parked = self._parked_of(source, message)
        if parked.flow == "jobs":
            gave_up = await self._move_job_page(parked)
        else:
            gave_up = await self._move_envelope(parked)
        await source.delete(message)
        if parked.body_blob:
            await self._flow.drop_body(parked.body_blob)
        return gave_up

    def _parked_of(self, source: MessageSource, message: RecoveryMessage) -> ParkedMessage:
        now = self._clock()
        if source.kind == "recovery":
            try:
                return ParkedMessage.model_validate_json(message.text)
            except ValidationError:
                return ParkedMessage(
                    flow="inbound", text=message.text, reason="unreadable recovery message", parked_at=now
                )
        reason = "the host moved it to the poison queue after repeated failed attempts"
        return ParkedMessage(flow=source.flow, text=message.text, reason=reason, parked_at=message.enqueued_at or now)

    async def _move_envelope(self, parked: ParkedMessage) -> bool:
        try:
            envelope = parse_envelope(parked.text.encode(), fallback_id=stable_id(parked.text))
        except InvalidEnvelope as exc:
            await self._record_unreadable(parked, exc)
            return True
        if parked.body_blob:
            body = await self._flow.take_body(parked.body_blob)
            if body is not None:
                envelope = envelope.model_copy(update=_inline_body(body))
        reinserts = envelope.recovery_count + 1
        if reinserts > self._max_reinserts:
            await self._give_up(envelope, parked)
            return True
        slim, text = await pack(envelope.model_copy(update={"recovery_count": reinserts}), self._payloads)
        await self._inbound.send(text)
        self._metrics.count(Counter.REINSERTED, slim.integration)
        log_event(
            logger, "message.reinserted", integration=slim.integration, message_id=slim.id,
            correlation_id=slim.correlation_id, recovery_count=reinserts,
        )  # fmt: skip
        return False

    async def _move_job_page(self, parked: ParkedMessage) -> bool:
        page: dict[str, Any] = json.loads(parked.text)
        reinserts = int(page.get("recovery_count", 0)) + 1
        if reinserts > self._max_reinserts:
            await self._jobs.fail(
                str(page["integration"]), str(page["job_id"]), reason=f"gave up: {parked.reason}", now=self._clock()
            )
            return True
        await self._job_pages.send(json.dumps({**page, "recovery_count": reinserts}))
        return False

    async def _give_up(self, envelope: Envelope, parked: ParkedMessage) -> None:
        body = envelope.inline_body()
        if body is not None:
            await self._payloads.put(envelope.id, body, content_type=envelope.content_type)
        failure = new_failure(
            envelope,
            origin=FailureOrigin.CATASTROPHIC,
            reason=f"{parked.reason}; gave up after {self._max_reinserts} reinserts",
            now=self._clock(),
            body_ref=envelope.body_ref or envelope.id,
        )
        await self._failures.add(failure)
        self._metrics.count(Counter.FAILURES_CATASTROPHIC, envelope.integration)
        log_event(
            logger, "message.gave_up", level=logging.WARNING, integration=envelope.integration,
            message_id=envelope.id, correlation_id=envelope.correlation_id, recovery_count=envelope.recovery_count,
        )  # fmt: skip

    async def _record_unreadable(self, parked: ParkedMessage, error: InvalidEnvelope) -> None:
        ref = f"unreadable-{stable_id(parked.text)}"
        await self._payloads.put(ref, parked.text.encode(), content_type="application/octet-stream")
        stub = Envelope(id=stable_id(parked.text), integration=error.integration or UNKNOWN_INTEGRATION, body_ref=ref)
        failure = new_failure(
            stub,
            origin=FailureOrigin.INGEST,
            reason=f"{parked.reason}: {error.reason}",
            now=self._clock(),
            body_ref=ref,
        )
        await self._failures.add(failure)

    async def _remember(self, result: SweepResult) -> None:
        try:
            await self._state.remember(result)
        except StorageUnavailable:
            log_event(logger, "recovery.state_unsaved", level=logging.WARNING)

    async def _last_sweep(self) -> SweepResult | None:
        try:
            return await self._state.last()
        except StorageUnavailable:
            return None


class _Tally:
    def __init__(self) -> None:
        self.reinserted = 0
        self.gave_up = 0
        self.errors = 0
        self.by_queue: dict[str, int] = {}
        self.reason: str | None = None

    def count(self, queue: str, gave_up: bool) -> None:
        if gave_up:
            self.gave_up += 1
        else:
            self.reinserted += 1
        self.by_queue[queue] = self.by_queue.get(queue, 0) + 1


def _inline_body(body: bytes) -> dict[str, str | None]:
    import base64

    return {"body_ref": None, "body_text": None, "body_b64": base64.b64encode(body).decode("ascii")}
