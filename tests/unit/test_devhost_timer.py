"""NCRONTAB schedules (seconds first) on top of croniter (seconds last); pure, no I/O."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from devhost.functions import TimerFunction
from devhost.invocation import InvocationResult
from devhost.schedules import CronSchedule, IntervalSchedule, ncrontab_to_croniter, parse_schedule
from devhost.timer_scheduler import TimerScheduler

START = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)  # a Monday


def occurrences(expression: str, count: int, start: datetime = START) -> list[datetime]:
    schedule = parse_schedule(expression)
    moments = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment)
        moments.append(moment)
    return moments


@pytest.mark.parametrize(
    ("ncrontab", "expected"),
    [
        ("*/2 * * * * *", "* * * * * */2"),
        ("0 30 9 * * 1-5", "30 9 * * 1-5 0"),
        ("0 */5 * * * *", "*/5 * * * * 0"),
        ("30 9 * * *", "30 9 * * *"),
    ],
)
def test_ncrontab_seconds_field_moves_last_for_croniter(ncrontab, expected):
    # When / Then
    assert ncrontab_to_croniter(ncrontab) == expected


def test_every_two_seconds_fires_on_even_seconds():
    # When
    moments = occurrences("*/2 * * * * *", 3)

    # Then
    assert moments == [START + timedelta(seconds=s) for s in (2, 4, 6)]


def test_first_field_is_seconds_not_minutes():
    # When
    moments = occurrences("15 * * * * *", 2)

    # Then
    assert moments == [START + timedelta(seconds=15), START + timedelta(minutes=1, seconds=15)]


def test_weekday_schedule_skips_the_weekend():
    # Given: Friday 2024-01-05 after 09:30
    friday_evening = datetime(2024, 1, 5, 18, 0, tzinfo=UTC)

    # When
    (following,) = occurrences("0 30 9 * * 1-5", 1, friday_evening)

    # Then
    assert following == datetime(2024, 1, 8, 9, 30, tzinfo=UTC)


def test_day_of_month_and_day_of_week_must_both_match_as_in_ncrontab():
    # When: the 13th that is a Friday
    (following,) = occurrences("0 0 0 13 * 5", 1)

    # Then
    assert following == datetime(2024, 9, 13, tzinfo=UTC)


def test_next_occurrence_is_strictly_after_the_given_moment():
    # Given
    on_the_tick = START + timedelta(seconds=5)

    # When
    (following,) = occurrences("* * * * * *", 1, on_the_tick)

    # Then
    assert following == START + timedelta(seconds=6)


def test_seconds_schedule_next_after_is_one_second_later():
    # Given the every-second schedule the devhost e2e timer test runs on, asked mid-second
    schedule = CronSchedule.parse("*/1 * * * * *", UTC)
    mid_second = START + timedelta(seconds=3, microseconds=400_000)

    # When the next occurrences are taken one after another
    first = schedule.next_after(mid_second)
    second = schedule.next_after(first)

    # Then they fall on whole seconds, exactly one second apart
    assert (first, second) == (START + timedelta(seconds=4), START + timedelta(seconds=5))


def test_schedule_in_a_time_zone_fires_at_local_time():
    # Given
    schedule = CronSchedule.parse("0 0 9 * * *", ZoneInfo("Europe/Amsterdam"))

    # When
    following = schedule.next_after(START)

    # Then
    assert following.astimezone(UTC) == datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def test_timespan_schedule_repeats_at_its_interval():
    # When
    schedule = parse_schedule("00:00:30")

    # Then
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(START) == START + timedelta(seconds=30)


@pytest.mark.parametrize(
    "expression",
    ["* * * * *  * *", "* * *", "61 * * * * *", "0 0 0 L * *", "0 0 0 ? * 1", "0 0 0 1 1 1#2", "H * * * * *"],
)
def test_invalid_or_non_ncrontab_expressions_are_rejected(expression):
    # When / Then
    with pytest.raises(ValueError):
        parse_schedule(expression)


class RecordingInvoker:
    """Stands in for devhost's Invoker: records each TimerRequest and how many ran at once."""

    def __init__(self, durations_s: list[float]) -> None:
        self.durations_s = durations_s
        self.past_due: list[bool] = []
        self.running = 0
        self.max_running = 0
        self._called = asyncio.Event()

    async def wait_for_calls(self, count: int) -> None:
        async with asyncio.timeout(3):
            while len(self.past_due) < count:
                self._called.clear()
                await self._called.wait()

    async def invoke(self, function, trigger_value):
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.past_due.append(trigger_value.past_due)
        self._called.set()
        duration_s = self.durations_s[len(self.past_due) - 1] if len(self.past_due) <= len(self.durations_s) else 0
        await asyncio.sleep(duration_s)
        self.running -= 1
        return InvocationResult("test")


async def test_overrunning_timer_never_overlaps_and_its_missed_ticks_run_once_past_due():
    # Given: every 100 ms, and a first invocation that takes 350 ms (three ticks missed)
    function = TimerFunction("sweep", lambda timer: None, "timer", parse_schedule("00:00:00.100"), False)
    invoker = RecordingInvoker(durations_s=[0.35])
    scheduler = TimerScheduler(function, invoker, past_due_tolerance_s=0.08)

    # When
    scheduler.start()
    await invoker.wait_for_calls(3)
    await scheduler.stop(grace_s=1)

    # Then: one late catch-up run, then back on schedule
    assert invoker.past_due[:3] == [False, True, False]
    assert invoker.max_running == 1


async def test_run_on_startup_invokes_once_before_the_first_occurrence():
    # Given: a schedule that would not fire for a year
    function = TimerFunction("warm", lambda timer: None, "timer", parse_schedule("0 0 0 1 1 *"), True)
    invoker = RecordingInvoker(durations_s=[])
    scheduler = TimerScheduler(function, invoker)

    # When
    scheduler.start()
    await invoker.wait_for_calls(1)
    await scheduler.stop(grace_s=1)

    # Then
    assert invoker.past_due == [False]
