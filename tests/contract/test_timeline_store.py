"""TimelineStore and SettleCounts contract: the same tests on the twins and on Azurite (`TableTimelineStore`,
`TableSettleCounts`).

Events read back oldest first whatever order they were written in, one message's apart from another's (and
from the same id in another integration); paging with cursors the store issued and no other; an event
written twice kept once; the retention purge removing only what is older than the cutoff. Settle counters:
a shard replaced by its writer, shards of one job summed, other jobs left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import BadParameter
from shared.jobs.ports import SettleCounts, SettleTally
from shared.timeline.models import TimelineEvent, TimelineItem
from shared.timeline.ports import TimelineStore

BASE = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def item(
    seconds: float, event: TimelineEvent = TimelineEvent.ATTEMPT, key: str = "", **details: object
) -> TimelineItem:
    return TimelineItem(
        at=BASE + timedelta(seconds=seconds), event=event, instance="vm-1", details=dict(details),
        key=key or f"2.{event.value}.{int(seconds * 1000)}",
    )  # fmt: skip


async def everything(store: TimelineStore, message_id: str, *, limit: int = 500) -> list[TimelineItem]:
    items: list[TimelineItem] = []
    cursor = None
    for _ in range(100):
        page = await store.page("orders", message_id, limit=limit, cursor=cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
    raise AssertionError("the timeline never ended")


async def test_events_read_back_whole_and_oldest_first_whatever_order_they_came_in(timeline_store):
    # Given two writes, the later events first, with details of several types
    late = [item(5, TimelineEvent.DELIVERED, status_code=200), item(3, TimelineEvent.RETRY_SCHEDULED, delay_s=12)]
    early = [
        item(0, TimelineEvent.RECEIVED, "0.received.envelope", sender="shop"),
        item(1, status_code=503, duration_ms=12.5, outcome="HTTP 503", endpoint="https://r.example/in"),
    ]

    # When
    await timeline_store.append("orders", "m-1", late)
    await timeline_store.append("orders", "m-1", early)

    # Then
    assert await everything(timeline_store, "m-1") == [*early, *reversed(late)]
    assert [event.instance for event in await everything(timeline_store, "m-1")] == ["vm-1"] * 4


async def test_events_of_one_instant_keep_their_keys_order(timeline_store):
    # Given
    same = [item(1, TimelineEvent.DELIVERED, "4.delivered.x"), item(1, key="2.attempt.1.1")]

    # When
    await timeline_store.append("orders", "m-1", same)

    # Then
    assert [event.key for event in await everything(timeline_store, "m-1")] == ["2.attempt.1.1", "4.delivered.x"]


async def test_messages_and_integrations_keep_their_own_timelines(timeline_store):
    # Given the same message id in two integrations, and another message
    await timeline_store.append("orders", "m-1", [item(1)])
    await timeline_store.append("billing", "m-1", [item(2), item(3)])
    await timeline_store.append("orders", "m-10", [item(4)])

    # Then
    assert [event.at for event in await everything(timeline_store, "m-1")] == [BASE + timedelta(seconds=1)]
    assert len((await timeline_store.page("billing", "m-1", limit=10, cursor=None)).items) == 2
    assert (await timeline_store.page("orders", "m-2", limit=10, cursor=None)).items == []


async def test_an_event_written_again_is_kept_once(timeline_store):
    received = item(0, TimelineEvent.RECEIVED, "0.received.envelope")

    await timeline_store.append("orders", "m-1", [received, item(1)])
    await timeline_store.append("orders", "m-1", [received, item(2)])

    assert [event.key for event in await everything(timeline_store, "m-1")].count("0.received.envelope") == 1
    assert len(await everything(timeline_store, "m-1")) == 3


async def test_a_small_limit_pages_through_every_event_once(timeline_store):
    written = [item(seconds) for seconds in range(7)]
    await timeline_store.append("orders", "m-1", written)

    paged = await everything(timeline_store, "m-1", limit=2)

    assert paged == written


async def test_a_write_of_more_than_a_hundred_events_keeps_them_all(timeline_store):
    written = [item(seconds / 10) for seconds in range(130)]

    await timeline_store.append("orders", "m-1", written)

    assert len(await everything(timeline_store, "m-1")) == 130


async def test_a_cursor_the_store_did_not_issue_is_refused(timeline_store):
    await timeline_store.append("orders", "m-1", [item(0), item(1)])

    for cursor in ("nonsense", "eyJhZnRlciI6IDF9", "memory-timeline:x", "eyJhZnRlciI6ICJ4In0"):
        with pytest.raises(BadParameter) as refused:
            await timeline_store.page("orders", "m-1", limit=1, cursor=cursor)
        assert refused.value.details["parameter"] == "cursor"


async def test_the_purge_removes_only_events_older_than_the_cutoff(timeline_store):
    # Given events a day apart in two messages
    await timeline_store.append("orders", "m-1", [item(0), item(86_400), item(2 * 86_400)])
    await timeline_store.append("orders", "m-2", [item(10)])

    # When the events before the second day go
    removed = await timeline_store.purge_before(BASE + timedelta(days=1), limit=100)

    # Then
    assert removed == 2
    assert [event.at for event in await everything(timeline_store, "m-1")] == [
        BASE + timedelta(days=1), BASE + timedelta(days=2)
    ]  # fmt: skip
    assert await everything(timeline_store, "m-2") == []


async def test_the_purge_stops_at_its_limit(timeline_store):
    await timeline_store.append("orders", "m-1", [item(seconds) for seconds in range(5)])

    removed = await timeline_store.purge_before(BASE + timedelta(days=1), limit=3)

    assert removed == 3 and len(await everything(timeline_store, "m-1")) == 2


JOB_A = "8235000000000001-aaaaaaaaaaaa"
JOB_B = "8235000000000002-bbbbbbbbbbbb"
JOB_C = "8235000000000003-cccccccccccc"


async def test_a_jobs_shards_are_summed_and_a_shard_is_replaced_by_its_writer(settle_counts: SettleCounts):
    # Given two shards of job A (one written twice), one of job C, and one of job A in another integration
    await settle_counts.save_shard("orders", JOB_A, "s1", SettleTally(1, 0))
    await settle_counts.save_shard("orders", JOB_A, "s1", SettleTally(3, 1))
    await settle_counts.save_shard("orders", JOB_A, "s2", SettleTally(2, 2))
    await settle_counts.save_shard("orders", JOB_C, "s1", SettleTally(7, 0))
    await settle_counts.save_shard("billing", JOB_A, "s1", SettleTally(100, 100))

    # When / Then
    assert await settle_counts.totals("orders", [JOB_A]) == {JOB_A: SettleTally(5, 3)}
    assert await settle_counts.totals("orders", [JOB_A, JOB_B, JOB_C]) == {
        JOB_A: SettleTally(5, 3), JOB_C: SettleTally(7, 0)
    }  # fmt: skip
    assert await settle_counts.totals("orders", [JOB_B]) == {}
    assert await settle_counts.totals("orders", []) == {}
