"""Jobs remove failures in batches on the twins: a row changed mid-page, bounded concurrent resends,
`q` selections, metrics, parking what cannot be resent.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import StorageError, StorageUnavailable
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.ports import Removal
from shared.failures.records import new_failure
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.messages.models import Envelope
from shared.operability.metrics import Counter, Metrics
from shared.recovery.models import ParkedMessage
from shared.recovery.parker import Parker
from shared.tokens import Version
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.failures import MemoryFailureStore
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_jobs, run_job_pages, seed_failures

END = FakeTime().now().replace(year=2100)


def request(action: JobAction, **selection: object) -> JobRequest:
    return JobRequest(action=action, selection=JobSelection.model_validate(selection or {"all": True}))


async def remaining_ids(stores: MemoryStores) -> list[str]:
    return [item.failure.id async for item in stores.failures.select("orders", FailureFilter(), not_after=END)]


class ChangesOneFailureFirst(MemoryFailureStore):
    """The failure twin, but its first `remove_many` finds one failure changed by someone else first."""

    def __init__(self, stores: MemoryStores, victim_index: int) -> None:
        super().__init__(stores.payloads)
        self._victim_index = victim_index
        self.victim: str | None = None

    async def remove_many(self, items: Sequence[tuple[Failure, Version | None]]) -> Removal:
        if self.victim is None:
            failure, _ = items[self._victim_index]
            self.edit(failure, reason="edited meanwhile")
            self.victim = failure.id
        return await super().remove_many(items)


async def test_delete_job_counts_a_failure_changed_mid_page_as_failed_and_leaves_it(fake_time):
    # Given six failures, one of which someone edits while the page removes them
    stores = MemoryStores(fake_time.now)
    racing = ChangesOneFailureFirst(stores, victim_index=3)
    stores.failures = racing
    await seed_failures(stores, fake_time, 6)
    jobs, runner = make_jobs(stores, fake_time, page_size=10)

    # When a delete job runs
    job = await jobs.start("orders", request(JobAction.DELETE), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then the changed one is counted as failed, named in last_error, and left in place
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.processed, done.succeeded, done.failed) == (JobState.COMPLETED, 6, 5, 1)
    assert racing.victim is not None and done.last_error is not None and racing.victim in done.last_error
    assert await remaining_ids(stores) == [racing.victim]


async def test_retry_page_enqueues_concurrently_but_bounded_then_counts_items(stores, fake_time):
    failures = await seed_failures(stores, fake_time, 40)
    metrics = Metrics()
    jobs, runner = make_jobs(stores, fake_time, page_size=40, metrics=metrics)

    await jobs.start("orders", request(JobAction.RETRY), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    assert 1 < stores.inbound.most_in_flight["send"] <= 16
    assert await remaining_ids(stores) == []
    assert metrics.snapshot().integrations["orders"].since_start[Counter.JOB_ITEMS.value] == len(failures)


async def test_a_q_filtered_job_pages_through_matches_only(stores, fake_time):
    # Given 9 failures, every third of which mentions "Timeout" in its reason
    failures = await seed_failures(stores, fake_time, 9)
    wanted = failures[::3]
    for failure in wanted:
        stores.failures.edit(failure, reason=f"upstream TIMEOUT #{failure.id}")
    jobs, runner = make_jobs(stores, fake_time, page_size=2)

    # When a delete job with q runs, two per page
    job = await jobs.start(
        "orders", request(JobAction.DELETE, filter={"q": "timeout"}), actor=TESTER, now=fake_time.now()
    )
    await run_job_pages(runner, stores, fake_time)

    # Then exactly the matches went
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.total, done.succeeded) == (JobState.COMPLETED, 3, 3)
    assert set(await remaining_ids(stores)) == {f.id for f in failures} - {f.id for f in wanted}


async def test_a_delete_whose_content_cannot_be_removed_counts_that_failure_as_failed(stores, fake_time):
    # Given three failures, the content of one of which the payload store refuses to delete
    failures = await seed_failures(stores, fake_time, 3)
    stuck = failures[1]
    stores.payloads.keep(stuck.body_ref or "", StorageError("delete refused"))
    jobs, runner = make_jobs(stores, fake_time)

    # When a delete job runs
    job = await jobs.start("orders", request(JobAction.DELETE), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then every failure is gone, and the one whose content stayed is counted as failed
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.processed, done.succeeded, done.failed) == (3, 2, 1)
    assert await remaining_ids(stores) == []
    assert stores.payloads.refs() == [stuck.body_ref]


async def test_a_retry_job_parks_a_message_it_cannot_enqueue_and_still_completes(stores, fake_time):
    # Given a failure and an inbound queue that is down
    [failure] = await seed_failures(stores, fake_time, 1)
    stores.inbound.arm("send", StorageUnavailable("inbound down"), times=None)
    jobs, runner = make_jobs(stores, fake_time, parker=Parker(stores.recovery, delay_s=0, metrics=Metrics()))

    # When a retry job runs
    job = await jobs.start("orders", request(JobAction.RETRY), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then the message waits on the recovery flow, the failure is gone and the job completed
    assert (await jobs.get("orders", job.id, now=fake_time.now())).state is JobState.COMPLETED
    [parked] = [ParkedMessage.model_validate_json(text) for text in stores.recovery.texts()]
    assert parked.flow == "inbound" and failure.message_id in parked.text
    assert await remaining_ids(stores) == []


async def test_a_retry_resends_the_masked_headers_whole(stores, fake_time):
    # Given a failure whose message carried a credential header (masked when stored)
    envelope = Envelope(integration="orders", body_text="x", headers={"x-api-key": "k-1", "x-trace": "t"})
    await stores.payloads.put(envelope.id, b"x", content_type=None)
    await stores.failures.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="r", now=fake_time.now(), body_ref=envelope.id)
    )
    jobs, runner = make_jobs(stores, fake_time)

    # When it is retried
    await jobs.start("orders", request(JobAction.RETRY), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then the resent message carries the whole value again, and the kept whole values are gone
    [resent] = stores.inbound.drain()
    assert '"x-api-key":"k-1"' in resent.text
    assert not [ref for ref in stores.payloads.refs() if ref.startswith("overflow/")]
