"""Pure control decisions: whether a message goes ahead or into the hold, and how the breaker moves.

No I/O and no clock of its own: the gate, the drain and the timer call these with what they read.
"""

from __future__ import annotations

from datetime import datetime

from shared.control.models import (
    BREAKER_ACTOR,
    CIRCUIT_OPEN,
    BreakerPhase,
    BreakerState,
    CircuitBreakerPolicy,
    ControlState,
    PauseInfo,
    Release,
)
from shared.messages.models import Envelope


def arrival_position(envelope: Envelope) -> str:
    """Where a message sits in its integration's hold: its received time, then its id (sorts in arrival order).

    The same message held again (a duplicate, a probe that failed) lands on the same position.
    """
    return f"{envelope.received_at:%Y%m%d%H%M%S%f}-{envelope.id}"


def must_hold(state: ControlState | None, release: Release | None) -> bool:
    """Whether a message goes into the hold instead of being attempted.

    A person's pause holds everything; an open breaker holds everything; a half-open one lets only its
    probe through; after a resume, new arrivals queue behind what is still held until the drain is done.
    """
    if state is None:
        return False
    paused = state.paused
    if paused is not None and not paused.by_breaker:
        return True
    phase = state.breaker.phase
    if phase is BreakerPhase.OPEN:
        return True
    if phase is BreakerPhase.HALF_OPEN:
        return release is not Release.PROBE
    return state.holding and release is None


def paused_by(state: ControlState, *, by: str, reason: str, now: datetime) -> ControlState:
    """The state after a person pauses (an earlier pause, the breaker's included, is replaced)."""
    return state.model_copy(update={"paused": PauseInfo(at=now, by=by, reason=reason), "holding": True})


def resumed(state: ControlState, *, window: int | None, window_count: int) -> ControlState:
    """The state after a person resumes: the breaker closes too (the operator decided), and the hold drains."""
    breaker = BreakerState(baseline=window_count, baseline_window=window) if window is not None else BreakerState()
    return state.model_copy(update={"paused": None, "breaker": breaker})


def failures_since_close(breaker: BreakerState, *, window: int, count: int) -> int:
    """Transient failures counted in `window` that came after the breaker last closed."""
    return count - breaker.baseline if breaker.baseline_window == window else count


def tripped(
    state: ControlState, policy: CircuitBreakerPolicy, *, window: int, count: int, now: datetime
) -> ControlState | None:
    """The state after the breaker opens, or None when it stays as it is (not closed, or under the threshold)."""
    breaker = state.breaker
    if breaker.phase is not BreakerPhase.CLOSED:
        return None
    failures = failures_since_close(breaker, window=window, count=count)
    if failures < policy.failure_threshold:
        return None
    return _opened(state, now=now, failures=failures)


def reopened(state: ControlState, *, now: datetime) -> ControlState:
    """The probe failed: open again, the cooldown starts over."""
    return _opened(state, now=now, failures=state.breaker.failures)


def _opened(state: ControlState, *, now: datetime, failures: int) -> ControlState:
    breaker = state.breaker.model_copy(
        update={
            "phase": BreakerPhase.OPEN,
            "opened_at": now,
            "half_open_at": None,
            "failures": failures,
            "trips": state.breaker.trips + 1,
        }
    )
    paused = state.paused
    if paused is None or paused.by_breaker:
        paused = PauseInfo(at=paused.at if paused else now, by=BREAKER_ACTOR, reason=CIRCUIT_OPEN)
    return state.model_copy(update={"breaker": breaker, "paused": paused, "holding": True})


def half_opened(state: ControlState, *, now: datetime) -> ControlState:
    """The cooldown is over: the next held message is the probe."""
    breaker = state.breaker.model_copy(update={"phase": BreakerPhase.HALF_OPEN, "half_open_at": now})
    return state.model_copy(update={"breaker": breaker})


def closed(state: ControlState, *, window: int, window_count: int) -> ControlState:
    """The probe got through: close, resume (the breaker's own pause only), and drain what was held."""
    paused = state.paused
    if paused is not None and paused.by_breaker:
        paused = None
    breaker = BreakerState(baseline=window_count, baseline_window=window)
    return state.model_copy(update={"breaker": breaker, "paused": paused})
