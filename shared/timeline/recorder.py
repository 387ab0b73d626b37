"""Recording timeline events, best effort, and the seams that feed it without touching the code they watch.

`TimelineRecorder` writes the events of one message in one store call. A write that fails is logged
and dropped: a timeline explains a message, it never holds one up. After a failed write the
recorder skips writes for `PAUSE_AFTER_FAILURE_S` (a storage outage would otherwise add a timeout
to every message); and `record_soon` writes without waiting, for the paths an outage is slow on
(parking).

The seams, each wrapping what it watches (as shared.alerts.signals does for alerts):
- `TimelineObserver`: the engine's `OutcomeObserver` (attempts, retries, delays, failures, deliveries);
- `RecordingParking`: a `Parking` that records `parked` (ingest, engine, jobs);
- `RecordingReinserts`: the sweep's inbound shards, recording `recovered` for each message it puts back;
- `RecordingFailures`: the sweep's failure sink, recording `failed` for each message it gives up on.
Jobs record `resent` through the recorder itself (shared/jobs/batches.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from shared.delivery.engine import Outcome
from shared.errors import ReboundError
from shared.failures.models import Failure
from shared.failures.ports import FailureSink
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.messages.wire import InvalidEnvelope, parse_envelope
from shared.recovery.models import Flow, stable_id
from shared.recovery.ports import Parking
from shared.timeline import events
from shared.timeline.models import TimelineItem
from shared.timeline.ports import TimelineStore
from shared.values import utc_now

logger = logging.getLogger("rebound.timeline")

#: After a write failed, writes are skipped this long (seconds): storage is likely down for everyone.
PAUSE_AFTER_FAILURE_S = 30.0
#: Background writes in flight at once; past this they are dropped (and logged).
MAX_PENDING = 100


class TimelineRecorder:
    def __init__(
        self,
        store: TimelineStore,
        *,
        instance: str,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.instance = instance
        self._clock = clock
        self._monotonic = monotonic
        self._paused_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def now(self) -> datetime:
        return self._clock()

    async def record(self, integration: str, message_id: str, items: Sequence[TimelineItem]) -> None:
        if not items:
            return
        if self._monotonic() < self._paused_until:
            self._dropped(integration, message_id, items, "paused after a failed write")
            return
        try:
            await self._store.append(integration, message_id, items)
        except ReboundError as exc:
            self._paused_until = self._monotonic() + PAUSE_AFTER_FAILURE_S
            self._dropped(integration, message_id, items, exc.code)

    def record_soon(self, integration: str, message_id: str, items: Sequence[TimelineItem]) -> None:
        """Record without waiting (the caller is on a path an outage makes slow)."""
        if len(self._pending) >= MAX_PENDING:
            self._dropped(integration, message_id, items, "too many writes in flight")
            return
        task = asyncio.get_running_loop().create_task(self.record(integration, message_id, items))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the background writes (tests, and shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _dropped(self, integration: str, message_id: str, items: Sequence[TimelineItem], why: str) -> None:
        log_event(
            logger, "timeline.dropped", level=logging.WARNING, integration=integration, message_id=message_id,
            events=",".join(item.event.value for item in items), reason=why,
        )  # fmt: skip

    async def resent(self, envelope: Envelope, *, job_id: str, actor: str | None) -> None:
        items = events.resent(envelope, job_id=job_id, actor=actor, now=self._clock(), instance=self.instance)
        await self.record(envelope.integration, envelope.id, items)


class TimelineObserver:
    """The engine's observer: each decision's events for messages that met trouble (none for a first-try delivery)."""

    def __init__(self, recorder: TimelineRecorder) -> None:
        self._recorder = recorder

    async def observe(self, envelope: Envelope, outcome: Outcome) -> None:
        recorder = self._recorder
        items = events.events_of(envelope, outcome, now=recorder.now(), instance=recorder.instance)
        await recorder.record(envelope.integration, envelope.id, items)


class RecordingParking:
    """A `Parking` that records `parked` for each message it parks (in the background: storage is unwell)."""

    def __init__(self, inner: Parking, recorder: TimelineRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        await self._inner.park_envelope(envelope, reason)
        self._parked(envelope, reason)

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        await self._inner.park_text(flow, text, reason, message_id=message_id)
        if flow == "inbound":
            envelope = _envelope_in(text, message_id)
            if envelope is not None:
                self._parked(envelope, reason)

    def _parked(self, envelope: Envelope, reason: str) -> None:
        recorder = self._recorder
        items = events.parked(envelope, reason, now=recorder.now(), instance=recorder.instance)
        recorder.record_soon(envelope.integration, envelope.id, items)


class RecordingReinserts(InboundShards):
    """The sweep's inbound shards: records `recovered` for every message the sweep puts back on them."""

    def __init__(self, inner: InboundShards, recorder: TimelineRecorder) -> None:
        super().__init__(inner.queues)
        self._recorder = recorder

    async def send(self, integration: str, text: str, *, delay_s: int | None = None) -> None:
        await super().send(integration, text, delay_s=delay_s)
        envelope = _envelope_in(text, "")
        if envelope is not None:
            recorder = self._recorder
            items = events.recovered(envelope, now=recorder.now(), instance=recorder.instance)
            await recorder.record(envelope.integration, envelope.id, items)


class RecordingFailures:
    """The sweep's `FailureSink`: records `failed` for each message it gives up on (past RECOVERY_MAX_REINSERTS,
    or unreadable), so a catastrophic failure's detail has a timeline too."""

    def __init__(self, inner: FailureSink, recorder: TimelineRecorder) -> None:
        self._inner = inner
        self._recorder = recorder

    async def add(self, failure: Failure) -> Failure:
        stored = await self._inner.add(failure)
        recorder = self._recorder
        await recorder.record(failure.integration, failure.message_id, [events.failed(stored, recorder.instance)])
        return stored


def _envelope_in(text: str, message_id: str) -> Envelope | None:
    try:
        return parse_envelope(text.encode(), fallback_id=message_id or stable_id(text))
    except InvalidEnvelope:
        return None
