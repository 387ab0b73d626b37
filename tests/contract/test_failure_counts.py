"""FailureStore contract, part 5: the per-group counters behind the overview and the groups panel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from shared.failures.models import FailureOrigin
from shared.failures.ports import FailureStore
from tests.contract.failure_data import BASE, record


async def test_like_failures_share_a_group_counted_largest_first_with_their_time_span(failure_store: FailureStore):
    # Given three endpoint 500s that differ only by order number and request id
    like = [
        await record(
            failure_store, BASE + timedelta(minutes=i), reason=f"Order {n} rejected by erp (request {uuid.uuid4()})"
        )
        for i, n in enumerate([1001, 2002, 30303])
    ]
    # and the same text with another status, another origin, and two ingest failures
    other_status = await record(failure_store, BASE, status=503, reason="Order 1 rejected by erp (request 7f0c)")
    other_origin = await record(
        failure_store, BASE, origin=FailureOrigin.ENGINE, reason=f"Order 1 rejected by erp (request {uuid.uuid4()})"
    )
    for minute in (5, 6):
        await record(
            failure_store, BASE + timedelta(minutes=minute), origin=FailureOrigin.INGEST, status=None, reason="Bad"
        )

    # When the groups are read
    groups = await failure_store.groups("orders")

    # Then the like-failures are one group of 3, largest first, with their time span and one of their reasons
    assert [g.count for g in groups] == [3, 2, 1, 1]
    top = groups[0]
    assert (top.group, top.origin, top.status_code) == (like[0].group, FailureOrigin.ENDPOINT, 500)
    assert (top.first_failed_at, top.last_failed_at) == (like[0].failed_at, like[-1].failed_at)
    assert top.sample_reason in {f.reason for f in like}
    assert {other_status.group, other_origin.group}.isdisjoint({like[0].group})
    # Groups of one count are ordered by group (a stable order for equal counts)
    assert [g.group for g in groups[2:]] == sorted(g.group for g in groups[2:])


async def test_summary_counts_by_origin_with_the_first_and_last_failure(failure_store: FailureStore):
    await record(failure_store, BASE)
    await record(failure_store, BASE + timedelta(minutes=10), reason="HTTP 500 for order 2")
    await record(failure_store, BASE + timedelta(minutes=3), origin=FailureOrigin.ENGINE)

    summary = await failure_store.summary("orders")
    nothing = await failure_store.summary("billing")

    assert (summary.integration, summary.count, summary.by_origin) == ("orders", 3, {"endpoint": 2, "engine": 1})
    assert (summary.first_failed_at, summary.last_failed_at) == (BASE, BASE + timedelta(minutes=10))
    assert (nothing.count, nothing.first_failed_at, nothing.last_failed_at, nothing.by_origin) == (0, None, None, {})


async def test_overview_counts_per_integration_most_recent_failure_first(failure_store: FailureStore):
    # Given failures in three integrations, the most recent one in billing, and one whose only failure went
    await record(failure_store, BASE, integration="orders")
    await record(failure_store, BASE + timedelta(minutes=10), integration="orders", reason="HTTP 500 for order 2")
    await record(failure_store, BASE + timedelta(minutes=20), integration="billing", origin=FailureOrigin.INGEST)
    await record(failure_store, BASE - timedelta(minutes=5), integration="crm")
    gone = await record(failure_store, BASE + timedelta(minutes=30), integration="hr")
    assert await failure_store.remove(gone) is True

    # When the overview is read
    overview = await failure_store.overview()

    # Then each integration with failures has its count, most recent failure first; hr has none left
    assert [(s.integration, s.count) for s in overview] == [("billing", 1), ("orders", 2), ("crm", 1)]
    assert overview[1].by_origin == {"endpoint": 2}
    assert "hr" not in {s.integration for s in overview}


async def test_integrations_lists_every_integration_with_failures(failure_store: FailureStore):
    await record(failure_store, BASE, integration="orders")
    await record(failure_store, BASE, integration="billing")

    assert set(await failure_store.integrations()) >= {"orders", "billing"}
    assert await failure_store.integrations() == sorted(await failure_store.integrations())


async def test_concurrent_failures_are_each_counted_once(failure_store: FailureStore):
    # Given 20 failures of one group recorded at the same moment
    await asyncio.gather(*(record(failure_store, BASE) for _ in range(20)))

    # Then the counters hold each exactly once
    assert (await failure_store.summary("orders")).count == 20
    assert [g.count for g in await failure_store.groups("orders")] == [20]


async def test_rebuild_recounts_from_the_failures_after_a_purge(failure_store: FailureStore):
    # Given five failures in two groups, two of them old enough to purge
    for minute in range(3):
        await record(failure_store, BASE + timedelta(days=10, minutes=minute))
    for minute in range(2):
        await record(failure_store, BASE + timedelta(minutes=minute), origin=FailureOrigin.ENGINE)
    await failure_store.purge_older_than("orders", BASE + timedelta(days=1), limit=10)

    # When the counters are rebuilt (the purge's caller does this)
    rebuilt = await failure_store.rebuild_summary("orders")

    # Then they count what is left, as the summary and groups then say too
    assert (rebuilt.count, rebuilt.by_origin) == (3, {"endpoint": 3})
    assert (rebuilt.first_failed_at, rebuilt.last_failed_at) == (
        BASE + timedelta(days=10),
        BASE + timedelta(days=10, minutes=2),
    )
    assert (await failure_store.summary("orders")).count == 3
    assert [g.count for g in await failure_store.groups("orders")] == [3]


async def test_rebuilding_an_integration_with_no_failures_left_empties_its_counters(failure_store: FailureStore):
    await record(failure_store, BASE)
    await failure_store.purge_older_than("orders", BASE + timedelta(days=1), limit=10)

    rebuilt = await failure_store.rebuild_summary("orders")

    assert rebuilt.count == 0
    assert await failure_store.groups("orders") == []
    assert "orders" not in {s.integration for s in await failure_store.overview()}
