"""Retry and delete jobs on the twins: the lock, paging, checkpoints, cancel, pacing, crashes, the watchdog.

The pacing is asserted on the fake clock's sleeps; tests/integration/test_jobs.py runs two jobs on Azure.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from shared.errors import Conflict, IntegrationNotFound, JobAlreadyActive, JobNotFound, StorageUnavailable
from shared.failures.models import FailureFilter
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.jobs.ports import Checkpoint
from shared.jobs.runner import BACKPRESSURE_DELAY_S
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import envelopes_on, make_jobs, run_job_pages, seed_failures

END = FakeTime().now().replace(year=2100)


def retry_all() -> JobRequest:
    return JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))


def delete_all() -> JobRequest:
    return JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True))


async def remaining_ids(stores: MemoryStores, integration: str = "orders") -> list[str]:
    return [item.failure.id async for item in stores.failures.select(integration, FailureFilter(), not_after=END)]


async def test_retry_all_resends_every_failure_once_and_completes(stores, fake_time):
    # Given 12 failures and a page size of 5
    failures = await seed_failures(stores, fake_time, 12)
    jobs, runner = make_jobs(stores, fake_time)

    # When a retry job runs to the end
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    pages = await run_job_pages(runner, stores, fake_time)

    # Then each message is back on inbound once, with resend_count+1 and counters reset
    sent = envelopes_on(stores)
    assert sorted(e.id for e in sent) == sorted(f.message_id for f in failures)
    assert {e.resend_count for e in sent} == {2}
    assert {(e.engine_attempts, e.delay_actions, e.attempts) for e in sent} == {(0, 0, 0)}
    assert all(e.body_ref for e in sent)
    # And the failures are gone, the job says so, and the integration is free again
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.total, done.processed, done.succeeded, done.failed) == (JobState.COMPLETED, 12, 12, 12, 0)
    assert pages == 3
    assert (await stores.failures.summary("orders")).count == 0
    assert stores.jobs.lock_holder("orders") is None


async def test_a_job_on_an_integration_with_neither_config_nor_failures_is_not_found_and_takes_no_lock(
    stores, fake_time
):
    jobs, runner = make_jobs(stores, fake_time)

    with pytest.raises(IntegrationNotFound) as caught:
        await jobs.start("nobody", retry_all(), actor=TESTER, now=fake_time.now())

    assert caught.value.http_status == 404
    assert await jobs.list("nobody", now=fake_time.now()) == []
    assert stores.jobs.lock_holder("nobody") is None and stores.job_pages.peek() == []


async def test_a_job_on_failures_whose_config_is_gone_is_accepted(stores, fake_time):
    await seed_failures(stores, fake_time, 2, configured=False)

    job = await make_jobs(stores, fake_time).lifecycle.start("orders", delete_all(), actor=TESTER, now=fake_time.now())

    assert (job.state, job.total) == (JobState.QUEUED, 2)


async def test_second_job_while_one_is_active_is_refused_with_its_id(stores, fake_time):
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    first = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())

    with pytest.raises(JobAlreadyActive) as caught:
        await jobs.start("orders", delete_all(), actor=TESTER, now=fake_time.now())

    assert caught.value.details["active_job_id"] == first.id and caught.value.http_status == 409


async def test_twenty_concurrent_starts_admit_exactly_one(stores, fake_time):
    await seed_failures(stores, fake_time, 1)
    jobs, runner = make_jobs(stores, fake_time)

    results = await asyncio.gather(
        *(jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now()) for _ in range(20)),
        return_exceptions=True,
    )

    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, JobAlreadyActive)]
    assert len(started) == 1 and len(refused) == 19
    assert {r.details["active_job_id"] for r in refused} == {started[0].id}
    assert len(stores.job_pages.peek()) == 1


async def test_a_job_whose_first_page_cannot_be_queued_fails_and_frees_the_integration(stores, fake_time):
    # Given the jobs queue unreachable for one send
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    stores.job_pages.arm("send", StorageUnavailable("jobs queue unreachable"))

    # When a job is started
    with pytest.raises(StorageUnavailable):
        await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())

    # Then it is recorded as failed, and the next start takes the lock
    [failed] = await jobs.list("orders", now=fake_time.now())
    assert (failed.state, failed.last_error) == (JobState.FAILED, "could not queue the job")
    second = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    assert stores.jobs.lock_holder("orders") == second.id


async def test_delete_with_a_filter_removes_only_matches_and_their_content(stores, fake_time):
    keep = await seed_failures(stores, fake_time, 3, sender="erp")
    drop = await seed_failures(stores, fake_time, 4, sender="shop")
    jobs, runner = make_jobs(stores, fake_time)

    selection = JobSelection.model_validate({"filter": {"sender": "shop"}})
    job = await jobs.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=selection), actor=TESTER, now=fake_time.now()
    )
    await run_job_pages(runner, stores, fake_time)

    assert set(await remaining_ids(stores)) == {f.id for f in keep}
    assert [await stores.payloads.get(f.body_ref or "") for f in drop] == [None] * 4
    assert None not in [await stores.payloads.get(f.body_ref or "") for f in keep]
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.total, done.succeeded) == (JobState.COMPLETED, 4, 4)
    assert stores.inbound.peek() == []


async def test_ids_selection_handles_exactly_those_and_skips_unknown_ids(stores, fake_time):
    failures = await seed_failures(stores, fake_time, 5)
    jobs, runner = make_jobs(stores, fake_time, page_size=2)
    chosen = [failures[0].id, failures[3].id, "0000000000000000-0000000000ff"]

    job = await jobs.start(
        "orders",
        JobRequest(action=JobAction.DELETE, selection=JobSelection(ids=chosen)),
        actor=TESTER,
        now=fake_time.now(),
    )
    await run_job_pages(runner, stores, fake_time)

    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.total, done.processed, done.succeeded, done.skipped) == (3, 3, 2, 1)
    assert set(await remaining_ids(stores)) == {failures[i].id for i in (1, 2, 4)}


async def test_failures_newer_than_the_job_are_left_alone(stores, fake_time):
    await seed_failures(stores, fake_time, 3)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())

    # A failure arrives after the job was created, before it runs
    fake_time.advance(5)
    [late] = await seed_failures(stores, fake_time, 1)
    await run_job_pages(runner, stores, fake_time)

    assert await remaining_ids(stores) == [late.id]
    assert (await jobs.get("orders", job.id, now=fake_time.now())).succeeded == 3


async def test_cancel_stops_at_the_next_page_boundary(stores, fake_time):
    await seed_failures(stores, fake_time, 10)
    jobs, runner = make_jobs(stores, fake_time, page_size=3)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())

    # When the first page runs, then cancel is requested
    [message] = stores.job_pages.drain()
    await runner.run_page(message.body, message_id=message.id, now=fake_time.now())
    await jobs.cancel("orders", job.id, actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    # Then one page was handled and the rest stays for later
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.processed) == (JobState.CANCELLED, 3)
    assert (await stores.failures.summary("orders")).count == 7
    with pytest.raises(Conflict):
        await jobs.cancel("orders", job.id, actor=TESTER, now=fake_time.now())


async def test_rate_limit_paces_items(stores, fake_time):
    await seed_failures(stores, fake_time, 6)
    jobs, runner = make_jobs(stores, fake_time, page_size=10, rate=2.0)

    await jobs.start("orders", delete_all(), actor=TESTER, now=fake_time.now())
    slept_before = sum(fake_time.sleeps)
    await run_job_pages(runner, stores, fake_time)

    # 6 items at 2/s: batches of 2, the batch of items 4-5 may start 2.5 s in, no earlier
    assert sum(fake_time.sleeps) - slept_before == pytest.approx(2.5)


async def test_backpressure_defers_a_retry_page_while_inbound_is_deep(stores, fake_time):
    await seed_failures(stores, fake_time, 2)
    for _ in range(3):
        await stores.inbound.send("{}")
    jobs, runner = make_jobs(stores, fake_time, depth=2)

    await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    [message] = stores.job_pages.drain()
    outcome = await runner.run_page(message.body, message_id=message.id, now=fake_time.now())

    assert outcome is None
    assert (await stores.failures.summary("orders")).count == 2
    assert stores.job_pages.delays[-1] == BACKPRESSURE_DELAY_S and stores.job_pages.drain() == []
    fake_time.advance(BACKPRESSURE_DELAY_S)
    assert len(stores.job_pages.drain()) == 1


async def test_page_that_crashes_midway_and_reruns_never_resends_what_it_removed(stores, fake_time):
    # Given a retry job whose page crashes after 3 of 5 sends
    failures = await seed_failures(stores, fake_time, 5)
    jobs, runner = make_jobs(stores, fake_time, page_size=5)
    await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    [message] = stores.job_pages.drain()
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"), times=None, after=3)
    with pytest.raises(StorageUnavailable):
        await runner.run_page(message.body, message_id=message.id, now=fake_time.now())

    # When storage is back and the host re-delivers the same message
    stores.inbound.disarm()
    await runner.run_page(message.body, message_id=message.id, now=fake_time.now())

    # Then every message was sent exactly once and every failure is gone
    assert sorted(json.loads(text)["id"] for text in stores.inbound.sent) == sorted(f.message_id for f in failures)
    assert (await stores.failures.summary("orders")).count == 0


async def test_a_removal_refused_after_the_sends_is_tried_again_so_no_message_is_resent_twice(stores, fake_time):
    # Given a retry job whose first removal of the resent failures meets a storage blip (issue 15:
    # "Server disconnected" on the table transaction, after the 100 sends had gone out)
    failures = await seed_failures(stores, fake_time, 5)
    jobs, runner = make_jobs(stores, fake_time, page_size=5)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    stores.failures.arm("remove_many", StorageUnavailable("transaction on failures: ServiceRequestError"), times=2)

    # When the page runs
    await run_job_pages(runner, stores, fake_time)

    # Then the page did not fail and run again: every message went out once, and no failure is left
    assert sorted(json.loads(text)["id"] for text in stores.inbound.sent) == sorted(f.message_id for f in failures)
    done = await jobs.get("orders", job.id, now=fake_time.now())
    assert (done.state, done.succeeded, done.failed) == (JobState.COMPLETED, 5, 0)
    assert await remaining_ids(stores) == []


async def test_duplicate_page_message_does_not_run_a_claimed_page(stores, fake_time):
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    record = await stores.jobs.get("orders", job.id)
    assert record is not None
    await stores.jobs.save(
        record, record.job, Checkpoint(claim="other-message", claimed_at=fake_time.now()), now=fake_time.now()
    )

    outcome = await runner.run_page(
        json.dumps({"integration": "orders", "job_id": job.id}).encode(), message_id="dup", now=fake_time.now()
    )

    assert outcome is None
    assert (await stores.failures.summary("orders")).count == 2


async def test_a_claim_that_lapsed_is_taken_over_by_the_next_page_message(stores, fake_time):
    # Given a page claimed by a message whose host died, longer ago than the claim lasts
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    record = await stores.jobs.get("orders", job.id)
    assert record is not None
    await stores.jobs.save(
        record, record.job, Checkpoint(claim="dead-host", claimed_at=fake_time.now()), now=fake_time.now()
    )
    fake_time.advance(runner.pages.claim_timeout.total_seconds() + 1)

    # When another page message arrives
    ended = await runner.run_page(
        json.dumps({"integration": "orders", "job_id": job.id}).encode(), message_id="next", now=fake_time.now()
    )

    # Then it runs the page
    assert ended is not None and ended.state is JobState.COMPLETED and ended.succeeded == 2


async def test_watchdog_resumes_a_job_whose_page_message_was_lost(stores, fake_time):
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    stores.job_pages.clear()  # the page message is lost

    fake_time.advance(runner.pages.claim_timeout.total_seconds() + 1)
    resumed = await runner.resume_stalled(now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)

    assert resumed == 1
    assert (await jobs.get("orders", job.id, now=fake_time.now())).state is JobState.COMPLETED


async def test_reading_a_stalled_job_resumes_it(stores, fake_time):
    await seed_failures(stores, fake_time, 1)
    jobs, runner = make_jobs(stores, fake_time)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    stores.job_pages.clear()

    fake_time.advance(runner.pages.claim_timeout.total_seconds() + 1)
    await jobs.get("orders", job.id, now=fake_time.now())

    assert len(stores.job_pages.peek()) == 1


async def test_unknown_job_is_not_found(stores, fake_time):
    with pytest.raises(JobNotFound):
        await make_jobs(stores, fake_time).lifecycle.get("orders", "nope", now=fake_time.now())


async def test_cancel_while_a_page_runs_keeps_that_pages_counts(stores, fake_time):
    # Given a delete job whose page is paced by the rate limit
    await seed_failures(stores, fake_time, 6)
    cancelled = False

    async def sleep_then_cancel(seconds: float) -> None:
        # The user presses Cancel while the page is waiting for its rate slot
        nonlocal cancelled
        await fake_time.sleep(seconds)
        if not cancelled:
            cancelled = True
            await jobs.cancel("orders", job.id, actor=TESTER, now=fake_time.now())

    jobs, runner = make_jobs(stores, fake_time, page_size=6, rate=2.0, sleep=sleep_then_cancel)
    job = await jobs.start("orders", delete_all(), actor=TESTER, now=fake_time.now())
    [message] = stores.job_pages.drain()

    # When that page finishes
    ended = await runner.run_page(message.body, message_id=message.id, now=fake_time.now())

    # Then the job is cancelled at the page boundary and the page's work is counted
    assert cancelled and ended is not None
    assert (ended.state, ended.processed, ended.succeeded) == (JobState.CANCELLED, 6, 6)
    stored = await jobs.get("orders", job.id, now=fake_time.now())
    assert (stored.state, stored.processed) == (JobState.CANCELLED, 6)
    assert (await stores.failures.summary("orders")).count == 0
