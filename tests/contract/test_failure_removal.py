"""FailureStore contract, part 4: removing failures (versions, batches, the retention purge) and the
whole values of masked fields."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.errors import ConcurrencyConflict
from shared.failures.models import FailureFilter, FailureOrigin
from shared.failures.ports import FailureStore
from shared.messages.ports import PayloadStore
from shared.sensitive import MASK
from tests.contract.backends import Backend
from tests.contract.failure_data import BASE, END, record


async def test_remove_with_the_version_read_removes_and_uncounts(failure_store: FailureStore):
    # Given two like-failures, one read with its version
    first = await record(failure_store, BASE, reason="HTTP 500 for order 1")
    await record(failure_store, BASE + timedelta(seconds=1), reason="HTTP 500 for order 2")
    found = await failure_store.get("orders", first.id)
    assert found is not None

    # When it is removed with that version
    removed = await failure_store.remove(first, version=found.version)

    # Then it is gone and its group counts one
    assert removed is True
    assert await failure_store.get("orders", first.id) is None
    assert [g.count for g in await failure_store.groups("orders")] == [1]
    assert (await failure_store.summary("orders")).count == 1


async def test_remove_with_a_stale_version_is_a_conflict_and_keeps_the_failure(backend: Backend):
    # Given a failure read, then changed by someone else
    store = backend.stores.failures
    failure = await record(store, BASE)
    found = await store.get("orders", failure.id)
    assert found is not None
    await backend.edit_reason(failure, "edited meanwhile")

    # When it is removed with the version read before the change
    with pytest.raises(ConcurrencyConflict):
        await store.remove(failure, version=found.version)

    # Then it is still there, still counted, with the other's change and a new version
    again = await store.get("orders", failure.id)
    assert again is not None and again.failure.reason == "edited meanwhile" and again.version != found.version
    assert (await store.summary("orders")).count == 1


async def test_removing_a_failure_that_is_already_gone_is_false_and_uncounts_nothing(backend: Backend):
    # Given two like-failures, one of them removed
    store = backend.stores.failures
    first = await record(store, BASE, reason="HTTP 500 for order 1")
    await record(store, BASE + timedelta(seconds=1), reason="HTTP 500 for order 2")
    assert await store.remove(first) is True

    # When it is removed again
    again = await store.remove(first)

    # Then nothing happened: False, and the group still counts the other one
    assert again is False
    assert (await store.summary("orders")).count == 1


async def test_remove_many_sorts_each_failure_into_removed_gone_or_changed(backend: Backend):
    # Given five failures read with their versions; then one is removed and one changed by someone else
    store = backend.stores.failures
    for second in range(5):
        await record(store, BASE + timedelta(seconds=second))
    items = [(item.failure, item.version) async for item in store.select("orders", FailureFilter(), not_after=END)]
    gone, changed = items[0][0], items[2][0]
    assert await store.remove(gone) is True
    await backend.edit_reason(changed, "edited meanwhile")

    # When all five are removed with the versions read before
    removal = await store.remove_many(items)

    # Then the removed one is gone, the changed one stays (reported with its conflict), the rest are removed
    assert [f.id for f in removal.gone] == [gone.id]
    assert [f.id for f, _ in removal.changed] == [changed.id]
    assert isinstance(removal.changed[0][1], ConcurrencyConflict)
    assert sorted(f.id for f in removal.removed) == sorted(f.id for f, _ in items if f.id not in {gone.id, changed.id})
    remaining = [item.failure.id async for item in store.select("orders", FailureFilter(), not_after=END)]
    assert remaining == [changed.id]
    assert (await store.summary("orders")).count == 1


async def test_remove_many_uncounts_each_group_by_its_removed_failures(failure_store: FailureStore):
    # Given seven failures in two groups and one of a third that stays
    for second in range(4):
        await record(failure_store, BASE + timedelta(seconds=second), origin=FailureOrigin.ENDPOINT)
    for second in range(3):
        await record(failure_store, BASE + timedelta(seconds=10 + second), origin=FailureOrigin.ENGINE)
    kept = await record(failure_store, BASE + timedelta(seconds=20), origin=FailureOrigin.INGEST, status=None)
    items = [
        (item.failure, item.version)
        async for item in failure_store.select("orders", FailureFilter(), not_after=END)
        if item.failure.id != kept.id
    ]

    # When the seven are removed at once
    removal = await failure_store.remove_many(items)

    # Then both groups are uncounted to zero and only the third remains
    assert len(removal.removed) == 7 and removal.gone == [] and removal.changed == []
    assert [(g.group, g.count) for g in await failure_store.groups("orders")] == [(kept.group, 1)]
    assert (await failure_store.summary("orders")).by_origin == {"ingest": 1}


async def test_remove_many_removes_failures_of_several_integrations(failure_store: FailureStore):
    orders = await record(failure_store, BASE)
    billing = await record(failure_store, BASE, integration="billing")

    removal = await failure_store.remove_many([(orders, None), (billing, None)])

    assert sorted(f.id for f in removal.removed) == sorted([orders.id, billing.id])
    assert [(await failure_store.summary(name)).count for name in ("orders", "billing")] == [0, 0]
    assert await failure_store.get("billing", billing.id) is None


async def test_remove_many_takes_more_than_one_batch(failure_store: FailureStore):
    # Given more failures than one atomic batch removes
    total = failure_store.max_batch + 5
    for number in range(total):
        await record(failure_store, BASE + timedelta(milliseconds=number))
    items = [
        (item.failure, item.version) async for item in failure_store.select("orders", FailureFilter(), not_after=END)
    ]

    # When they are all removed
    removal = await failure_store.remove_many(items)

    # Then every one is removed and uncounted
    assert len(removal.removed) == total
    assert await failure_store.count("orders", FailureFilter()) == 0
    assert (await failure_store.summary("orders")).count == 0


# --- retention purge ------------------------------------------------------------------------------


async def test_purge_removes_at_most_limit_failures_older_than_the_cutoff_with_their_content_refs(
    failure_store: FailureStore,
):
    # Given seven old failures with content, one exactly at the cutoff, one newer, and an old one elsewhere
    cutoff = BASE + timedelta(days=7)
    old = [await record(failure_store, BASE + timedelta(minutes=i), body_ref=f"m-{i}") for i in range(7)]
    newer = await record(failure_store, cutoff + timedelta(seconds=1))
    other = await record(failure_store, BASE, integration="billing")

    # When purged with a limit of 5, then again
    first = await failure_store.purge_older_than("orders", cutoff, limit=5)
    second = await failure_store.purge_older_than("orders", cutoff, limit=5)

    # Then five went, then the other two, each with its content ref; newer failures and other integrations stay
    assert len(first) == 5 and len(second) == 2
    assert sorted(ref for refs in first + second for ref in refs) == sorted(f"m-{i}" for i in range(7))
    remaining = [item.failure.id async for item in failure_store.select("orders", FailureFilter(), not_after=END)]
    assert remaining == [newer.id]
    assert await failure_store.get("billing", other.id) is not None
    assert [await failure_store.get("orders", f.id) for f in old] == [None] * 7


async def test_purge_keeps_a_failure_from_exactly_the_cutoff(backend: Backend):
    store = backend.stores.failures
    at_cutoff = await record(store, BASE)

    purged = await store.purge_older_than("orders", BASE, limit=10)

    assert purged == []
    assert await store.get("orders", at_cutoff.id) is not None


# --- masked values kept whole for a resend -------------------------------------------------------


async def test_credential_headers_are_masked_when_stored_and_restored_whole_for_a_resend(
    failure_store: FailureStore, payload_store: PayloadStore
):
    # Given a failure whose message carried a token and an ordinary header
    headers = {"x-auth-token": "s3cret", "x-trace": "t-1"}
    stored = await record(failure_store, BASE, body_ref="m-1", headers=headers)

    # When it is read back and restored
    found = await failure_store.get("orders", stored.id)
    assert found is not None
    restored = await failure_store.restore(found.failure)

    # Then what is shown is masked and says so; the resend gets the whole values
    assert found.failure.headers == {"x-auth-token": MASK, "x-trace": "t-1"}
    assert found.failure.overflow == ["headers"] and stored == found.failure
    assert restored.headers == headers and restored.overflow == []
    # And the whole values are content of the failure: kept in the payload store beside the body
    overflow = failure_store.overflow_ref(found.failure)
    assert overflow is not None and failure_store.content_refs(found.failure) == ["m-1", overflow]
    assert await payload_store.get(overflow) is not None
    # And purging the failure hands back both refs for the caller to delete
    assert await failure_store.purge_older_than("orders", BASE + timedelta(days=1), limit=10) == [["m-1", overflow]]


async def test_a_failure_without_masked_values_restores_as_it_is(failure_store: FailureStore):
    failure = await record(failure_store, BASE, body_ref="m-1", headers={"x-trace": "t-1"})

    assert failure_store.overflow_ref(failure) is None
    assert failure_store.content_refs(failure) == ["m-1"]
    assert await failure_store.restore(failure) == failure
