"""Timer triggers: runOnStartup and past_due, one invocation at a time (schedules: devhost.schedules).

Like the host, a timer never overlaps itself: ticks that fall while an invocation still
runs collapse into one invocation that starts as soon as the previous one ends, with
`past_due` True.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devhost.functions import TimerFunction
from devhost.invocation import FunctionInvoker

logger = logging.getLogger(__name__)

#: An invocation starting this much later than its scheduled time is reported as past due.
PAST_DUE_TOLERANCE_S = 1.0
#: Long waits are cut into slices so a suspended laptop or a wall-clock jump is noticed.
MAX_SLEEP_SLICE_S = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimerScheduler:
    """Runs one timer function on its schedule until stopped."""

    def __init__(
        self,
        function: TimerFunction,
        invoker: FunctionInvoker,
        *,
        clock: Callable[[], datetime] = utc_now,
        past_due_tolerance_s: float = PAST_DUE_TOLERANCE_S,
    ) -> None:
        self.function = function
        self._invoker = invoker
        self._clock = clock
        self._past_due_tolerance_s = past_due_tolerance_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_scheduled: datetime | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"timer:{self.function.name}")

    async def stop(self, grace_s: float) -> None:
        """Stop scheduling; a running invocation gets `grace_s` to finish, then is cancelled."""
        self._stopping.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace_s)
        if not done:
            logger.warning("timer %s still running after %.0f s; cancelling it", self.function.name, grace_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        schedule = self.function.schedule
        if self.function.run_on_startup:
            await self._fire(scheduled=None, past_due=False)
        scheduled = schedule.next_after(self._clock())
        logger.info("timer %s: schedule %r, next occurrence %s", self.function.name, schedule.text, scheduled)
        while await self._sleep_until(scheduled):
            started = self._clock()
            await self._fire(scheduled, past_due=(started - scheduled).total_seconds() > self._past_due_tolerance_s)
            # Computing from the later of the two skips every tick missed during an overrun but
            # the first, which the loop then runs at once (and late, so past due).
            scheduled = schedule.next_after(max(scheduled, started))

    async def _sleep_until(self, moment: datetime) -> bool:
        """Wait for `moment` by the wall clock; False when stopping instead."""
        while not self._stopping.is_set():
            remaining = (moment - self._clock()).total_seconds()
            if remaining <= 0:
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=min(remaining, MAX_SLEEP_SLICE_S))
        return False

    async def _fire(self, scheduled: datetime | None, *, past_due: bool) -> None:
        now = self._clock()
        status: dict[str, str] = {"LastUpdated": now.isoformat()}
        if self._last_scheduled is not None:
            status["Last"] = self._last_scheduled.isoformat()
        status["Next"] = self.function.schedule.next_after(scheduled or now).isoformat()
        self._last_scheduled = scheduled or now
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        # Failures are logged by the invoker; a timer keeps its schedule after a failed run.
        await self._invoker.invoke(self.function, request)
