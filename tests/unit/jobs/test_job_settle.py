"""Whether a retry worked (issue 19): a retry job's resent messages counted as the engine settles them, on the
twins. Resent is not success: a message that fails again counts as `failed_again`."""

from __future__ import annotations

import asyncio

from shared.delivery.engine import Delivered, FailureRecorded
from shared.errors import StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.failures.records import new_failure
from shared.jobs.models import Job, JobAction, JobRequest, JobSelection
from shared.jobs.ports import SettleTally
from shared.jobs.settle import JobSettleCounter, with_settled
from shared.messages.models import Envelope
from tests.support.auth import TESTER
from tests.twins.senders import ScriptedSender, ok, status
from tests.unit.on_twins import make_engine, make_jobs, run_inbound, run_job_pages, seed_failures

JOB = "0000000000000001-aaaaaaaaaaaa"


def retry_all() -> JobRequest:
    return JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))


async def test_a_retry_jobs_messages_that_fail_again_count_as_failed_again_not_success(stores, fake_time):
    # Given 6 failures, and a receiver that still refuses them
    await seed_failures(stores, fake_time, 6)
    jobs, runner = make_jobs(stores, fake_time)
    counter = JobSettleCounter(stores.settle_counts)

    # When a retry job resends them all and the engine settles them
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    resent = await jobs.get("orders", job.id, now=fake_time.now())
    await run_inbound(
        make_engine(stores, fake_time, ScriptedSender([status(400)]), observers=[counter]), stores, fake_time
    )

    # Then the job says: resent 6, then all 6 failed again, none delivered, none pending
    assert (resent.resent, resent.delivered, resent.failed_again, resent.pending) == (6, 0, 0, 6)
    settled = await jobs.get("orders", job.id, now=fake_time.now())
    assert (settled.resent, settled.delivered, settled.failed_again, settled.pending) == (6, 0, 6, 0)
    # And the same in the list
    [listed] = await jobs.list("orders", now=fake_time.now())
    assert (listed.delivered, listed.failed_again, listed.pending) == (0, 6, 0)


async def test_a_retry_jobs_messages_delivered_count_as_delivered(stores, fake_time):
    # Given 4 failures, and a receiver that takes them now
    await seed_failures(stores, fake_time, 4)
    jobs, runner = make_jobs(stores, fake_time)
    counter = JobSettleCounter(stores.settle_counts)

    # When retried and delivered
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    await run_inbound(make_engine(stores, fake_time, ScriptedSender([ok()]), observers=[counter]), stores, fake_time)

    # Then
    settled = await jobs.get("orders", job.id, now=fake_time.now())
    assert (settled.resent, settled.delivered, settled.failed_again, settled.pending) == (4, 4, 0, 0)


async def test_a_copy_dropped_as_a_duplicate_of_a_delivered_message_counts_as_delivered_not_pending(stores, fake_time):
    # Given one message with two failure rows (sent twice upstream), one content blob, and a receiver that takes it
    [failure] = await seed_failures(stores, fake_time, 1)
    twin_id = failure.id[:-1] + ("1" if failure.id.endswith("0") else "0")
    await stores.failures.add(failure.model_copy(update={"id": twin_id}))
    jobs, runner = make_jobs(stores, fake_time)
    counter = JobSettleCounter(stores.settle_counts)

    # When one Retry-all resends both rows and the engine settles them
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    sender = ScriptedSender([ok()])
    await run_inbound(make_engine(stores, fake_time, sender, observers=[counter]), stores, fake_time)

    # Then the receiver has it once, and the job says both settled as delivered, nothing pending
    assert len(sender.sent) == 1
    settled = await jobs.get("orders", job.id, now=fake_time.now())
    assert (settled.resent, settled.delivered, settled.failed_again, settled.pending) == (2, 2, 0, 0)


async def test_messages_still_retrying_stay_pending(stores, fake_time):
    # Given 3 failures retried, and a receiver answering 503 (engine retries follow, nothing settles yet)
    await seed_failures(stores, fake_time, 3)
    jobs, runner = make_jobs(stores, fake_time)
    counter = JobSettleCounter(stores.settle_counts)
    job = await jobs.start("orders", retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    engine = make_engine(stores, fake_time, ScriptedSender([status(503)]), observers=[counter])

    # When the engine takes each resent message once
    for message in stores.inbound.drain():
        await engine.process_message(message.body, queue_message_id=message.id)

    # Then all three are still pending
    settled = await jobs.get("orders", job.id, now=fake_time.now())
    assert (settled.resent, settled.delivered, settled.failed_again, settled.pending) == (3, 0, 0, 3)
    assert stores.settle_counts.calls["save_shard"] == 0


async def test_two_instances_count_into_their_own_shards_and_a_read_sums_them(stores, fake_time):
    # Given two instances' counters
    first, second = JobSettleCounter(stores.settle_counts), JobSettleCounter(stores.settle_counts)
    envelope = Envelope(integration="orders", body_text="{}", job_id=JOB)
    failure = new_failure(
        envelope, origin=FailureOrigin.ENDPOINT, reason="HTTP 400", now=fake_time.now(), body_ref=None
    )

    # When both settle messages of the same job at the same time
    await asyncio.gather(
        *(first.observe(envelope, Delivered(attempts=1, status_code=200)) for _ in range(5)),
        *(second.observe(envelope, Delivered(attempts=1, status_code=200)) for _ in range(3)),
        *(second.observe(envelope, FailureRecorded(failure=failure, persisted=True)) for _ in range(2)),
    )

    # Then each kept its own shard, and the totals are exact
    totals = await stores.settle_counts.totals("orders", [JOB])
    assert (totals[JOB].delivered, totals[JOB].failed_again) == (8, 2)
    assert stores.settle_counts.shards("orders", JOB) == 2


async def test_concurrent_settles_on_one_instance_share_writes(stores, fake_time):
    counter = JobSettleCounter(stores.settle_counts)
    envelope = Envelope(integration="orders", body_text="{}", job_id=JOB)

    await asyncio.gather(*(counter.observe(envelope, Delivered(attempts=1, status_code=200)) for _ in range(20)))

    assert (await stores.settle_counts.totals("orders", [JOB]))[JOB].delivered == 20
    assert stores.settle_counts.calls["save_shard"] < 20
    assert stores.settle_counts.most_in_flight["save_shard"] == 1


async def test_a_count_that_could_not_be_written_goes_with_the_next_one(stores, fake_time):
    # Given a counter whose first write fails
    counter = JobSettleCounter(stores.settle_counts)
    envelope = Envelope(integration="orders", body_text="{}", job_id=JOB)
    stores.settle_counts.arm("save_shard", StorageUnavailable("table down"))

    # When two messages settle, one during the outage
    await counter.observe(envelope, Delivered(attempts=1, status_code=200))
    await counter.observe(envelope, Delivered(attempts=1, status_code=200))

    # Then both are counted
    assert (await stores.settle_counts.totals("orders", [JOB]))[JOB].delivered == 2


async def test_messages_without_a_job_and_delete_jobs_count_nothing(stores, fake_time):
    # Given
    counter = JobSettleCounter(stores.settle_counts)
    await seed_failures(stores, fake_time, 2)
    jobs, runner = make_jobs(stores, fake_time)

    # When a message that no job resent is delivered, and a delete job runs
    await counter.observe(Envelope(integration="orders", body_text="{}"), Delivered(attempts=1, status_code=200))
    job = await jobs.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER,
        now=fake_time.now(),
    )  # fmt: skip
    await run_job_pages(runner, stores, fake_time)

    # Then nothing was written, and the delete job shows no settle counters
    assert stores.settle_counts.calls["save_shard"] == 0
    deleted = await jobs.get("orders", job.id, now=fake_time.now())
    assert (deleted.resent, deleted.delivered, deleted.failed_again, deleted.pending) == (None, None, None, None)


def test_copies_settled_twice_never_show_more_than_the_job_resent() -> None:
    # Given a retry job that resent 100 messages, whose page was sent twice (a lost removal, issue 15)
    job = Job.model_validate(
        {
            "id": "0000000000000001-aaaaaaaaaaaa", "integration": "orders", "action": "retry",
            "selection": {"all": True}, "state": "completed", "succeeded": 100,
            "created_at": "2026-11-30T12:00:00Z",
        }
    )  # fmt: skip

    # When every message was delivered once and its copy dropped as a duplicate (both count as delivered)
    shown = with_settled(job, SettleTally(delivered=200))

    # Then the card says 100 delivered of 100 resent, nothing pending
    assert (shown.resent, shown.delivered, shown.failed_again, shown.pending) == (100, 100, 0, 0)
    # And two copies of one message that both failed count one failure, beside a delivery of a third
    shown = with_settled(job.model_copy(update={"succeeded": 2}), SettleTally(delivered=1, failed_again=2))
    assert (shown.delivered, shown.failed_again, shown.pending) == (1, 1, 0)
