"""Timer triggers: NCRONTAB schedules, runOnStartup and past_due, one invocation at a time.

NCRONTAB (what Functions uses) puts seconds FIRST: "{second} {minute} {hour} {day}
{month} {day-of-week}". croniter's six-field form puts seconds LAST, so the seconds field
is moved before croniter sees the expression. A five-field expression has no seconds and
means the same in both. NCRONTAB also requires day-of-month AND day-of-week to match
(standard cron ORs them), hence `day_or=False`. A TimeSpan ("00:05:00"), which the host
accepts on dedicated plans, runs at that interval from start-up.

Like the host, a timer never overlaps itself: ticks that fall while an invocation still
runs collapse into one invocation that starts as soon as the previous one ends, with
`past_due` True.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.errors import StartupError
from devhost.host_config import parse_timespan_s

if TYPE_CHECKING:
    from devhost.functions import TimerFunction
    from devhost.invocation import FunctionInvoker

logger = logging.getLogger(__name__)

#: An invocation starting this much later than its scheduled time is reported as past due.
PAST_DUE_TOLERANCE_S = 1.0
#: Long waits are cut into slices so a suspended laptop or a wall-clock jump is noticed.
MAX_SLEEP_SLICE_S = 30.0
#: The app setting the host uses for a non-UTC schedule time zone.
TIME_ZONE_SETTING = "WEBSITE_TIME_ZONE"

# A field is a list of items; an item is *, a number or a 3-letter name, an optional range and step.
# NCRONTAB has no L, W, #, ? or H, which croniter would otherwise accept.
_ITEM = r"(?:\*|\d+|[A-Za-z]{3})(?:-(?:\d+|[A-Za-z]{3}))?(?:/\d+)?"
_FIELD = re.compile(rf"^{_ITEM}(?:,{_ITEM})*$")


class Schedule(Protocol):
    @property
    def text(self) -> str:
        """The schedule as written (after %NAME% resolution)."""
        ...

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime)."""
        ...


def ncrontab_to_croniter(expression: str) -> str:
    """Reorder an NCRONTAB expression into croniter's field order (seconds last)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"{expression!r} has {len(fields)} fields; NCRONTAB needs 6 (seconds first) or 5")
    for value in fields:
        if not _FIELD.match(value):
            raise ValueError(f"{expression!r}: field {value!r} is not valid NCRONTAB")
    if len(fields) == 6:
        fields = [*fields[1:], fields[0]]
    return " ".join(fields)


@dataclass(frozen=True)
class CronSchedule:
    text: str
    croniter_expression: str
    time_zone: tzinfo

    @classmethod
    def parse(cls, text: str, time_zone: tzinfo = UTC) -> CronSchedule:
        converted = ncrontab_to_croniter(text)
        if not croniter.is_valid(converted):
            raise ValueError(f"{text!r} is not a valid NCRONTAB expression")
        return cls(text, converted, time_zone)

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.time_zone)
        following: datetime = croniter(self.croniter_expression, local, day_or=False).get_next(datetime)
        return following


@dataclass(frozen=True)
class IntervalSchedule:
    text: str
    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(text: str, time_zone: tzinfo = UTC) -> Schedule:
    """An NCRONTAB expression or a TimeSpan; ValueError says what is wrong."""
    stripped = text.strip()
    if ":" in stripped and " " not in stripped:
        seconds = parse_timespan_s(stripped)
        if seconds <= 0:
            raise ValueError(f"{text!r}: a TimeSpan schedule must be positive")
        return IntervalSchedule(stripped, timedelta(seconds=seconds))
    return CronSchedule.parse(stripped, time_zone)


def schedule_time_zone(settings: Mapping[str, str]) -> tzinfo:
    """UTC unless WEBSITE_TIME_ZONE names an IANA zone (as on Linux plans)."""
    name = settings.get(TIME_ZONE_SETTING, "").strip()
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StartupError(
            f"{TIME_ZONE_SETTING}={name!r} is not an IANA time zone name (e.g. Europe/Amsterdam)"
        ) from None


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
