"""A copy of a message that was already delivered is dropped and counted, never recorded as a failure (issue 15).

The first copy of a claim-checked message to be delivered deletes its payload blob; a later copy of
the same message then finds no content. That copy is a duplicate: the receiver has the message, and a
failure for it would be retried and sent again. tests/e2e/test_retry_duplicates.py runs the same
through the host under load.
"""

from __future__ import annotations

import logging

from shared.delivery.engine import Delivered, DuplicateDropped
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.records import new_failure
from shared.jobs.models import JobAction, JobRequest, JobSelection
from shared.messages.models import Envelope
from shared.messages.wire import pack
from shared.operability.metrics import Counter, Metrics
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.senders import ScriptedSender, ok, status
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_config, make_engine, make_jobs, run_inbound, run_job_pages

END = FakeTime().now().replace(year=2100)
BODY = b'{"order": 1}'


async def failures_of(stores: MemoryStores, integration: str = "orders") -> list[Failure]:
    return [item.failure async for item in stores.failures.select(integration, FailureFilter(), not_after=END)]


async def send_resend_twice(stores: MemoryStores) -> Envelope:
    """Two copies of one resent message on `inbound`, both pointing at the failure's content blob."""
    envelope = Envelope(id="order-1", integration="orders", body_ref="order-1", resend_count=1)
    await stores.payloads.put("order-1", BODY, content_type="application/json")
    for _ in range(2):
        _, text = await pack(envelope, stores.payloads)
        await stores.inbound.send(text)
    return envelope


def counted(metrics: Metrics) -> dict[str, int]:
    return {key: value for key, value in metrics.snapshot().total.since_start.items() if value}


async def test_the_second_copy_of_a_delivered_message_is_dropped_as_a_duplicate_and_no_failure_is_recorded(
    stores, fake_time
):
    # Given two copies of one resent message on inbound, and a receiver that takes it
    await stores.integrations.put(make_config())
    await send_resend_twice(stores)
    sender, metrics = ScriptedSender([ok()]), Metrics()

    # When the engine drains inbound
    outcomes = await run_inbound(make_engine(stores, fake_time, sender, metrics=metrics), stores, fake_time)

    # Then the receiver got the message once, the other copy was dropped, and nothing is a failure
    assert outcomes == [Delivered(attempts=1, status_code=200), DuplicateDropped(body_ref="order-1")]
    assert [delivery.body for delivery in sender.sent] == [BODY]
    assert await failures_of(stores) == []
    assert (await stores.failures.summary("orders")).count == 0
    # And the duplicate is counted as one, beside the delivery, with no failure counter moved
    assert counted(metrics) == {Counter.RECEIVED: 2, Counter.DELIVERED: 1, Counter.DUPLICATES: 1}


async def test_a_dropped_duplicate_is_logged_with_its_ids_and_never_its_body(stores, fake_time, caplog):
    await stores.integrations.put(make_config())
    await send_resend_twice(stores)

    with caplog.at_level(logging.INFO, logger="rebound.engine"):
        await run_inbound(make_engine(stores, fake_time, ScriptedSender([ok()])), stores, fake_time)

    [record] = [r for r in caplog.records if getattr(r, "rebound", {}).get("event") == "delivery.duplicate_dropped"]
    fields = record.rebound
    ids = {key: fields[key] for key in ("integration", "message_id", "body_ref", "resend_count")}
    assert ids == {"integration": "orders", "message_id": "order-1", "body_ref": "order-1", "resend_count": 1}
    assert BODY.decode() not in caplog.text


async def test_a_copy_whose_content_was_never_there_does_not_become_a_failure_either(stores, fake_time):
    # Given a message whose claim check points at nothing (its content deleted with its failure, or purged)
    await stores.integrations.put(make_config())
    sender = ScriptedSender([status(400)])

    # When the engine takes it
    outcome = await make_engine(stores, fake_time, sender).process(
        Envelope(id="gone", integration="orders", body_ref="gone", resend_count=2)
    )

    # Then nothing is sent and nothing is recorded: there is no content left to deliver or to retry
    assert outcome == DuplicateDropped(body_ref="gone")
    assert sender.sent == [] and await failures_of(stores) == []


async def test_a_retry_all_over_two_failure_rows_of_one_message_delivers_it_once_and_leaves_no_failure(
    stores, fake_time
):
    # Given one message the upstream system sent twice while the receiver rejected it: two failure rows,
    # one content blob (the message's id), as the engine records them
    await stores.integrations.put(make_config())
    envelope = Envelope(id="order-1", integration="orders", body_text=BODY.decode())
    await stores.payloads.put(envelope.id, BODY, content_type="application/json")
    for _ in range(2):
        failure = new_failure(
            envelope, origin=FailureOrigin.ENDPOINT, reason="HTTP 400", now=fake_time.now(), body_ref=envelope.id
        )
        await stores.failures.add(failure)
        fake_time.advance(1)
    sender = ScriptedSender([ok()])

    # When the receiver is back and one Retry-all runs, then the engine drains inbound
    jobs, runner = make_jobs(stores, fake_time)
    request = JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))
    await jobs.start("orders", request, actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then the receiver has it once, the second copy was dropped, and no failure is left behind
    assert sorted(type(o).__name__ for o in outcomes) == ["Delivered", "DuplicateDropped"]
    assert len(sender.sent) == 1
    assert await failures_of(stores) == []
    assert stores.payloads.refs() == []
