"""FailureStore contract, part 3: the frozen selection a job works through, and counting by reading."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import BadParameter
from shared.failures.models import FailureFilter
from shared.failures.ports import FailureStore
from shared.tokens import Cursor
from tests.contract.backends import Backend
from tests.contract.failure_data import BASE, END, record

# --- select and count ---------------------------------------------------------------------------


async def test_select_takes_nothing_newer_than_not_after_and_resumes_after_a_position(failure_store: FailureStore):
    # Given six failures a minute apart
    seeded = [await record(failure_store, BASE + timedelta(minutes=i)) for i in range(6)]
    not_after = BASE + timedelta(minutes=4)

    # When the selection up to minute 4 is read three at a time, resuming after the last position
    first = [item async for item in failure_store.select("orders", FailureFilter(), not_after=not_after, limit=3)]
    rest = [
        item
        async for item in failure_store.select("orders", FailureFilter(), not_after=not_after, after=first[-1].position)
    ]

    # Then minute 5 is left out (minute 4 itself is in), and the two reads cover the rest once, newest first
    assert [item.failure.id for item in first + rest] == [f.id for f in reversed(seeded[:5])]
    assert len(first) == 3 and all(item.version for item in first + rest)


async def test_a_q_selection_read_a_few_at_a_time_resumes_after_its_last_match(failure_store: FailureStore):
    # Given ten failures, every third of which times out
    seeded = [
        await record(failure_store, BASE + timedelta(seconds=i), reason="timeout" if i % 3 == 0 else f"HTTP 500 #{i}")
        for i in range(10)
    ]
    selection = FailureFilter(q="TIMEOUT")

    # When the selection is read two at a time, each read resuming after the previous one's last position
    ids: list[str] = []
    after: Cursor | None = None
    for _ in range(5):
        batch = [item async for item in failure_store.select("orders", selection, not_after=END, after=after, limit=2)]
        ids += [item.failure.id for item in batch]
        if len(batch) < 2:
            break
        after = batch[-1].position

    # Then every match came once, newest first
    assert ids == [f.id for f in reversed(seeded) if f.reason == "timeout"]


async def test_count_with_not_after_leaves_out_newer_failures(failure_store: FailureStore):
    for minute in range(5):
        await record(failure_store, BASE + timedelta(minutes=minute))

    assert await failure_store.count("orders", FailureFilter()) == 5
    assert await failure_store.count("orders", FailureFilter(), not_after=BASE + timedelta(minutes=2)) == 3
    assert await failure_store.count("billing", FailureFilter()) == 0


async def test_a_selection_position_the_store_did_not_issue_is_refused(backend: Backend):
    store = backend.stores.failures
    await record(store, BASE)

    with pytest.raises(BadParameter):
        [item async for item in store.select("orders", FailureFilter(), not_after=END, after=Cursor("garbage"))]
