"""The message timeline on the twins: what the engine, a retry job, parking and the sweep record, and what they
do not (a first-try delivery costs no write); a timeline that cannot be written never holds a message up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared.delivery.adapters.base import Delivery, Response
from shared.errors import DeliveryError, NoTimeline, StorageUnavailable
from shared.failures.models import FailureFilter
from shared.jobs.models import JobAction, JobRequest, JobSelection
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.messages.wire import pack
from shared.operability.metrics import Metrics
from shared.recovery.parker import Parker
from shared.timeline.recorder import (
    PAUSE_AFTER_FAILURE_S,
    RecordingParking,
    RecordingReinserts,
    TimelineObserver,
    TimelineRecorder,
)
from shared.timeline.service import MessageTimelines
from tests.support.auth import TESTER
from tests.twins.clock import FakeTime
from tests.twins.senders import ScriptedSender, ok, status
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_config, make_engine, make_jobs, run_inbound, run_job_pages

#: Engine retries a second or two later, so each run has its own instants.
BACKOFF = {"mode": "backoff", "backoff": {"requeue_min_delay_seconds": 1, "requeue_max_delay_seconds": 2}}


def recorder_on(stores: MemoryStores, time: FakeTime) -> TimelineRecorder:
    return TimelineRecorder(stores.timeline, instance="test-1", clock=time.now, monotonic=time.monotonic)


def ticking(time: FakeTime, answers: list[Response]) -> ScriptedSender:
    """Answers from the script, each attempt a second after the last (so events have their own instants)."""
    sender = ScriptedSender(list[Response | DeliveryError](answers))

    async def answer(delivery: Delivery) -> Response:
        time.advance(1)
        return answers[min(len(sender.sent) - 1, len(answers) - 1)]

    sender.send_hook = answer
    return sender


async def enqueue(stores: MemoryStores, envelope: Envelope) -> None:
    _, text = await pack(envelope, stores.payloads)
    await stores.inbound.send(text)


async def deliver(stores: MemoryStores, time: FakeTime, sender: ScriptedSender, **config: Any) -> Envelope:
    """One message through an engine that records its timeline; the message as it was ingested."""
    await stores.integrations.put(make_config(**config))
    envelope = Envelope(integration="orders", body_text="{}", sender="shop", received_at=time.now())
    await enqueue(stores, envelope)
    engine = make_engine(stores, time, sender, observers=[TimelineObserver(recorder_on(stores, time))])
    await run_inbound(engine, stores, time)
    return envelope


async def test_a_message_delivered_at_its_first_attempt_costs_no_write_and_has_no_timeline(stores, fake_time):
    # Given / When
    envelope = await deliver(stores, fake_time, ticking(fake_time, [ok()]))

    # Then nothing was written, and asking for its timeline is a 404 `no_timeline`
    assert stores.timeline.calls["append"] == 0
    with pytest.raises(NoTimeline) as missing:
        await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=50, cursor=None)
    assert (missing.value.http_status, missing.value.code) == (404, "no_timeline")


async def test_an_engine_retry_then_delivery_shows_every_attempt_the_retry_and_the_delivery(stores, fake_time):
    # Given a receiver that fails twice (one engine run of two endpoint attempts), then takes the message
    envelope = await deliver(stores, fake_time, ticking(fake_time, [status(503), status(503), ok()]), retry=BACKOFF)

    # When its timeline is read
    timeline = await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=50, cursor=None)

    # Then it tells the story in order, with statuses, attempt numbers and who recorded it
    events = [(item.event.value, item.details.get("status_code")) for item in timeline.items]
    assert events == [
        ("received", None), ("attempt", 503), ("attempt", 503), ("retry_scheduled", None), ("attempt", 200),
        ("delivered", 200),
    ]  # fmt: skip
    attempts = [
        (item.details["engine_attempt"], item.details["endpoint_attempt"])
        for item in timeline.items
        if item.event.value == "attempt"
    ]
    assert attempts == [(1, 1), (1, 2), (2, 1)]
    retry = timeline.items[3]
    assert (retry.details["engine_attempt"], retry.details["next_engine_attempt"]) == (1, 2)
    assert retry.instance == "test-1" and timeline.items[0].instance is None
    assert timeline.items[0].details == {"sender": "shop"}


async def test_a_delivery_after_an_endpoint_retry_in_the_first_run_is_recorded(stores, fake_time):
    envelope = await deliver(stores, fake_time, ticking(fake_time, [status(503), ok()]), retry=BACKOFF)

    assert stores.timeline.events("orders", envelope.id) == ["received", "attempt", "attempt", "delivered"]


async def test_a_permanent_failure_records_the_attempt_and_the_failure_with_its_id(stores, fake_time):
    # Given / When a receiver answers 400
    envelope = await deliver(stores, fake_time, ticking(fake_time, [status(400)]))

    # Then the timeline ends with the failure, naming it
    timeline = await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=50, cursor=None)
    assert [item.event.value for item in timeline.items] == ["received", "attempt", "failed"]
    failed = timeline.items[-1].details
    [failure] = [item.failure async for item in stores.failures.select("orders", _all(), not_after=_end())]
    assert (failed["failure_id"], failed["origin"], failed["status_code"]) == (failure.id, "endpoint", 400)


async def test_fail_then_retry_job_then_delivery_shows_failed_resent_delivered(stores, fake_time):
    # Given a message that failed for good (400), and a receiver fixed since
    sender = ticking(fake_time, [status(400), ok()])
    envelope = await deliver(stores, fake_time, sender)
    recorder = recorder_on(stores, fake_time)
    jobs, runner = make_jobs(stores, fake_time, timeline=recorder)

    # When, a minute later, a retry job resends it and the engine delivers it
    fake_time.advance(60)
    job = await jobs.start("orders", _retry_all(), actor=TESTER, now=fake_time.now())
    await run_job_pages(runner, stores, fake_time)
    engine = make_engine(stores, fake_time, sender, observers=[TimelineObserver(recorder)])
    await run_inbound(engine, stores, fake_time)

    # Then the timeline goes on from the failure: resent by the job (and who started it), then delivered
    timeline = await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=50, cursor=None)
    assert [item.event.value for item in timeline.items] == [
        "received", "attempt", "failed", "resent", "attempt", "delivered"
    ]  # fmt: skip
    resent, delivered = timeline.items[3], timeline.items[5]
    assert resent.details == {"job_id": job.id, "actor": "tester", "resend_count": 1}
    assert delivered.details["job_id"] == job.id


async def test_pages_of_a_long_timeline_follow_each_other_with_the_cursor(stores, fake_time):
    envelope = await deliver(stores, fake_time, ticking(fake_time, [status(503), status(503), ok()]), retry=BACKOFF)
    timelines = MessageTimelines(stores.timeline)

    first = await timelines.page("orders", envelope.id, limit=4, cursor=None)
    second = await timelines.page("orders", envelope.id, limit=4, cursor=first.next_cursor)

    assert len(first.items) == 4 and first.next_cursor is not None
    assert [item.event.value for item in second.items] == ["attempt", "delivered"] and second.next_cursor is None


async def test_a_timeline_that_cannot_be_written_never_holds_the_message_up(stores, fake_time):
    # Given a timeline store that is down
    stores.timeline.arm("append", StorageUnavailable("table down"), times=None)

    # When a message needs an engine retry
    await deliver(stores, fake_time, ticking(fake_time, [status(503), status(503), ok()]), retry=BACKOFF)

    # Then it was delivered anyway, and after the first failed write the recorder stopped trying for a while
    assert stores.inbound.peek() == [] and await _failures(stores) == []
    assert stores.timeline.calls["append"] == 1


async def test_the_recorder_tries_again_once_the_pause_after_a_failed_write_is_over(stores, fake_time):
    recorder = recorder_on(stores, fake_time)
    envelope = Envelope(integration="orders", body_text="{}", received_at=fake_time.now())
    stores.timeline.arm("append", StorageUnavailable("table down"))
    await recorder.resent(envelope, job_id="0000000000000001-aaaaaaaaaaaa", actor=None)

    await recorder.resent(envelope, job_id="0000000000000001-aaaaaaaaaaaa", actor=None)
    fake_time.advance(PAUSE_AFTER_FAILURE_S + 1)
    await recorder.resent(envelope, job_id="0000000000000001-aaaaaaaaaaaa", actor=None)

    assert stores.timeline.calls["append"] == 2
    assert stores.timeline.events("orders", envelope.id) == ["received", "resent"]


async def test_parking_and_the_sweep_putting_a_message_back_are_recorded(stores, fake_time):
    # Given parking and the sweep's inbound, both recording
    recorder = recorder_on(stores, fake_time)
    parking = RecordingParking(Parker(stores.recovery, delay_s=0, metrics=Metrics(), clock=fake_time.now), recorder)
    inbound = RecordingReinserts(InboundShards(stores.inbound_shards), recorder)
    envelope = Envelope(integration="orders", body_text="{}", received_at=fake_time.now())

    # When the message is parked, then put back by the sweep
    await parking.park_envelope(envelope, "inbound unreachable")
    await recorder.settle()
    fake_time.advance(1)
    back = envelope.model_copy(update={"recovery_count": 1})
    await inbound.send(back.integration, back.model_dump_json())

    # Then both are on its timeline, with why and how often
    timeline = await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=50, cursor=None)
    assert [(item.event.value, item.details) for item in timeline.items] == [
        ("received", {}), ("parked", {"reason": "inbound unreachable"}), ("recovered", {"recovery_count": 1}),
    ]  # fmt: skip
    assert await stores.inbound.depth() == 1


def _retry_all() -> JobRequest:
    return JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True))


def _all() -> FailureFilter:
    return FailureFilter()


def _end() -> datetime:
    return FakeTime().now().replace(year=2100)


async def _failures(stores: MemoryStores) -> list[object]:
    return [item async for item in stores.failures.select("orders", _all(), not_after=_end())]


async def test_a_message_the_sweep_gives_up_on_gets_a_failed_event(stores, fake_time):
    # Given the sweep's failure sink, recording
    from shared.failures.models import FailureOrigin
    from shared.failures.records import new_failure
    from shared.timeline.recorder import RecordingFailures

    sink = RecordingFailures(stores.failures, recorder_on(stores, fake_time))
    envelope = Envelope(integration="orders", body_text="{}", recovery_count=3)
    failure = new_failure(
        envelope, origin=FailureOrigin.CATASTROPHIC, reason="gave up after 3 reinserts", now=fake_time.now(),
        body_ref=envelope.id,
    )  # fmt: skip

    # When it records the give-up
    stored = await sink.add(failure)

    # Then the failure is kept, and the message's timeline names it
    timeline = await MessageTimelines(stores.timeline).page("orders", envelope.id, limit=10, cursor=None)
    [failed] = timeline.items
    assert (failed.event.value, failed.details["failure_id"], failed.details["origin"]) == (
        "failed", stored.id, "catastrophic"
    )  # fmt: skip
