"""JobStore contract: a job and its integration's lock taken together, versioned saves, listing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.config.models import HttpEndpoint
from shared.errors import ConcurrencyConflict, JobAlreadyActive
from shared.ids import newest_first_id
from shared.jobs.models import Job, JobAction, JobSelection, JobState
from shared.jobs.ports import Checkpoint, JobStore
from shared.tokens import Cursor

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_job(integration: str = "orders", *, at: datetime = BASE, action: JobAction = JobAction.RETRY) -> Job:
    return Job(
        id=newest_first_id(at),
        integration=integration,
        action=action,
        selection=JobSelection.model_validate({"filter": {"sender": "shop"}}),
        created_at=at,
        total=12,
    )


async def test_a_created_job_reads_back_with_a_version_and_an_empty_checkpoint(job_store: JobStore):
    job = make_job()

    await job_store.create(job)
    record = await job_store.get("orders", job.id)

    assert record is not None
    assert record.job == job and record.version
    assert (record.checkpoint.cursor, record.checkpoint.pages, record.checkpoint.claim) == (None, 0, None)
    assert await job_store.get("orders", newest_first_id(BASE)) is None
    assert await job_store.get("billing", job.id) is None


async def test_a_second_job_while_one_holds_the_lock_is_refused_naming_the_holder(job_store: JobStore):
    first = make_job()
    await job_store.create(first)

    with pytest.raises(JobAlreadyActive) as caught:
        await job_store.create(make_job(at=BASE + timedelta(seconds=1), action=JobAction.DELETE))

    assert caught.value.details["active_job_id"] == first.id
    assert [job.id for job in await job_store.list("orders")] == [first.id]


async def test_twenty_concurrent_creates_admit_exactly_one(job_store: JobStore):
    jobs = [make_job(at=BASE + timedelta(milliseconds=i)) for i in range(20)]

    results = await asyncio.gather(*(job_store.create(job) for job in jobs), return_exceptions=True)

    winners = [job for job, result in zip(jobs, results, strict=True) if result is None]
    refused = [result for result in results if isinstance(result, JobAlreadyActive)]
    assert len(winners) == 1 and len(refused) == 19
    assert {r.details["active_job_id"] for r in refused} == {winners[0].id}
    assert [job.id for job in await job_store.list("orders")] == [winners[0].id]


async def test_the_lock_is_per_integration(job_store: JobStore):
    await job_store.create(make_job("orders"))
    await job_store.create(make_job("billing"))

    assert len(await job_store.list("orders")) == len(await job_store.list("billing")) == 1


async def test_save_replaces_the_job_and_its_checkpoint_and_makes_a_new_version(job_store: JobStore):
    # Given a created job
    job = make_job()
    await job_store.create(job)
    record = await job_store.get("orders", job.id)
    assert record is not None

    # When it is saved running, with a checkpoint and a claim
    running = job.model_copy(update={"state": JobState.RUNNING, "started_at": BASE, "processed": 5, "succeeded": 4})
    checkpoint = Checkpoint(Cursor("position-5"), pages=1, claim="message-1", claimed_at=BASE)
    saved = await job_store.save(record, running, checkpoint, now=BASE + timedelta(seconds=2))
    read = await job_store.get("orders", job.id)

    # Then what is read back is what was saved, under the new version
    assert read is not None
    assert read.job == saved.job == running
    assert read.checkpoint == saved.checkpoint == checkpoint
    assert read.updated_at == saved.updated_at == BASE + timedelta(seconds=2)
    assert read.version == saved.version != record.version


async def test_a_save_without_a_claim_clears_the_claim(job_store: JobStore):
    job = make_job()
    await job_store.create(job)
    record = await job_store.get("orders", job.id)
    assert record is not None
    claimed = await job_store.save(record, job, Checkpoint(claim="message-1", claimed_at=BASE), now=BASE)

    await job_store.save(claimed, job, Checkpoint(Cursor("p"), pages=1), now=BASE)

    read = await job_store.get("orders", job.id)
    assert read is not None and (read.checkpoint.claim, read.checkpoint.claimed_at) == (None, None)


async def test_a_save_from_a_stale_read_is_a_conflict_and_changes_nothing(job_store: JobStore):
    # Given one job read twice, both copies with the same version
    job = make_job()
    await job_store.create(job)
    copy_a = await job_store.get("orders", job.id)
    copy_b = await job_store.get("orders", job.id)
    assert copy_a is not None and copy_b is not None

    # When copy A is saved first
    await job_store.save(copy_a, job.model_copy(update={"processed": 1}), copy_a.checkpoint, now=BASE)

    # Then copy B loses, and A's save stands
    with pytest.raises(ConcurrencyConflict):
        await job_store.save(copy_b, job.model_copy(update={"cancel_requested": True}), copy_b.checkpoint, now=BASE)
    read = await job_store.get("orders", job.id)
    assert read is not None and (read.job.processed, read.job.cancel_requested) == (1, False)


async def test_the_lock_row_is_not_a_job(job_store: JobStore):
    await job_store.create(make_job())

    assert await job_store.get("orders", "lock") is None


async def test_jobs_are_listed_newest_first_up_to_the_limit(job_store: JobStore):
    # Given three jobs of one integration, one after the other
    jobs = [make_job(at=BASE + timedelta(minutes=i)) for i in range(3)]
    for job in jobs:
        await job_store.create(job)
        await job_store.release_lock("orders", job.id)

    # When listed
    listed = await job_store.list("orders")
    two = await job_store.list("orders", limit=2)

    # Then newest first, and the limit holds
    assert [job.id for job in listed] == [job.id for job in reversed(jobs)]
    assert [job.id for job in two] == [jobs[2].id, jobs[1].id]
    assert await job_store.list("billing") == []


async def test_only_the_holder_releases_the_lock(job_store: JobStore):
    first = make_job()
    await job_store.create(first)

    await job_store.release_lock("orders", "not-the-holder")
    with pytest.raises(JobAlreadyActive):
        await job_store.create(make_job(at=BASE + timedelta(seconds=1)))

    await job_store.release_lock("orders", first.id)
    await job_store.create(make_job(at=BASE + timedelta(seconds=2)))


async def test_active_lists_the_lock_holders(job_store: JobStore):
    # Given an active job in two integrations, then one of them released
    orders, billing = make_job("orders"), make_job("billing")
    await job_store.create(orders)
    await job_store.create(billing)
    await job_store.release_lock("orders", orders.id)

    # When the active jobs are listed
    active = [record async for record in job_store.active()]

    # Then only billing's job holds a lock
    assert [(record.job.integration, record.job.id) for record in active] == [("billing", billing.id)]
    assert active[0].version


async def test_a_send_elsewhere_target_reads_back_whole(job_store: JobStore):
    # Given a job that sends its selection to another endpoint (issue 19)
    target = {"kind": "http", "url": "https://archive.example/in", "headers": {"Authorization": "%ARCHIVE_TOKEN%"}}
    job = make_job().model_copy(update={"target": HttpEndpoint.model_validate(target)})

    # When it is stored and read back
    await job_store.create(job)
    record = await job_store.get("orders", job.id)

    # Then the target is there, as given
    assert record is not None and record.job.target == job.target
