"""A clock and a sleep that move together without waiting: time in tests is advanced, never slept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeTime:
    """A clock and sleep that move together without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now_value = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self.elapsed_s = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.now_value

    def monotonic(self) -> float:
        return self.elapsed_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed_s += seconds
        self.now_value += timedelta(seconds=seconds)
