"""The drain: hand an integration's held messages back to the engine, one at a time, in arrival order.

A drain runs from the `drain` queue, a page per message (at most `budget_s` of work), and chains the
next page: the jobs pattern. One drain per integration at a time: it holds a lease in the control
state (`drain_owner`/`drain_until`, a conditional write), renewed each page; a drain that crashed
loses it when it lapses, and the control timer starts another. Each message is attempted by the
engine itself, through the same gate, with `release` saying why it may go: `drain` after a resume,
`probe` for the one message a half-open breaker lets through. A message is removed from the hold only
after the engine decided it (at-least-once: a crash in between attempts it again).

When the hold is empty and nothing holds it any longer, `holding` is cleared: new arrivals go straight
to delivery. An instance that had not yet seen that (its state cache is up to `refresh_s` old) may
still hold a message, so one last pass runs `refresh_s` later and delivers such stragglers.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.control.decisions import must_hold
from shared.control.gate import DeliveryControl
from shared.control.models import BreakerPhase, ControlState, Release
from shared.control.ports import ControlStates, HeldMessages
from shared.control.state import change_state
from shared.errors import BadParameter
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.messages.wire import parse_envelope
from shared.operability.metrics import Counter, Metrics
from shared.values import utc_now

logger = logging.getLogger("rebound.control")

#: Held messages read per query.
PAGE_SIZE = 50


@dataclass(frozen=True)
class DrainMessage:
    """A `drain` queue message: drain this integration's hold under this lease."""

    integration: str
    owner: str
    #: The last pass after the hold was found empty (for stragglers); it starts no further pass.
    final: bool = False

    @classmethod
    def new(cls, integration: str) -> DrainMessage:
        return cls(integration=integration, owner=uuid.uuid4().hex)

    def text(self) -> str:
        return json.dumps({"integration": self.integration, "owner": self.owner, "final": self.final})

    @classmethod
    def parse(cls, raw: bytes | str) -> DrainMessage:
        try:
            data: Any = json.loads(raw)
            return cls(integration=str(data["integration"]), owner=str(data["owner"]), final=bool(data.get("final")))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadParameter("message", "is not a drain message") from exc


@dataclass
class DrainReport:
    integration: str
    released: int = 0
    #: Why this page ended: "empty", "paused", "open", "lease", "budget".
    ended: str = ""


def release_for(state: ControlState) -> Release | None:
    """What the drain may hand back now; None when it must stop (a person's pause, or an open breaker)."""
    if state.breaker.phase is BreakerPhase.HALF_OPEN and not (state.paused and not state.paused.by_breaker):
        return Release.PROBE
    if must_hold(state, Release.DRAIN):
        return None
    return Release.DRAIN


class HeldDrainer:
    def __init__(
        self,
        *,
        control: DeliveryControl,
        states: ControlStates,
        held: HeldMessages,
        requests: MessageQueue,
        process: Callable[[Envelope, Release], Awaitable[object]],
        metrics: Metrics,
        refresh_s: float,
        budget_s: float = 30.0,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._control = control
        self._states = states
        self._held = held
        self._requests = requests
        self._process = process
        self._metrics = metrics
        self._refresh_s = refresh_s
        self._budget_s = budget_s
        self._clock = clock
        self._monotonic = monotonic

    @property
    def lease(self) -> timedelta:
        """Long enough for one page and the hop to the next."""
        return timedelta(seconds=self._budget_s * 2 + 60)

    async def kick(self, integration: str) -> None:
        """Start a drain (it ends at once when another holds the lease)."""
        await self._requests.send(DrainMessage.new(integration).text())

    async def run(self, raw: bytes | str) -> DrainReport:
        message = DrainMessage.parse(raw)
        integration = message.integration
        report = DrainReport(integration)
        if not await self._claim(message):
            report.ended = "lease"
            return report
        started = self._monotonic()
        while True:
            items = await self._held.oldest(integration, limit=PAGE_SIZE)
            if not items:
                report.ended = "empty"
                await self._finish(message)
                break
            for item in items:
                state = await self._control.refresh(integration)
                if state.drain_owner != message.owner:
                    report.ended = "lease"
                    return self._logged(report)
                release = release_for(state)
                if release is None:
                    report.ended = "paused" if state.paused and not state.paused.by_breaker else "open"
                    await self._let_go(message)
                    return self._logged(report)
                envelope = parse_envelope(item.text.encode("utf-8"), fallback_id=item.position)
                await self._process(envelope, release)
                if await self._held.release(integration, item):
                    report.released += 1
                    self._metrics.count(Counter.RELEASED, integration)
                if release is Release.PROBE:
                    after = await self._control.refresh(integration)
                    if after.breaker.phase is not BreakerPhase.CLOSED:
                        report.ended = "open"
                        await self._let_go(message)
                        return self._logged(report)
                if self._monotonic() - started >= self._budget_s:
                    break
            if self._monotonic() - started >= self._budget_s:
                report.ended = "budget"
                await self._renew(message)
                await self._requests.send(message.text())
                break
        return self._logged(report)

    def _logged(self, report: DrainReport) -> DrainReport:
        if report.released or report.ended not in ("lease", "empty"):
            log_event(
                logger, "control.drained", integration=report.integration, released=report.released, ended=report.ended
            )  # fmt: skip
        return report

    async def _claim(self, message: DrainMessage) -> bool:
        now = self._clock()

        def take(state: ControlState) -> ControlState | None:
            if state.drain_leased(now) and state.drain_owner != message.owner:
                return None
            return state.model_copy(update={"drain_owner": message.owner, "drain_until": now + self.lease})

        state, changed = await change_state(self._states, message.integration, take, now=now)
        self._control.remember(message.integration, state)
        return changed

    async def _renew(self, message: DrainMessage) -> None:
        await self._claim(message)

    async def _let_go(self, message: DrainMessage) -> None:
        """Give up the lease (a later resume, probe or timer tick starts another drain)."""
        now = self._clock()

        def release(state: ControlState) -> ControlState | None:
            if state.drain_owner != message.owner:
                return None
            return state.model_copy(update={"drain_owner": None, "drain_until": None})

        state, _ = await change_state(self._states, message.integration, release, now=now)
        self._control.remember(message.integration, state)

    async def _finish(self, message: DrainMessage) -> None:
        """The hold is empty: stop holding new arrivals unless something holds them still, and give up the lease."""
        now = self._clock()

        def done(state: ControlState) -> ControlState | None:
            if state.drain_owner != message.owner:
                return None
            open_ = state.paused is not None or state.breaker.phase is not BreakerPhase.CLOSED
            return state.model_copy(update={"drain_owner": None, "drain_until": None, "holding": open_})

        state, changed = await change_state(self._states, message.integration, done, now=now)
        self._control.remember(message.integration, state)
        if changed and not state.holding and not message.final:
            straggler = replace(message, owner=uuid.uuid4().hex, final=True)
            await self._requests.send(straggler.text(), delay_s=int(self._refresh_s) + 1)
