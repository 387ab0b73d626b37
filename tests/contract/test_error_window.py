"""ErrorWindow contract: failures counted per integration per fixed interval, across instances."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.delivery.ports import ErrorWindow

#: The start of a 3-minute interval (and of a 5-minute one, 15 minutes being a multiple of both).
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_failures_recorded_at_once_are_all_counted_in_their_interval(error_window: ErrorWindow):
    # Given 20 failures recorded concurrently inside one 3-minute interval (as many instances would)
    moments = [START + timedelta(seconds=i * 5) for i in range(20)]
    await asyncio.gather(*(error_window.record("orders", interval_minutes=3, now=at) for at in moments))

    # When the interval is counted from any moment inside it
    counts = [await error_window.count("orders", interval_minutes=3, now=at) for at in (START, moments[-1])]

    # Then every failure counts once
    assert counts == [20, 20]


async def test_intervals_and_integrations_are_counted_apart(error_window: ErrorWindow):
    await error_window.record("orders", interval_minutes=3, now=START)
    await error_window.record("orders", interval_minutes=3, now=START + timedelta(minutes=3))
    await error_window.record("orders", interval_minutes=3, now=START + timedelta(minutes=3, seconds=30))
    await error_window.record("billing", interval_minutes=3, now=START)

    assert await error_window.count("orders", interval_minutes=3, now=START + timedelta(minutes=2, seconds=59)) == 1
    assert await error_window.count("orders", interval_minutes=3, now=START + timedelta(minutes=5)) == 2
    assert await error_window.count("orders", interval_minutes=3, now=START + timedelta(minutes=6)) == 0
    assert await error_window.count("billing", interval_minutes=3, now=START) == 1
    assert await error_window.count("crm", interval_minutes=3, now=START) == 0


async def test_purge_before_drops_older_intervals_of_that_integration_only(error_window: ErrorWindow):
    # Given failures in an old and a current interval of orders, and an old one of billing
    old, current = START, START + timedelta(minutes=30)
    await error_window.record("orders", interval_minutes=3, now=old)
    await error_window.record("orders", interval_minutes=3, now=current)
    await error_window.record("billing", interval_minutes=3, now=old)

    # When orders' intervals before the current one are purged, twice
    purged = await error_window.purge_before("orders", current)
    again = await error_window.purge_before("orders", current)

    # Then the old interval went (the number of records is the store's own), the rest stays
    assert purged >= 1 and again == 0
    assert await error_window.count("orders", interval_minutes=3, now=old) == 0
    assert await error_window.count("orders", interval_minutes=3, now=current) == 1
    assert await error_window.count("billing", interval_minutes=3, now=old) == 1
