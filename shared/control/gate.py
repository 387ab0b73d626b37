"""The engine's one collaborator for control: hold a paused integration's messages, pace attempts, feed the breaker.

The engine asks `admit` before it attempts a message and tells `after_attempt` what endpoint retry came
to. Control state is read through a short cache (`refresh_s`): a pause reaches every instance within
that time, which is why POST /pause answers only after it (shared/control/service.py). Whatever this
instance writes (the breaker opening, a probe's outcome) updates the cache at once; the drain reads
fresh state before each message (`refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from datetime import datetime

from shared.config.models import IntegrationConfig
from shared.control.decisions import arrival_position, closed, must_hold, reopened, tripped
from shared.control.limiter import RateLimiter
from shared.control.models import ControlState, RateLimitPolicy, Release
from shared.control.ports import ControlStates, HeldMessages
from shared.control.state import change_state, read_state
from shared.delivery.adapters.base import Delivery, Response, Sender
from shared.delivery.ports import ADMITTED, Admission, ErrorWindow, Gate
from shared.delivery.retry import Verdict
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import PayloadStore
from shared.messages.wire import pack
from shared.operability.metrics import Counter, Metrics
from shared.values import utc_now

logger = logging.getLogger("rebound.control")

#: An invocation waits this long at most for its rate-limit token; longer, and the message is deferred.
MAX_RATE_WAIT_S = 5.0
_FAILED = frozenset({Verdict.TRANSIENT, Verdict.THROTTLED})


def window_of(now: datetime, minutes: int) -> int:
    """The fixed error-window interval containing `now`, as its start in epoch seconds."""
    length = minutes * 60
    epoch = int(now.timestamp())
    return epoch - epoch % length


class PacedSender:
    """A sender whose every attempt waits its turn under the rate limit (the admission paid for the first)."""

    def __init__(self, inner: Sender, pacer: Pacer) -> None:
        self._inner = inner
        self._pacer = pacer
        self.target = inner.target

    async def send(self, delivery: Delivery) -> Response:
        await self._pacer.before_attempt()
        return await self._inner.send(delivery)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Pacer:
    """One message's turns under the rate limit: the admission took the first."""

    def __init__(self, limiter: RateLimiter, integration: str, policy: RateLimitPolicy) -> None:
        self._limiter = limiter
        self._integration = integration
        self._policy = policy
        self._prepaid = True

    async def before_attempt(self) -> None:
        if self._prepaid:
            self._prepaid = False
            return
        await self._limiter.wait_turn(self._integration, self._policy)

    def wrap(self, sender: Sender) -> Sender:
        return PacedSender(sender, self)


class DeliveryControl:
    """Implements `shared.delivery.ports.DeliveryGate`."""

    def __init__(
        self,
        *,
        states: ControlStates,
        held: HeldMessages,
        payloads: PayloadStore,
        circuit_window: ErrorWindow,
        limiter: RateLimiter,
        metrics: Metrics,
        refresh_s: float,
        on_circuit_open: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._states = states
        self._held = held
        self._payloads = payloads
        self._window = circuit_window
        self._limiter = limiter
        self._metrics = metrics
        self._refresh_s = refresh_s
        self._on_circuit_open = on_circuit_open
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng or random.Random()
        self._cache: dict[str, tuple[float, ControlState]] = {}
        self._reads: dict[str, asyncio.Future[ControlState]] = {}

    # --- state ---------------------------------------------------------------------------------

    async def state(self, integration: str) -> ControlState:
        """The integration's state, at most `refresh_s` old (one read per integration at a time)."""
        cached = self._cache.get(integration)
        if cached is not None and self._monotonic() - cached[0] < self._refresh_s:
            return cached[1]
        return await self.refresh(integration)

    async def refresh(self, integration: str) -> ControlState:
        """Read the state now and remember it.

        Remembered as of when the read began: a read that overlapped a write cannot outlive the write by
        more than `refresh_s`, which is what lets a pause wait that long and know every instance honours it.
        """
        pending = self._reads.get(integration)
        if pending is not None:
            return await asyncio.shield(pending)
        started = self._monotonic()
        future: asyncio.Future[ControlState] = asyncio.get_running_loop().create_future()
        self._reads[integration] = future
        try:
            state = await read_state(self._states, integration)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        finally:
            self._reads.pop(integration, None)
        future.set_result(state)
        self._cache[integration] = (started, state)
        return state

    def remember(self, integration: str, state: ControlState) -> None:
        self._cache[integration] = (self._monotonic(), state)

    # --- DeliveryGate ------------------------------------------------------------------------------

    async def admit(self, envelope: Envelope, config: IntegrationConfig, release: Release | None) -> Admission:
        state = await self.state(envelope.integration)
        if must_hold(state, release):
            return Admission(Gate.HOLD)
        policy = config.rate_limit
        if policy is None:
            return ADMITTED
        waited = await self._limiter.acquire(envelope.integration, policy, max_wait_s=MAX_RATE_WAIT_S)
        if waited is None:
            delay_s = math.ceil(MAX_RATE_WAIT_S + self._rng.uniform(0, max(1.0, 30 / policy.per_second)))
            self._metrics.count(Counter.RATE_DEFERRED, envelope.integration)
            return Admission(Gate.DEFER, delay_s=delay_s)
        pacer = Pacer(self._limiter, envelope.integration, policy)
        return Admission(Gate.GO, pace=pacer.wrap)

    async def hold(self, envelope: Envelope) -> None:
        _, text = await pack(envelope, self._payloads)
        await self._held.hold(envelope.integration, arrival_position(envelope), text)
        self._metrics.count(Counter.HELD, envelope.integration)
        log_event(
            logger, "delivery.held", integration=envelope.integration, message_id=envelope.id,
            correlation_id=envelope.correlation_id,
        )  # fmt: skip

    async def after_attempt(
        self, envelope: Envelope, config: IntegrationConfig, verdict: Verdict, release: Release | None
    ) -> bool:
        integration = envelope.integration
        policy = config.circuit_breaker
        breaker = policy is not None and policy.enabled
        now = self._clock()
        if verdict in _FAILED:
            if breaker:
                assert policy is not None
                await self._window.record(integration, interval_minutes=policy.window_minutes, now=now)
                if release is Release.PROBE:
                    state, _ = await change_state(self._states, integration, lambda s: reopened(s, now=now), now=now)
                    self.remember(integration, state)
                    log_event(logger, "circuit.reopened", level=logging.WARNING, integration=integration)
                else:
                    count = await self._window.count(integration, interval_minutes=policy.window_minutes, now=now)
                    window = window_of(now, policy.window_minutes)
                    state, opened = await change_state(
                        self._states,
                        integration,
                        lambda s: tripped(s, policy, window=window, count=count, now=now),
                        now=now,
                    )
                    self.remember(integration, state)
                    if opened:
                        self._opened(integration, state)
            return must_hold(await self.state(integration), release)
        if release is Release.PROBE:
            minutes = policy.window_minutes if policy is not None else 1
            interval = window_of(now, minutes)
            seen = await self._window.count(integration, interval_minutes=minutes, now=now) if breaker else 0
            state, _ = await change_state(
                self._states, integration, lambda s: closed(s, window=interval, window_count=seen), now=now
            )
            self.remember(integration, state)
            log_event(logger, "circuit.closed", integration=integration)
        return False

    def _opened(self, integration: str, state: ControlState) -> None:
        self._metrics.count(Counter.CIRCUIT_OPENED, integration)
        log_event(
            logger, "circuit.opened", level=logging.WARNING, integration=integration,
            failures=state.breaker.failures, trips=state.breaker.trips,
        )  # fmt: skip
        if self._on_circuit_open is not None:
            self._on_circuit_open(integration)
