"""Control shapes: the config blocks (`circuit_breaker`, `rate_limit`), and the state kept per integration.

The config blocks are part of an integration's config (PUT /api/integrations/{id}); the state
(`ControlState`: paused or not, the breaker's phase, the drain's lease) is kept apart in the `control`
table, so replacing a config never resumes a paused integration, and shown read-only beside it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from shared.failures.models import GroupMute
from shared.values import Count, FrozenModel, UtcDatetime

#: The pause reason (and `by`) the breaker uses when it pauses an integration by itself.
CIRCUIT_OPEN = "circuit_open"
BREAKER_ACTOR = "circuit-breaker"
MAX_REASON_CHARS = 500


# --- config blocks ----------------------------------------------------------------------------


class CircuitBreakerPolicy(FrozenModel):
    """`circuit_breaker` on a config: pause by itself when the receiver keeps failing transiently."""

    enabled: bool = True
    #: Transient failures (after endpoint retry) in the current window that open the breaker.
    failure_threshold: Annotated[int, Field(ge=1, le=100_000)] = 20
    #: The shared error window's interval the failures are counted in (fixed intervals, like backoff's).
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    #: How long the breaker stays open before one probe message is attempted (half-open).
    cooldown_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60


class RateLimitPolicy(FrozenModel):
    """`rate_limit` on a config: delivery attempts per second across all instances."""

    #: A multiple of 0.1 between 0.1 and 1000 (0.5: one attempt every two seconds).
    per_second: Annotated[float, Field(ge=0.1, le=1000)]

    @field_validator("per_second")
    @classmethod
    def _tenths(cls, value: float) -> float:
        if not math.isclose(value * 10, round(value * 10), abs_tol=1e-9):
            raise ValueError("must be a multiple of 0.1")
        return round(value, 1)

    @property
    def slot_s(self) -> int:
        """Seconds per token slot: one for a whole rate, ten otherwise (so a slot holds whole tokens)."""
        return 1 if float(self.per_second).is_integer() else 10

    @property
    def capacity(self) -> int:
        """Tokens (attempts) one slot holds."""
        return round(self.per_second * self.slot_s)


# --- state ------------------------------------------------------------------------------------


class PauseInfo(FrozenModel):
    """`paused` as the config shows it."""

    at: UtcDatetime
    #: The operator's name, or `circuit-breaker` when the breaker paused it.
    by: Annotated[str, Field(min_length=1, max_length=256)]
    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS)] = ""

    @property
    def by_breaker(self) -> bool:
        return self.by == BREAKER_ACTOR and self.reason == CIRCUIT_OPEN


class BreakerPhase(StrEnum):
    CLOSED = "closed"
    #: Tripped: messages are held until the cooldown ends.
    OPEN = "open"
    #: Cooldown over: the next held message is the probe.
    HALF_OPEN = "half_open"


class BreakerState(FrozenModel):
    phase: BreakerPhase = BreakerPhase.CLOSED
    opened_at: UtcDatetime | None = None
    #: When it went half-open (the probe's turn began).
    half_open_at: UtcDatetime | None = None
    #: Transient failures counted when it last opened.
    failures: Count = 0
    #: Times it opened since the last close by a probe or a resume (re-opens after a failed probe included).
    trips: Count = 0
    #: The window's count when it last closed, and the window it was taken in: failures counted before
    #: the close do not count again, so a closed breaker does not re-open on the next single failure.
    baseline: Count = 0
    baseline_window: int | None = None

    def cooled_down(self, policy: CircuitBreakerPolicy, now: datetime) -> bool:
        return (
            self.phase is BreakerPhase.OPEN
            and self.opened_at is not None
            and now - self.opened_at >= timedelta(seconds=policy.cooldown_seconds)
        )


class ControlState(FrozenModel):
    """What the `control` table keeps per integration (one row, every change conditional on its version)."""

    paused: PauseInfo | None = None
    #: Messages go to the hold: while paused, and after a resume until the hold is drained (so new
    #: arrivals queue behind the held ones, in arrival order).
    holding: bool = False
    breaker: BreakerState = Field(default_factory=BreakerState)
    #: Who drains the hold now, and until when (a drain that crashed loses it when it lapses).
    drain_owner: str | None = None
    drain_until: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    #: Muted failure groups by fingerprint (issue 19): kept here, beside the pause, because the overview and
    #: the alerts already read every integration's state in one query.
    muted: dict[str, GroupMute] = Field(default_factory=dict)

    def drain_leased(self, now: datetime) -> bool:
        return self.drain_owner is not None and self.drain_until is not None and self.drain_until > now


class Release(StrEnum):
    """How the drain hands a held message back to the engine."""

    #: In arrival order after a resume (or a closed breaker).
    DRAIN = "drain"
    #: The breaker's one probe while half-open.
    PROBE = "probe"


# --- API shapes ---------------------------------------------------------------------------------


class PauseRequest(FrozenModel):
    """POST /integrations/{integration}/pause."""

    reason: Annotated[str, Field(max_length=MAX_REASON_CHARS)] = ""


class BreakerStatus(BaseModel):
    phase: BreakerPhase
    opened_at: UtcDatetime | None
    #: When the probe is due (open) or was started (half-open); null when closed.
    probe_at: UtcDatetime | None
    failures: int
    trips: int


class ControlStatus(BaseModel):
    """GET/POST …/pause, …/resume, …/control: what an operator needs to see."""

    integration: str
    paused: PauseInfo | None
    #: Messages waiting in the hold (counted up to `HELD_COUNT_LIMIT`; `held_capped` says when it is more).
    held: int
    held_capped: bool = False
    holding: bool
    draining: bool
    breaker: BreakerStatus | None
    rate_limit: RateLimitPolicy | None
    state: Literal["running", "paused", "draining"]
