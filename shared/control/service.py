"""Control use cases: pause, resume and the status behind the API, and the timer that moves breakers and drains.

Pause answers only after `refresh_s`, the age a cached state may reach in any instance: once the
answer is back, no instance starts an attempt for the integration until it is resumed. Deliveries that
had started before go on to their end; if they fail transiently, they are held rather than requeued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.config.models import IntegrationConfig
from shared.config.ports import IntegrationStore
from shared.control.decisions import half_opened, paused_by, resumed
from shared.control.drain import HeldDrainer, release_for
from shared.control.gate import DeliveryControl, window_of
from shared.control.models import (
    BreakerPhase,
    BreakerStatus,
    CircuitBreakerPolicy,
    ControlState,
    ControlStatus,
    PauseRequest,
)
from shared.control.ports import ControlStates, HeldMessages
from shared.control.state import Change, change_state, read_state
from shared.delivery.ports import ErrorWindow
from shared.errors import IntegrationNotFound
from shared.logs import log_event
from shared.values import utc_now

logger = logging.getLogger("rebound.control")

#: Held messages are counted up to this many for a status (a count reads every row of the hold).
HELD_COUNT_LIMIT = 10_000


class IntegrationControl:
    def __init__(
        self,
        *,
        integrations: IntegrationStore,
        states: ControlStates,
        held: HeldMessages,
        control: DeliveryControl,
        drainer: HeldDrainer,
        circuit_window: ErrorWindow,
        audit: AuditTrail,
        refresh_s: float,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._audit = audit
        self._integrations = integrations
        self._states = states
        self._held = held
        self._control = control
        self._drainer = drainer
        self._window = circuit_window
        self._refresh_s = refresh_s
        self._clock = clock
        self._sleep = sleep

    async def _config(self, integration: str) -> IntegrationConfig:
        config = await self._integrations.get(integration)
        if config is None:
            raise IntegrationNotFound(integration)
        return config

    async def pause(self, integration: str, request: PauseRequest, *, actor: Actor) -> ControlStatus:
        """Pause: hold every message of the integration from the answer on, until resumed."""
        config = await self._config(integration)
        now = self._clock()
        state, _ = await change_state(
            self._states, integration, lambda s: paused_by(s, by=actor.name, reason=request.reason, now=now), now=now
        )
        self._control.remember(integration, state)
        await self._audit.record(
            actor, AuditAction.INTEGRATION_PAUSE, integration=integration, details={"reason": request.reason}
        )
        log_event(logger, "control.paused", integration=integration, by=actor.name, reason=request.reason or None)
        # Every instance reads the state again within refresh_s: after that, none attempts a message.
        await self._sleep(self._refresh_s)
        return await self._status(config, state)

    async def resume(self, integration: str, *, actor: Actor) -> ControlStatus:
        """Resume (closing an open breaker too) and start draining the hold in arrival order."""
        config = await self._config(integration)
        now = self._clock()
        policy = config.circuit_breaker
        window: int | None = None
        count = 0
        if policy is not None and policy.enabled:
            window = window_of(now, policy.window_minutes)
            count = await self._window.count(integration, interval_minutes=policy.window_minutes, now=now)
        state, _ = await change_state(
            self._states, integration, lambda s: resumed(s, window=window, window_count=count), now=now
        )
        self._control.remember(integration, state)
        if state.holding:
            await self._drainer.kick(integration)
        status = await self._status(config, state)
        await self._audit.record(
            actor, AuditAction.INTEGRATION_RESUME, integration=integration, details={"held": status.held}
        )
        log_event(logger, "control.resumed", integration=integration, by=actor.name)
        return status

    async def status(self, integration: str) -> ControlStatus:
        config = await self._config(integration)
        return await self._status(config, await read_state(self._states, integration))

    async def state_of(self, integration: str) -> ControlState:
        return await read_state(self._states, integration)

    async def held_counts(self) -> dict[str, int]:
        """Held messages per integration that holds any (the overview's and the metrics' `held`)."""
        counts: dict[str, int] = {}
        async for integration, stored in self._states.all():
            if stored.state.holding:
                held = await self._held.count(integration, limit=HELD_COUNT_LIMIT)
                if held:
                    counts[integration] = held
        return counts

    async def states(self) -> dict[str, ControlState]:
        """Every integration's stored state (those never paused or tripped have none)."""
        return {integration: stored.state async for integration, stored in self._states.all()}

    async def _status(self, config: IntegrationConfig, state: ControlState) -> ControlStatus:
        return control_status(
            config,
            state,
            held=await self._held.count(config.id, limit=HELD_COUNT_LIMIT + 1),
            now=self._clock(),
        )

    # --- the control timer ------------------------------------------------------------------------

    async def tick(self) -> int:
        """Move breakers whose cooldown is over to half-open, and start each drain that is due; how many started."""
        now = self._clock()
        started = 0
        async for integration, stored in self._states.all():
            state = stored.state
            config = await self._integrations.get(integration)
            policy = config.circuit_breaker if config is not None else None
            breaker_on = policy is not None and policy.enabled
            person_paused = state.paused is not None and not state.paused.by_breaker
            if state.breaker.phase is not BreakerPhase.CLOSED and not breaker_on:
                # The breaker was switched off (or the config deleted) while open: let go of its pause.
                state, _ = await change_state(self._states, integration, _breaker_off, now=now)
                log_event(logger, "circuit.disabled", integration=integration)
            elif policy is not None and state.breaker.cooled_down(policy, now) and not person_paused:
                state, changed = await change_state(self._states, integration, _half_open(policy, now), now=now)
                if changed:
                    log_event(logger, "circuit.half_open", integration=integration)
            self._control.remember(integration, state)
            if drain_due(state, now):
                await self._drainer.kick(integration)
                started += 1
        return started


def drain_due(state: ControlState, now: datetime) -> bool:
    """Something is held that may go (a resume, or a half-open breaker's probe) and no drain holds the lease."""
    if not state.holding or state.drain_leased(now):
        return False
    return release_for(state) is not None


def _half_open(policy: CircuitBreakerPolicy, now: datetime) -> Change:
    def change(state: ControlState) -> ControlState | None:
        return half_opened(state, now=now) if state.breaker.cooled_down(policy, now) else None

    return change


def _breaker_off(state: ControlState) -> ControlState | None:
    if state.breaker.phase is BreakerPhase.CLOSED:
        return None
    paused = state.paused if state.paused is not None and not state.paused.by_breaker else None
    breaker = state.breaker.model_copy(update={"phase": BreakerPhase.CLOSED})
    return state.model_copy(update={"breaker": breaker, "paused": paused})


def control_status(config: IntegrationConfig, state: ControlState, *, held: int, now: datetime) -> ControlStatus:
    policy = config.circuit_breaker
    breaker: BreakerStatus | None = None
    if (policy is not None and policy.enabled) or state.breaker.phase is not BreakerPhase.CLOSED:
        phase = state.breaker
        probe_at = None
        if phase.phase is BreakerPhase.OPEN and phase.opened_at is not None and policy is not None:
            probe_at = phase.opened_at + timedelta(seconds=policy.cooldown_seconds)
        elif phase.phase is BreakerPhase.HALF_OPEN:
            probe_at = phase.half_open_at
        breaker = BreakerStatus(
            phase=phase.phase, opened_at=phase.opened_at, probe_at=probe_at, failures=phase.failures, trips=phase.trips
        )
    draining = state.holding and state.paused is None and state.breaker.phase is BreakerPhase.CLOSED
    label = (
        "paused"
        if state.paused is not None or state.breaker.phase is not BreakerPhase.CLOSED
        else ("draining" if draining else "running")
    )
    return ControlStatus(
        integration=config.id,
        paused=state.paused,
        held=min(held, HELD_COUNT_LIMIT),
        held_capped=held > HELD_COUNT_LIMIT,
        holding=state.holding,
        draining=draining,
        breaker=breaker,
        rate_limit=config.rate_limit,
        state=label,
    )
