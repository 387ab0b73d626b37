"""Events ask for an alert evaluation without waiting for it: a small message on the `alert-events` queue.

`AlertSignals.raised(kind, integration)` returns at once: it checks (in a background task) whether any
enabled rule watches that kind and integration (rules cached for `RULES_TTL_S`), skips what it sent for
the same pair within `DEBOUNCE_S`, and enqueues `{"kind", "integration"}`. Whatever goes wrong there is
logged and dropped: the alert timer evaluates every rule anyway, so a lost signal only delays an alert.

The wrappers put signals where the events happen without touching the code that makes them: a failure
recorded (engine, pickup, recovery), a job that ended with failures, a message parked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from shared.alerts.models import AlertKind
from shared.alerts.ports import AlertRules, StoredRule
from shared.failures.models import Failure, FailureOrigin
from shared.failures.ports import FailureSink
from shared.jobs.models import Job, JobState
from shared.jobs.ports import Checkpoint, JobRecord, JobStore
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.recovery.models import Flow
from shared.recovery.ports import Parking

logger = logging.getLogger("rebound.alerts")

RULES_TTL_S = 30.0
DEBOUNCE_S = 5.0
#: Signals in flight at once; past this they are dropped (the timer catches up).
MAX_PENDING = 100


class AlertSignals:
    def __init__(
        self, rules: AlertRules, queue: MessageQueue, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._rules = rules
        self._queue = queue
        self._monotonic = monotonic
        self._cached: tuple[float, list[StoredRule]] | None = None
        self._sent: dict[tuple[AlertKind, str | None], float] = {}
        self._pending: set[asyncio.Task[None]] = set()

    def raised(self, kind: AlertKind, integration: str | None) -> None:
        if len(self._pending) >= MAX_PENDING:
            return
        task = asyncio.get_running_loop().create_task(self._signal(kind, integration))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def failure_recorded(self, failure: Failure) -> None:
        self.raised(AlertKind.FAILURE_COUNT, failure.integration)
        if failure.origin is FailureOrigin.CATASTROPHIC:
            self.raised(AlertKind.CATASTROPHIC, failure.integration)
        if failure.origin is FailureOrigin.PICKUP:
            self.raised(AlertKind.PICKUP_FAILING, failure.integration)

    async def settle(self) -> None:
        """Wait for the signals in flight (tests, and shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _signal(self, kind: AlertKind, integration: str | None) -> None:
        try:
            if not await self._watched(kind, integration):
                return
            now = self._monotonic()
            last = self._sent.get((kind, integration))
            if last is not None and now - last < DEBOUNCE_S:
                return
            self._sent[(kind, integration)] = now
            await self._queue.send(json.dumps({"kind": kind.value, "integration": integration}))
        except Exception as exc:
            log_event(logger, "alert.signal_lost", level=logging.WARNING, kind=kind.value, error=type(exc).__name__)

    async def _watched(self, kind: AlertKind, integration: str | None) -> bool:
        now = self._monotonic()
        if self._cached is None or now - self._cached[0] > RULES_TTL_S:
            self._cached = (now, await self._rules.list())
        return any(
            stored.rule.enabled
            and stored.rule.kind is kind
            and (stored.rule.integration is None or stored.rule.integration == integration)
            for stored in self._cached[1]
        )


def parse_signal(raw: bytes | str) -> tuple[AlertKind, str | None]:
    data: Any = json.loads(raw)
    integration = data.get("integration")
    return AlertKind(data["kind"]), integration if isinstance(integration, str) else None


class SignallingFailures:
    """A `FailureSink` that signals each failure it records."""

    def __init__(self, inner: FailureSink, signals: AlertSignals) -> None:
        self._inner = inner
        self._signals = signals

    async def add(self, failure: Failure) -> Failure:
        stored = await self._inner.add(failure)
        self._signals.failure_recorded(stored)
        return stored


class SignallingParking:
    """A `Parking` that signals the recovery backlog after each message it parks."""

    def __init__(self, inner: Parking, signals: AlertSignals) -> None:
        self._inner = inner
        self._signals = signals

    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        await self._inner.park_envelope(envelope, reason)
        self._signals.raised(AlertKind.RECOVERY_BACKLOG, None)

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        await self._inner.park_text(flow, text, reason, message_id=message_id)
        self._signals.raised(AlertKind.RECOVERY_BACKLOG, None)


class SignallingJobs:
    """A `JobStore` that signals when a job is saved as ended with failures."""

    def __init__(self, inner: JobStore, signals: AlertSignals) -> None:
        self._inner = inner
        self._signals = signals

    async def create(self, job: Job) -> None:
        await self._inner.create(job)

    async def get(self, integration: str, job_id: str) -> JobRecord | None:
        return await self._inner.get(integration, job_id)

    async def save(self, record: JobRecord, job: Job, checkpoint: Checkpoint, *, now: datetime) -> JobRecord:
        saved = await self._inner.save(record, job, checkpoint, now=now)
        if not job.state.is_active and (job.state is JobState.FAILED or job.failed > 0):
            self._signals.raised(AlertKind.JOB_FAILED, job.integration)
        return saved

    async def release_lock(self, integration: str, job_id: str) -> None:
        await self._inner.release_lock(integration, job_id)

    def active(self) -> AsyncIterator[JobRecord]:
        return self._inner.active()

    async def list(self, integration: str, *, limit: int = 50) -> list[Job]:
        return await self._inner.list(integration, limit=limit)
