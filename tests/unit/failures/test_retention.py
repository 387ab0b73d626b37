"""Retention on the twins: old failures and their content go in bounded runs; orphans and old windows too."""

from __future__ import annotations

from datetime import timedelta

from shared.failures.models import FailureFilter, FailureOrigin
from shared.failures.records import new_failure
from shared.failures.retention import ERROR_WINDOW_KEEP, PAYLOAD_GRACE, Retention
from shared.messages.models import Envelope
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores

RETENTION_DAYS = 7
END = FakeTime().now().replace(year=2100)


def retention_on(stores: MemoryStores) -> Retention:
    return Retention(stores.failures, stores.payloads, stores.error_window, retention_days=RETENTION_DAYS)


async def add_failure(stores: MemoryStores, time: FakeTime, age: timedelta, **envelope: object) -> str:
    """A failure `age` old with its content; returns its message id (its content's ref)."""
    message = Envelope.model_validate({"integration": "orders", "body_text": "x", **envelope})
    await stores.payloads.put(message.id, b"x", content_type=None)
    stores.payloads.touch(message.id, time.now() - age)
    failure = new_failure(message, origin=FailureOrigin.ENDPOINT, reason="r", now=time.now() - age, body_ref=message.id)
    await stores.failures.add(failure)
    return message.id


async def message_ids(stores: MemoryStores) -> list[str]:
    return [item.failure.message_id async for item in stores.failures.select("orders", FailureFilter(), not_after=END)]


async def test_old_failures_and_their_content_go_and_recent_ones_stay(stores, fake_time):
    old = await add_failure(stores, fake_time, timedelta(days=8))
    recent = await add_failure(stores, fake_time, timedelta(days=1))

    result = await retention_on(stores).purge(now=fake_time.now())

    assert (result.failures, result.payloads, result.integrations) == (1, 1, ["orders"])
    assert await message_ids(stores) == [recent]
    assert await stores.payloads.get(old) is None and await stores.payloads.get(recent) is not None
    assert (await stores.failures.summary("orders")).count == 1


async def test_a_run_purges_at_most_its_limit_and_the_next_run_goes_on(stores, fake_time):
    # Given seven expired failures
    for hour in range(7):
        await add_failure(stores, fake_time, timedelta(days=8, hours=hour))
    retention = retention_on(stores)

    # When two runs purge with a limit of 5
    first = await retention.purge(now=fake_time.now(), limit=5)
    second = await retention.purge(now=fake_time.now(), limit=5)

    # Then five go, then two, and the counters follow
    assert (first.failures, second.failures) == (5, 2)
    assert await message_ids(stores) == []
    assert (await stores.failures.summary("orders")).count == 0


async def test_the_whole_values_of_masked_headers_go_with_their_failure(stores, fake_time):
    await add_failure(stores, fake_time, timedelta(days=8), headers={"x-api-key": "k"})
    assert any(ref.startswith("overflow/") for ref in stores.payloads.refs())

    result = await retention_on(stores).purge(now=fake_time.now())

    assert result.payloads == 2 and stores.payloads.refs() == []


async def test_orphaned_payloads_go_a_day_after_the_retention(stores, fake_time):
    # Given payloads no failure points at: one past retention plus the grace day, one just inside it
    cutoff = fake_time.now() - timedelta(days=RETENTION_DAYS) - PAYLOAD_GRACE
    written_at = {"orphan-old": cutoff - timedelta(minutes=1), "orphan-young": cutoff + timedelta(minutes=1)}
    for ref, written in written_at.items():
        await stores.payloads.put(ref, b"x", content_type=None)
        stores.payloads.touch(ref, written)

    result = await retention_on(stores).purge(now=fake_time.now())

    assert result.payloads == 1
    assert stores.payloads.refs() == ["orphan-young"]


async def test_error_window_intervals_older_than_a_day_go(stores, fake_time):
    # Given an integration with failures, and error-window counts from two days ago and from now
    await add_failure(stores, fake_time, timedelta(hours=1))
    old = fake_time.now() - ERROR_WINDOW_KEEP - timedelta(days=1)
    await stores.error_window.record("orders", interval_minutes=3, now=old)
    await stores.error_window.record("orders", interval_minutes=3, now=fake_time.now())

    result = await retention_on(stores).purge(now=fake_time.now())

    assert result.error_window_rows == 1
    assert await stores.error_window.count("orders", interval_minutes=3, now=old) == 0
    assert await stores.error_window.count("orders", interval_minutes=3, now=fake_time.now()) == 1


async def test_timeline_events_go_as_old_as_the_failures_and_recent_ones_stay(stores, fake_time):
    # Given a message with events eight days and one day old
    from shared.timeline.models import TimelineEvent, TimelineItem

    def event(age: timedelta, key: str) -> TimelineItem:
        return TimelineItem(at=fake_time.now() - age, event=TimelineEvent.ATTEMPT, key=key)

    await stores.timeline.append("orders", "m-1", [event(timedelta(days=8), "old"), event(timedelta(days=1), "new")])
    retention = Retention(
        stores.failures, stores.payloads, stores.error_window, retention_days=RETENTION_DAYS, timeline=stores.timeline
    )

    # When the retention runs
    result = await retention.purge(now=fake_time.now())

    # Then only the old event went
    assert result.timeline_events == 1
    assert stores.timeline.events("orders", "m-1") == ["attempt"]
