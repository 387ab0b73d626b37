"""What only the Azure failure table does: a removal of many failures writes each group's counter once.

Everything else a failure store does is in the contract suite (tests/contract), on both backends.
"""

from __future__ import annotations

from datetime import timedelta

from shared.errors import ConcurrencyConflict
from shared.failures.models import Failure, FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from shared.storage.failure_table import TableFailureStore
from shared.values import utc_now
from tests.support.stores import selected_failures


async def test_remove_many_deletes_in_transactions_and_uncounts_once_per_group(services, monkeypatch):
    # Given 7 failures in two groups
    store = services.stores.failures
    now = utc_now()
    for number in range(7):
        origin = FailureOrigin.ENDPOINT if number < 4 else FailureOrigin.ENGINE
        envelope = Envelope(integration="orders", body_text="x")
        failure: Failure = new_failure(
            envelope, origin=origin, reason="HTTP 503", now=now + timedelta(seconds=number), body_ref=envelope.id
        )
        await store.add(failure)
    bumps: list[int] = []
    original = TableFailureStore._bump

    async def counting_bump(self, failure, delta):
        bumps.append(delta)
        await original(self, failure, delta)

    monkeypatch.setattr(TableFailureStore, "_bump", counting_bump)

    # When all are removed at once
    rows = [(item.failure, item.version) for item in await selected_failures(store, "orders")]
    removal = await store.remove_many(rows)

    # Then every row is gone, each group's counter was written once, and the summary is zero
    assert len(removal.removed) == 7 and removal.gone == [] and removal.changed == []
    assert await selected_failures(store, "orders") == []
    assert sorted(bumps) == [-4, -3]
    assert (await store.summary("orders")).count == 0
    assert await store.groups("orders") == []


async def test_a_failure_whose_counter_stays_contended_is_recorded_once_and_the_add_succeeds(services, monkeypatch):
    # Given a summary counter that every writer loses (ETag contention past every retry)
    store = services.stores.failures
    summary = store._summary

    async def always_conflicts(*args, **kwargs):
        raise ConcurrencyConflict("failuresummary: changed since it was read")

    monkeypatch.setattr(summary, "insert", always_conflicts)
    monkeypatch.setattr(summary, "update", always_conflicts)
    envelope = Envelope(integration="contended", body_text="x")
    failure = new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="HTTP 400", now=utc_now(), body_ref="x")

    # When the engine records the failure
    stored = await store.add(failure)

    # Then the add succeeds (the host does not deliver the message again to record it twice), the row is there
    # once, and a rebuild counts it
    assert [item.failure.id for item in await selected_failures(store, "contended")] == [stored.id]
    monkeypatch.undo()
    await store.rebuild_summary("contended")
    assert (await store.summary("contended")).count == 1
