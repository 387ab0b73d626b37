"""Process one envelope: deliver, classify, retry or persist. The one owner of that decision.

Order of decisions for a message (DESIGN.md section 4):
  1. unreadable → `ingest` failure; unknown integration or unusable endpoint → `config` failure;
     the gate (control: pause, circuit breaker, rate limit) holds or defers it, or lets it go;
  2. backoff mode and the shared error window over its threshold → a delay action (requeue
     with a visibility delay, before any delivery attempt), at most MaxDelayActions times;
  3. endpoint retry (layer 1); a redirect rule moves delivery to the fallback endpoint;
  4. success → done (no table write on this path);
     permanent or throttled → `endpoint` failure;
     transient → engine retry (layer 2): requeue a copy, or give up as an `engine` failure.
A requeued copy is sent before the invocation returns, so a crash can duplicate a message
but never lose it (at-least-once).

Observers (`OutcomeObserver`) see each envelope with the outcome decided for it, after the
decision: the message timeline and the retry jobs' settle counters are kept from there, outside
the engine (shared/timeline, shared/jobs/settle.py). An observer never raises.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.config.models import Endpoint, IntegrationConfig, RetryMode, RetryPolicy
from shared.control.models import Release
from shared.delivery.adapters.base import Delivery
from shared.delivery.endpoint_retry import EndpointResult, deliver_with_endpoint_retry
from shared.delivery.ports import Admission, ConfigSource, DeliveryGate, ErrorWindow, Gate, OpenGate, SenderSource
from shared.delivery.retry import (
    EndpointRetryPolicy,
    Verdict,
    delay_actions_exhausted,
    engine_retry_decision,
    requeue_delay_s,
    should_delay,
)
from shared.errors import ConfigError, ReboundError, StorageUnavailable
from shared.failures.models import Failure, FailureOrigin
from shared.failures.ports import FailureSink
from shared.failures.records import new_failure
from shared.logs import log_event
from shared.messages.models import AttemptRecord, Envelope
from shared.messages.ports import PayloadStore
from shared.messages.shards import InboundShards
from shared.messages.wire import InvalidEnvelope, load_body, pack, parse_envelope
from shared.operability.metrics import Counter, Metrics
from shared.operability.telemetry import context_of, tracer
from shared.recovery.ports import Parking
from shared.values import MAX_ATTEMPT_HISTORY, UNKNOWN_INTEGRATION, utc_now

logger = logging.getLogger("rebound.engine")


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    attempts: int
    status_code: int | None
    #: This run's endpoint attempts (the last one succeeded).
    history: tuple[AttemptRecord, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class RetryScheduled:
    """Engine retry: a copy with engine_attempts+1 is on `inbound`, visible after delay_s."""

    delay_s: int
    engine_attempts: int
    reason: str
    #: This run's endpoint attempts.
    history: tuple[AttemptRecord, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class DelayScheduled:
    """Delay action: the error window is over its threshold; the copy waits delay_s."""

    delay_s: int
    delay_actions: int


@dataclass(frozen=True)
class FailureRecorded:
    failure: Failure
    persisted: bool


@dataclass(frozen=True)
class Parked:
    """Our own storage failed mid-way; the message waits in the recovery flow for the sweep."""

    reason: str


@dataclass(frozen=True)
class Held:
    """The integration is paused: the message waits in its hold, not attempted, and nothing is counted."""


@dataclass(frozen=True)
class Deferred:
    """Over the rate limit: the same message is back on `inbound`, visible after delay_s (not an attempt)."""

    delay_s: int


Outcome = Delivered | RetryScheduled | DelayScheduled | FailureRecorded | Parked | Held | Deferred


class OutcomeObserver(Protocol):
    async def observe(self, envelope: Envelope, outcome: Outcome) -> None:
        """See a decided message; never raises (what it keeps is best effort, delivery goes on)."""
        ...


class DeliveryEngine:
    def __init__(
        self,
        *,
        configs: ConfigSource,
        senders: SenderSource,
        inbound: InboundShards,
        payloads: PayloadStore,
        failures: FailureSink,
        error_window: ErrorWindow,
        endpoint_policy: EndpointRetryPolicy,
        metrics: Metrics,
        parker: Parking | None = None,
        gate: DeliveryGate | None = None,
        observers: Sequence[OutcomeObserver] = (),
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._configs = configs
        self._senders = senders
        self._inbound = inbound
        self._payloads = payloads
        self._failures = failures
        self._error_window = error_window
        self._endpoint_policy = endpoint_policy
        self._metrics = metrics
        self._parker = parker
        self._gate: DeliveryGate = gate or OpenGate()
        self._observers = tuple(observers)
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()

    # --- entry points ------------------------------------------------------------------------

    async def process_message(self, raw: bytes, *, queue_message_id: str) -> Outcome:
        """Process one `inbound` queue message as the host delivered it.

        When our own storage fails mid-way (config, payload, error window, failure record or
        requeue unreachable), the message as received is parked on the recovery flow and the
        invocation succeeds; if parking fails too, the error propagates and the host's
        retries and poison queue take over.
        """
        try:
            try:
                envelope = parse_envelope(raw, fallback_id=queue_message_id)
            except InvalidEnvelope as exc:
                return await self._record_unreadable(raw, exc, queue_message_id)
            return await self.process(envelope)
        except StorageUnavailable as exc:
            if self._parker is None:
                raise
            await self._parker.park_text(
                "inbound", raw.decode("utf-8", errors="replace"), f"engine: {exc.message}", message_id=queue_message_id
            )
            return Parked(reason=exc.message)

    async def process(self, envelope: Envelope, *, release: Release | None = None) -> Outcome:
        """Decide one message; `release` when the hold's drain hands it back (control)."""
        attributes: dict[str, str | int] = {
            "rebound.integration": envelope.integration,
            "rebound.message_id": envelope.id,
            "rebound.correlation_id": envelope.correlation_id or "",
            "rebound.engine_attempt": envelope.engine_attempts + 1,
        }
        with tracer.start_as_current_span(
            "rebound.process", context=context_of(envelope.traceparent), attributes=attributes
        ) as span:
            if envelope.engine_attempts == 0 and envelope.delay_actions == 0 and release is None:
                self._metrics.count(Counter.RECEIVED, envelope.integration)
            outcome = await self._process(envelope, release)
            span.set_attribute("rebound.outcome", type(outcome).__name__)
            for observer in self._observers:
                await observer.observe(envelope, outcome)
            return outcome

    async def _process(self, envelope: Envelope, release: Release | None) -> Outcome:
        config = await self._configs.get(envelope.integration)
        if config is None:
            return await self._fail(
                envelope, FailureOrigin.CONFIG, f"integration {envelope.integration!r} does not exist", config=None
            )
        admission = await self._gate.admit(envelope, config, release)
        if admission.gate is not Gate.GO:
            return await self._not_now(envelope, admission)
        policy = config.retry.effective()
        if policy.mode is RetryMode.BACKOFF:
            held = await self._delay_if_error_window_full(envelope, config, policy)
            if held is not None:
                return held

        body = await load_body(envelope, self._payloads)
        if body is None:
            return await self._fail(
                envelope,
                FailureOrigin.ENGINE,
                f"payload blob {envelope.body_ref!r} is missing (already delivered by a duplicate, or purged)",
                config=config,
            )
        delivery = Delivery(
            message_id=envelope.id,
            integration=envelope.integration,
            body=body,
            content_type=envelope.content_type,
            correlation_id=envelope.correlation_id,
            headers=envelope.headers,
        )
        engine_attempt = envelope.engine_attempts + 1
        try:
            result = await self._deliver(config.endpoint, delivery, config, engine_attempt, admission)
            if result.verdict is Verdict.REDIRECT and config.fallback_endpoint is not None:
                redirected = await self._deliver(config.fallback_endpoint, delivery, config, engine_attempt, admission)
                redirected.attempts[:0] = result.attempts
                result = redirected
        except ConfigError as exc:
            return await self._fail(envelope, FailureOrigin.CONFIG, exc.message, config=config)

        attempts = envelope.attempts + len(result.attempts)
        history = (envelope.history + result.attempts)[-MAX_ATTEMPT_HISTORY:]
        self._log_decision(envelope, engine_attempt, result)
        self._metrics.count(Counter.ENDPOINT_RETRIES, envelope.integration, len(result.attempts) - 1)
        hold_instead = await self._gate.after_attempt(envelope, config, result.verdict, release)
        if result.verdict is Verdict.SUCCESS:
            self._metrics.count(Counter.DELIVERED, envelope.integration)
            await self._discard_claim_check(envelope)
            return Delivered(attempts=attempts, status_code=result.status_code, history=tuple(result.attempts))

        if policy.mode is RetryMode.BACKOFF:
            await self._error_window.record(
                envelope.integration, interval_minutes=policy.backoff.failure_count_interval_minutes, now=self._clock()
            )
        if result.verdict is not Verdict.TRANSIENT:
            # Permanent, throttled past the window, or a redirect without anywhere to go.
            return await self._fail(
                envelope, FailureOrigin.ENDPOINT, result.reason, config=config,
                status_code=result.status_code, attempts=attempts, history=history,
            )  # fmt: skip
        return await self._engine_retry(
            envelope, config, policy, result, engine_attempt, attempts, history, hold_instead=hold_instead
        )

    # --- steps -------------------------------------------------------------------------------

    async def _deliver(
        self,
        endpoint: Endpoint,
        delivery: Delivery,
        config: IntegrationConfig,
        engine_attempt: int,
        admission: Admission,
    ) -> EndpointResult:
        sender = admission.pace(self._senders.sender_for(endpoint))
        return await deliver_with_endpoint_retry(
            sender,
            delivery,
            rules=config.error_rules,
            policy=self._endpoint_policy,
            engine_attempt=engine_attempt,
            rng=self._rng,
            sleep=self._sleep,
            now=self._clock,
            monotonic=self._monotonic,
        )

    async def _delay_if_error_window_full(
        self, envelope: Envelope, config: IntegrationConfig, policy: RetryPolicy
    ) -> Outcome | None:
        backoff = policy.backoff
        errors = await self._error_window.count(
            envelope.integration, interval_minutes=backoff.failure_count_interval_minutes, now=self._clock()
        )
        if not should_delay(backoff, errors):
            return None
        if delay_actions_exhausted(backoff, envelope.delay_actions):
            reason = (
                f"error rate above {backoff.max_errors_per_interval} per "
                f"{backoff.failure_count_interval_minutes} min; gave up after {envelope.delay_actions} delay actions"
            )
            return await self._fail(envelope, FailureOrigin.ENGINE, reason, config=config)
        delay_s = requeue_delay_s(backoff, rng=self._rng)
        delayed = envelope.model_copy(update={"delay_actions": envelope.delay_actions + 1})
        await self._requeue(delayed, delay_s)
        self._metrics.count(Counter.DELAY_ACTIONS, envelope.integration)
        log_event(
            logger, "delivery.delayed", integration=envelope.integration, message_id=envelope.id,
            correlation_id=envelope.correlation_id, delay_actions=delayed.delay_actions, delay_s=delay_s,
            errors_in_interval=errors,
        )  # fmt: skip
        return DelayScheduled(delay_s=delay_s, delay_actions=delayed.delay_actions)

    async def _engine_retry(
        self,
        envelope: Envelope,
        config: IntegrationConfig,
        policy: RetryPolicy,
        result: EndpointResult,
        engine_attempt: int,
        attempts: int,
        history: list[AttemptRecord],
        *,
        hold_instead: bool,
    ) -> Outcome:
        if hold_instead:
            # Paused since the attempt began (the breaker may have just opened on it): it waits, not failing.
            counted = {"engine_attempts": engine_attempt, "attempts": attempts, "history": history}
            await self._gate.hold(envelope.model_copy(update=counted))
            return Held()
        decision = engine_retry_decision(policy, engine_attempt, rng=self._rng, retry_after_s=result.retry_after_s)
        if not decision.retry:
            return await self._fail(
                envelope, FailureOrigin.ENGINE, f"{result.reason} ({decision.reason})", config=config,
                status_code=result.status_code, attempts=attempts, history=history,
            )  # fmt: skip
        retried = envelope.model_copy(
            update={"engine_attempts": engine_attempt, "attempts": attempts, "history": history}
        )
        await self._requeue(retried, decision.delay_s)
        self._metrics.count(Counter.ENGINE_REQUEUES, envelope.integration)
        return RetryScheduled(
            delay_s=decision.delay_s, engine_attempts=engine_attempt, reason=result.reason,
            history=tuple(result.attempts),
        )  # fmt: skip

    async def _not_now(self, envelope: Envelope, admission: Admission) -> Outcome:
        if admission.gate is Gate.HOLD:
            await self._gate.hold(envelope)
            return Held()
        await self._requeue(envelope, admission.delay_s)
        return Deferred(delay_s=admission.delay_s)

    async def _requeue(self, envelope: Envelope, delay_s: int) -> None:
        _, text = await pack(envelope, self._payloads)
        await self._inbound.send(envelope.integration, text, delay_s=delay_s or None)

    async def _discard_claim_check(self, envelope: Envelope) -> None:
        if envelope.body_ref is None:
            return
        try:
            await self._payloads.delete(envelope.body_ref)
        except ReboundError as exc:
            # Delivered is what matters; the retention purge removes what is left behind.
            log_event(logger, "payload.cleanup_failed", level=logging.WARNING, message_id=envelope.id, error=exc.code)

    async def _fail(
        self,
        envelope: Envelope,
        origin: FailureOrigin,
        reason: str,
        *,
        config: IntegrationConfig | None,
        status_code: int | None = None,
        attempts: int | None = None,
        history: list[AttemptRecord] | None = None,
        integration: str | None = None,
    ) -> FailureRecorded:
        now = self._clock()
        failure = new_failure(
            envelope,
            origin=origin,
            reason=reason,
            now=now,
            body_ref=envelope.body_ref or envelope.id,
            status_code=status_code,
            attempts=envelope.attempts if attempts is None else attempts,
            history=envelope.history if history is None else history,
            integration=integration,
        )
        persist = config is None or config.persist_failures
        self._metrics.count(Counter.failure(origin.value), failure.integration)
        if persist:
            await self._store_content(envelope)
            await self._failures.add(failure)
        log_event(
            logger, "delivery.failed", level=logging.WARNING, integration=failure.integration,
            message_id=envelope.id, correlation_id=envelope.correlation_id, origin=origin.value,
            status_code=status_code, attempts=failure.attempts, group=failure.group, persisted=persist,
        )  # fmt: skip
        return FailureRecorded(failure=failure, persisted=persist)

    async def _store_content(self, envelope: Envelope) -> None:
        """The failure's content goes to the payload blob, so it outlives the queue message."""
        body = envelope.inline_body()
        if body is not None:
            await self._payloads.put(envelope.id, body, content_type=envelope.content_type)

    async def _record_unreadable(self, raw: bytes, error: InvalidEnvelope, queue_message_id: str) -> FailureRecorded:
        stub = Envelope(
            id=queue_message_id,
            integration=error.integration or UNKNOWN_INTEGRATION,
            content_type="application/octet-stream",
            body_ref=f"unreadable-{queue_message_id}",
        )
        await self._payloads.put(stub.body_ref or "", raw, content_type=stub.content_type)
        return await self._fail(stub, FailureOrigin.INGEST, error.reason, config=None)

    def _log_decision(self, envelope: Envelope, engine_attempt: int, result: EndpointResult) -> None:
        log_event(
            logger, "delivery.attempted", integration=envelope.integration, message_id=envelope.id,
            correlation_id=envelope.correlation_id, engine_attempt=engine_attempt,
            endpoint_attempts=len(result.attempts), verdict=result.verdict.value, status_code=result.status_code,
        )  # fmt: skip
