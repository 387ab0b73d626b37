"""The recovery sweep on the twins: reinsert, give up, pause, skip while unhealthy, status, job pages, leases.

tests/integration/test_recovery.py keeps what needs Azure: overlapping sweeps on real leases,
parking with dead storage, a large body on the Storage flow.
"""

from __future__ import annotations

import base64
import json

import pytest

from shared.errors import StorageUnavailable
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.records import new_failure
from shared.jobs.models import JobAction, JobRequest, JobSelection, JobState
from shared.jobs.ports import JobControl
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.messages.wire import pack
from shared.operability.metrics import Metrics
from shared.recovery.parker import Parker
from shared.recovery.sweeper import SWEEP_LEASE_S, RecoverySweeper
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.recovery import MemoryRecoveryFlow
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import audit_on, envelopes_on, make_jobs

END = FakeTime().now().replace(year=2100)
MAX_REINSERTS = 2


def make_sweeper(
    stores: MemoryStores, time: FakeTime, jobs: JobControl, *, batch_size: int = 500, depth: int = 1000
) -> RecoverySweeper:
    return RecoverySweeper(
        flow=stores.recovery,
        poison=stores.poison,
        inbound=InboundShards(stores.inbound_shards),
        job_pages=stores.job_pages,
        payloads=stores.payloads,
        failures=stores.failures,
        jobs=jobs,
        state=stores.sweep_state,
        main_flow=stores.main_flow,
        max_reinserts=MAX_REINSERTS,
        batch_size=batch_size,
        max_inbound_depth=depth,
        metrics=Metrics(),
        audit=audit_on(stores, time),
        clock=time.now,
    )


@pytest.fixture
def parker(stores, fake_time) -> Parker:
    return Parker(stores.recovery, delay_s=0, metrics=Metrics(), clock=fake_time.now)


@pytest.fixture
def sweeper(stores, fake_time) -> RecoverySweeper:
    return make_sweeper(stores, fake_time, make_jobs(stores, fake_time).runner)


async def failures_of(stores: MemoryStores, integration: str = "orders") -> list[Failure]:
    return [item.failure async for item in stores.failures.select(integration, FailureFilter(), not_after=END)]


async def test_parked_message_is_reinserted_with_recovery_count_plus_one(stores, parker, sweeper):
    # Given a message parked on the recovery flow
    envelope = Envelope(integration="orders", body_text='{"n": 1}')
    await parker.park_envelope(envelope, "ingest: inbound unreachable")

    # When the sweep runs
    result = await sweeper.sweep(trigger="manual")

    # Then it is back on inbound once, counted, and the recovery flow is empty
    [back] = envelopes_on(stores)
    assert (back.id, back.recovery_count, back.body_text) == (envelope.id, 1, '{"n": 1}')
    assert (result.healthy, result.reinserted, result.by_queue) == (True, 1, {"recovery": 1})
    assert stores.recovery.texts() == []


async def test_a_parked_message_waits_for_its_park_delay(stores, fake_time, sweeper):
    await Parker(stores.recovery, delay_s=30, metrics=Metrics()).park_envelope(
        Envelope(integration="orders", body_text="x"), "test"
    )

    early = await sweeper.sweep(trigger="timer")
    fake_time.advance(30)
    late = await sweeper.sweep(trigger="timer")

    assert (early.reinserted, late.reinserted) == (0, 1)


async def test_a_large_parked_body_waits_beside_the_flow_and_comes_back_by_reference(stores, parker, sweeper):
    # Given a body too large to park inline
    body = b"\x02" * (stores.recovery.max_text_bytes + 1)
    envelope = Envelope(integration="orders", body_b64=base64.b64encode(body).decode())

    # When it is parked, then swept
    await parker.park_envelope(envelope, "ingest: inbound unreachable")
    kept_beside = stores.recovery.bodies()
    await sweeper.sweep(trigger="manual")

    # Then it waited beside the flow, and is back on inbound by reference to the main payload store
    assert kept_beside == {envelope.id: body}
    [back] = envelopes_on(stores)
    assert back.body_ref == envelope.id
    stored = await stores.payloads.get(envelope.id)
    assert stored is not None and stored.data == body
    assert stores.recovery.bodies() == {}


async def test_a_body_too_large_for_a_flow_that_keeps_no_bodies_cannot_be_parked(fake_time):
    flow = MemoryRecoveryFlow(fake_time.now, backend="servicebus", max_text_bytes=1024)
    envelope = Envelope(integration="orders", body_text="x" * 2048)

    with pytest.raises(StorageUnavailable):
        await Parker(flow, delay_s=0, metrics=Metrics()).park_envelope(envelope, "test")

    assert flow.texts() == []


async def test_poisoned_inbound_message_is_reinserted(stores, sweeper):
    _, text = await pack(Envelope(integration="orders", body_text="x", recovery_count=1), stores.payloads)
    stores.inbound_poison.put(text)

    result = await sweeper.sweep(trigger="timer")

    [back] = envelopes_on(stores)
    assert back.recovery_count == 2
    assert result.by_queue == {"inbound-poison": 1}


async def test_past_the_reinsert_limit_a_message_becomes_a_catastrophic_failure_with_its_content(
    stores, parker, sweeper
):
    await parker.park_envelope(
        Envelope(integration="orders", body_text='{"n": 9}', recovery_count=MAX_REINSERTS), "engine: table down"
    )

    result = await sweeper.sweep(trigger="manual")

    assert (result.reinserted, result.gave_up) == (0, 1)
    assert envelopes_on(stores) == []
    [failure] = await failures_of(stores)
    assert failure.origin is FailureOrigin.CATASTROPHIC
    assert f"gave up after {MAX_REINSERTS} reinserts" in failure.reason
    content = await stores.payloads.get(failure.body_ref or "")
    assert content is not None and content.data == b'{"n": 9}'


async def test_unreadable_poison_message_becomes_an_ingest_failure(stores, sweeper):
    stores.inbound_poison.put("not an envelope at all")

    result = await sweeper.sweep(trigger="manual")

    assert result.gave_up == 1
    [failure] = await failures_of(stores, "_unknown")
    assert failure.origin is FailureOrigin.INGEST
    content = await stores.payloads.get(failure.body_ref or "")
    assert content is not None and content.data == b"not an envelope at all"


async def test_a_sweep_moves_at_most_its_batch_size(stores, fake_time, parker):
    for number in range(12):
        await parker.park_envelope(Envelope(integration="orders", body_text=str(number)), "test")

    result = await make_sweeper(stores, fake_time, make_jobs(stores, fake_time).runner, batch_size=5).sweep(
        trigger="timer"
    )

    assert result.reinserted == 5
    assert (await stores.recovery.status()).count == 7


async def test_sweep_pauses_while_inbound_is_deep(stores, fake_time, parker):
    for _ in range(3):
        await stores.inbound.send("{}")
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")

    result = await make_sweeper(stores, fake_time, make_jobs(stores, fake_time).runner, depth=2).sweep(trigger="timer")

    assert result.reinserted == 0
    assert result.reason is not None and "backpressure" in result.reason
    assert len(stores.recovery.texts()) == 1


async def test_sweep_does_nothing_while_the_main_flow_is_unhealthy(stores, parker, sweeper):
    # Given a parked message and a main flow that cannot take it back
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")
    stores.main_flow.problem = StorageUnavailable("queue write refused")

    # When the sweep runs
    result = await sweeper.sweep(trigger="timer")

    # Then it moved nothing and says why, and the next sweep after recovery moves it
    assert not result.healthy and "main storage unhealthy" in (result.reason or "")
    assert len(stores.recovery.texts()) == 1
    stores.main_flow.problem = None
    assert (await sweeper.sweep(trigger="timer")).reinserted == 1


async def test_a_message_whose_move_failed_stays_and_the_next_sweep_moves_it(stores, fake_time, parker, sweeper):
    # Given a parked message, and inbound refusing one send
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"))

    # When the sweep runs, then again once its lease has lapsed
    first = await sweeper.sweep(trigger="timer")
    while_leased = await sweeper.sweep(trigger="timer")
    fake_time.advance(SWEEP_LEASE_S)
    after_lease = await sweeper.sweep(trigger="timer")

    # Then it stayed (one error), was invisible under its lease, and then moved once
    assert (first.errors, first.reinserted) == (1, 0)
    assert while_leased.reinserted == 0
    assert after_lease.reinserted == 1 and len(envelopes_on(stores)) == 1


async def test_status_counts_each_queue_and_remembers_the_last_sweep(stores, parker, sweeper):
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")
    stores.inbound_poison.put("junk")

    before = await sweeper.status()
    await sweeper.sweep(trigger="manual")
    after = await sweeper.status()

    assert before.backend == "storage" and before.last_sweep is None
    counts = {q.name: q.count for q in before.queues}
    assert counts == {"recovery": 1, "inbound-poison": 1, "jobs-poison": 0}
    assert before.queues[0].oldest_age_s is not None
    assert after.last_sweep is not None and after.last_sweep.trigger == "manual"
    assert {q.name: q.count for q in after.queues}["recovery"] == 0


async def test_status_leaves_out_a_queue_that_does_not_answer_and_names_it_unknown(stores, sweeper):
    stores.jobs_poison.arm("status", StorageUnavailable("poison queue unreachable"))

    status = await sweeper.status()

    assert [q.name for q in status.queues] == ["recovery", "inbound-poison"]
    assert status.unknown == ["jobs-poison"]


async def test_status_says_the_last_sweep_is_unknown_when_its_record_does_not_answer(stores, sweeper):
    # Given a sweep that ran, and then the table that remembers it not answering
    await sweeper.sweep(trigger="manual")
    stores.sweep_state.arm("last", StorageUnavailable("state table unreachable"))

    # When the status is asked for
    status = await sweeper.status()

    # Then no sweep is shown, and the status says that is unknown rather than "never swept"
    assert status.last_sweep is None
    assert status.unknown == ["last_sweep"]


async def test_status_with_everything_answering_has_nothing_unknown(stores, sweeper):
    assert (await sweeper.status()).unknown == []


async def test_poisoned_job_page_is_reinserted_and_past_the_limit_fails_the_job(stores, fake_time):
    # Given a delete job whose page message the host gave up on
    envelope = Envelope(integration="orders", body_text="x")
    await stores.failures.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="r", now=fake_time.now(), body_ref=envelope.id)
    )
    jobs, runner = make_jobs(stores, fake_time)
    sweeper = make_sweeper(stores, fake_time, runner)
    delete_all = JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True))
    job = await jobs.start("orders", delete_all, actor=TESTER, now=fake_time.now())
    stores.job_pages.clear()
    page = {"integration": "orders", "job_id": job.id}

    # When the sweep finds it in the poison queue, and later finds it there again past the limit
    stores.jobs_poison.put(json.dumps(page))
    first = await sweeper.sweep(trigger="manual")
    [moved] = stores.job_pages.drain()
    stores.jobs_poison.put(json.dumps({**page, "recovery_count": MAX_REINSERTS}))
    second = await sweeper.sweep(trigger="manual")

    # Then it was first put back counted, then the job was failed and the integration freed
    assert first.reinserted == 1 and json.loads(moved.text)["recovery_count"] == 1
    assert second.gave_up == 1
    ended = await jobs.get("orders", job.id, now=fake_time.now())
    assert ended.state is JobState.FAILED and "gave up" in (ended.last_error or "")
    await jobs.start("orders", delete_all, actor=TESTER, now=fake_time.now())


async def test_the_sweep_resumes_stalled_jobs(stores, fake_time):
    await stores.failures.add(
        new_failure(
            Envelope(integration="orders", body_text="x"),
            origin=FailureOrigin.ENDPOINT, reason="r", now=fake_time.now(), body_ref=None,
        )
    )  # fmt: skip
    jobs, runner = make_jobs(stores, fake_time)
    delete_all = JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True))
    await jobs.start("orders", delete_all, actor=TESTER, now=fake_time.now())
    stores.job_pages.clear()
    fake_time.advance(runner.pages.claim_timeout.total_seconds() + 1)

    result = await make_sweeper(stores, fake_time, runner).sweep(trigger="timer")

    assert result.jobs_resumed == 1 and len(stores.job_pages.peek()) == 1


async def test_a_sweep_whose_result_cannot_be_saved_still_reports_it(stores, parker, sweeper):
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")
    stores.sweep_state.arm("remember", StorageUnavailable("state table unreachable"))

    result = await sweeper.sweep(trigger="manual")

    assert result.reinserted == 1
    assert await stores.sweep_state.last() is None
