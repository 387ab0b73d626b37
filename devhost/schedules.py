"""Timer schedules: NCRONTAB expressions and TimeSpans, as the Functions host reads them.

NCRONTAB (what Functions uses) puts seconds FIRST: "{second} {minute} {hour} {day}
{month} {day-of-week}". croniter's six-field form puts seconds LAST, so the seconds field
is moved before croniter sees the expression. A five-field expression has no seconds and
means the same in both. NCRONTAB also requires day-of-month AND day-of-week to match
(standard cron ORs them), hence `day_or=False`. A TimeSpan ("00:05:00"), which the host
accepts on dedicated plans, runs at that interval from start-up.

Pure code: no clock, no I/O, so function discovery can validate a schedule without a scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from devhost.errors import StartupError
from devhost.host_config import parse_timespan_s

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
