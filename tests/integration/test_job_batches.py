"""Jobs remove failures in table transactions: ETag conflicts, counters once per group, concurrency, metrics."""

from __future__ import annotations

import asyncio

import pytest

from shared.failures.models import Failure, FailureOrigin
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.messages.ports import MessageQueue
from shared.operability.metrics import Counter
from shared.services import Services
from shared.storage.failure_table import TableFailureStore
from shared.tokens import Version
from tests.integration.test_jobs import make_service, run_until_done, seed
from tests.support.auth import TESTER
from tests.support.stores import azure_stores, selected_failures
from tests.twins.clock import FakeTime


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


async def rows_of(services: Services, integration: str = "orders") -> list[tuple[Failure, Version | None]]:
    """Every failure of the integration with the version it was read at."""
    return [(item.failure, item.version) for item in await selected_failures(services.stores.failures, integration)]


async def edit_reason(services: Services, failure: Failure, reason: str) -> None:
    """Change the failure's row behind the store's back (an edit racing whoever read it before)."""
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.failures)
    row = await table.get(failure.integration, failure.id)
    assert row is not None
    await table.update({**row, "Reason": reason}, etag=str(row["_etag"]))


async def test_remove_many_deletes_in_transactions_and_uncounts_once_per_group(services, time, monkeypatch):
    # Given 7 failures in two groups
    await seed(services, time, 4, origin=FailureOrigin.ENDPOINT)
    await seed(services, time, 3, origin=FailureOrigin.ENGINE)
    bumps: list[int] = []
    original = TableFailureStore._bump

    async def counting_bump(self, failure, delta):
        bumps.append(delta)
        await original(self, failure, delta)

    monkeypatch.setattr(TableFailureStore, "_bump", counting_bump)

    # When all are removed at once
    removal = await services.stores.failures.remove_many(await rows_of(services))

    # Then every row is gone, each group's counter was written once, and the summary is zero
    assert len(removal.removed) == 7 and removal.gone == [] and removal.changed == []
    assert await rows_of(services) == []
    assert sorted(bumps) == [-4, -3]
    assert (await services.stores.failures.summary("orders")).count == 0
    assert await services.stores.failures.groups("orders") == []


async def test_remove_many_skips_a_row_that_changed_and_removes_the_rest(services, time):
    # Given 5 failures read with their ETags, one of which changes afterwards
    await seed(services, time, 5)
    rows = await rows_of(services)
    changed_failure, _ = rows[2]
    await edit_reason(services, changed_failure, "edited")

    # When they are removed with the ETags read before the change
    removal = await services.stores.failures.remove_many(rows)

    # Then the changed row stays (reported, not lost) and the other four are gone and uncounted
    assert [f.id for f, _ in removal.changed] == [changed_failure.id]
    assert sorted(f.id for f in removal.removed) == sorted(f.id for f, _ in rows if f.id != changed_failure.id)
    assert [f.id for f, _ in await rows_of(services)] == [changed_failure.id]
    assert (await services.stores.failures.summary("orders")).count == 1


async def test_remove_many_reports_rows_someone_else_removed_as_gone(services, time):
    await seed(services, time, 3)
    rows = await rows_of(services)
    await services.stores.failures.remove(rows[0][0])

    removal = await services.stores.failures.remove_many(rows)

    assert [f.id for f in removal.gone] == [rows[0][0].id]
    assert len(removal.removed) == 2
    assert (await services.stores.failures.summary("orders")).count == 0


class ChangesOneRowFirst:
    """The real failure store, but the first remove_many changes one row first (an edit racing the job)."""

    def __init__(self, services: Services, victim_index: int) -> None:
        self._services, self._inner, self._victim_index = services, services.stores.failures, victim_index
        self.victim: str | None = None

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def remove_many(self, items):
        if self.victim is None:
            failure, _ = items[self._victim_index]
            await edit_reason(self._services, failure, "edited")
            self.victim = failure.id
        return await self._inner.remove_many(items)


async def test_delete_job_counts_a_row_changed_mid_page_as_failed_and_leaves_it(services, time):
    await seed(services, time, 6)
    racing = ChangesOneRowFirst(services, victim_index=3)
    service = make_service(services, time, page_size=10, failures=racing)

    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    await run_until_done(services, service, time)

    done = await service.get("orders", job.id, now=time.now())
    assert (done.state, done.processed, done.succeeded, done.failed) == (JobState.COMPLETED, 6, 5, 1)
    assert done.last_error is not None and racing.victim is not None and racing.victim in done.last_error
    assert [f.id for f, _ in await rows_of(services)] == [racing.victim]


class CountingInbound:
    """The real `inbound` queue; its sends are slowed a little and their overlap is measured."""

    def __init__(self, inner: MessageQueue) -> None:
        self._inner = inner
        self.name = inner.name
        self.running = self.most = 0

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)
            await self._inner.send(text, delay_s=delay_s)
        finally:
            self.running -= 1

    async def depth(self) -> int:
        return await self._inner.depth()


async def test_retry_page_enqueues_concurrently_but_bounded_then_counts_items(services, time):
    failures = await seed(services, time, 40)
    inbound = CountingInbound(services.stores.inbound)
    service = make_service(services, time, page_size=40, inbound=inbound)
    before = services.metrics.snapshot().integrations.get("orders")
    items_before = before.since_start.get(Counter.JOB_ITEMS.value, 0) if before else 0

    await service.start(
        "orders", JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    await run_until_done(services, service, time)

    assert 1 < inbound.most <= 16
    assert await rows_of(services) == []
    after = services.metrics.snapshot().integrations["orders"].since_start[Counter.JOB_ITEMS.value]
    assert after - items_before == len(failures)


async def test_a_q_filtered_job_pages_through_matches_only(services, time):
    # Given 9 failures, every third of which mentions "Timeout" in its reason
    failures = await seed(services, time, 9)
    wanted = failures[::3]
    for failure in wanted:
        await edit_reason(services, failure, f"upstream TIMEOUT #{failure.id}")
    service = make_service(services, time, page_size=2)

    selection = JobSelection.model_validate({"filter": {"q": "timeout"}})
    job = await service.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=selection), actor=TESTER, now=time.now()
    )
    await run_until_done(services, service, time)

    done = await service.get("orders", job.id, now=time.now())
    assert (done.state, done.total, done.succeeded) == (JobState.COMPLETED, 3, 3)
    remaining = {f.id for f, _ in await rows_of(services)}
    assert remaining == {f.id for f in failures} - {f.id for f in wanted}
