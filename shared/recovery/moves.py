"""Moving one message of recovery material back: an envelope to `inbound`, a job page to `jobs`, or, past
RECOVERY_MAX_REINSERTS, giving it up (a `catastrophic` failure, or a failed job).

The message is deleted from its source only after it went on (delete after enqueue: a crash in
between duplicates, never loses). Text that is no envelope is recorded as an unreadable failure, so
it stays visible; a job page that cannot be parsed raises `BadParameter`, which the sweep counts as
an error and leaves in place (docs/design-notes.md, "A bad message never stops a sweep").
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import ValidationError

from shared.errors import ConcurrencyConflict
from shared.failures.models import FailureOrigin
from shared.failures.ports import FailureSink
from shared.failures.records import new_failure
from shared.jobs.ports import JobControl, PageMessage
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue, PayloadStore
from shared.messages.shards import InboundShards
from shared.messages.wire import InvalidEnvelope, pack, parse_envelope
from shared.operability.metrics import Counter, Metrics
from shared.recovery.models import ParkedMessage, stable_id
from shared.recovery.ports import MessageSource, RecoveryFlow, RecoveryMessage
from shared.values import UNKNOWN_INTEGRATION

logger = logging.getLogger("rebound.recovery")

#: What a payload of unreadable text is stored as (its own bytes, whatever they are).
UNREADABLE_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Moved:
    """What became of one message."""

    #: True when it was given up (past the reinsert limit, or unreadable), False when it went back on its flow.
    gave_up: bool
    #: True when its lease lapsed before the delete and another receiver holds it now: it stays on
    #: its source and that receiver moves it again (a duplicate, never a loss).
    lease_lost: bool = False


class MessageMoves:
    def __init__(
        self,
        *,
        flow: RecoveryFlow,
        inbound: InboundShards,
        job_pages: MessageQueue,
        payloads: PayloadStore,
        failures: FailureSink,
        jobs: JobControl,
        max_reinserts: int,
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._flow = flow
        self._inbound = inbound
        self._job_pages = job_pages
        self._payloads = payloads
        self._failures = failures
        self._jobs = jobs
        self._max_reinserts = max_reinserts
        self._metrics = metrics
        self._clock = clock

    async def move(self, source: MessageSource, message: RecoveryMessage) -> Moved:
        """Put one message back into its flow (or give it up), then take it off its source."""
        parked = self._parked_of(source, message)
        if parked.flow == "jobs":
            gave_up = await self._move_job_page(parked)
        else:
            # A message left on a retired shard failed nothing: it moves without counting a reinsert.
            gave_up = await self._move_envelope(parked, counted=source.kind != "retired")
        try:
            await source.delete(message)
        except ConcurrencyConflict:
            # Its body stays: the receiver that holds the message now needs it to move it again.
            log_event(logger, "recovery.lease_lost", level=logging.WARNING, queue=source.name)
            return Moved(gave_up, lease_lost=True)
        if parked.body_blob:
            await self._flow.drop_body(parked.body_blob)
        return Moved(gave_up)

    def _parked_of(self, source: MessageSource, message: RecoveryMessage) -> ParkedMessage:
        now = self._clock()
        if source.kind == "retired":
            reason = "left on an inbound shard beyond INBOUND_SHARDS"
            return ParkedMessage(flow="inbound", text=message.text, reason=reason, parked_at=message.enqueued_at or now)
        if source.kind == "recovery":
            try:
                return ParkedMessage.model_validate_json(message.text)
            except ValidationError:
                return ParkedMessage(
                    flow="inbound", text=message.text, reason="unreadable recovery message", parked_at=now
                )
        reason = "the host moved it to the poison queue after repeated failed attempts"
        return ParkedMessage(flow=source.flow, text=message.text, reason=reason, parked_at=message.enqueued_at or now)

    async def _move_envelope(self, parked: ParkedMessage, *, counted: bool = True) -> bool:
        try:
            envelope = parse_envelope(parked.text.encode(), fallback_id=stable_id(parked.text))
        except InvalidEnvelope as exc:
            await self._record_unreadable(parked, exc)
            return True
        if parked.body_blob:
            body = await self._flow.take_body(parked.body_blob)
            if body is not None:
                envelope = envelope.model_copy(update=_inline_body(body))
        reinserts = envelope.recovery_count + 1 if counted else envelope.recovery_count
        if reinserts > self._max_reinserts:
            await self._give_up(envelope, parked)
            return True
        slim, text = await pack(envelope.model_copy(update={"recovery_count": reinserts}), self._payloads)
        await self._inbound.send(slim.integration, text)
        self._metrics.count(Counter.REINSERTED, slim.integration)
        log_event(
            logger, "message.reinserted", integration=slim.integration, message_id=slim.id,
            correlation_id=slim.correlation_id, recovery_count=reinserts,
        )  # fmt: skip
        return False

    async def _move_job_page(self, parked: ParkedMessage) -> bool:
        page = PageMessage.parse(parked.text)
        reinserts = page.recovery_count + 1
        if reinserts > self._max_reinserts:
            await self._jobs.fail(page.integration, page.job_id, reason=f"gave up: {parked.reason}", now=self._clock())
            return True
        await self._job_pages.send(replace(page, recovery_count=reinserts).text())
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
        await self._payloads.put(ref, parked.text.encode(), content_type=UNREADABLE_CONTENT_TYPE)
        stub = Envelope(id=stable_id(parked.text), integration=error.integration or UNKNOWN_INTEGRATION, body_ref=ref)
        failure = new_failure(
            stub,
            origin=FailureOrigin.INGEST,
            reason=f"{parked.reason}: {error.reason}",
            now=self._clock(),
            body_ref=ref,
        )
        await self._failures.add(failure)


def _inline_body(body: bytes) -> dict[str, str | None]:
    return {"body_ref": None, "body_text": None, "body_b64": base64.b64encode(body).decode("ascii")}
