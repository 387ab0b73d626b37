"""SweepState contract: the last sweep's result, nothing before the first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.recovery.models import SweepResult
from shared.recovery.ports import SweepState

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_last_is_none_before_the_first_sweep_and_then_the_latest_remembered(sweep_state: SweepState):
    first = SweepResult(started_at=BASE, finished_at=BASE, trigger="timer", healthy=False, reason="main down")
    second = SweepResult(
        started_at=BASE + timedelta(minutes=5), finished_at=BASE + timedelta(minutes=5, seconds=2),
        trigger="manual", healthy=True, reinserted=3, gave_up=1, by_queue={"recovery": 4}, jobs_resumed=1,
    )  # fmt: skip
    assert await sweep_state.last() is None

    await sweep_state.remember(first)
    await sweep_state.remember(second)

    assert await sweep_state.last() == second
