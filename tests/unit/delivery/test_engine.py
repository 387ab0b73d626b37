"""The delivery engine on the twins: every retry layer's decision, the failure it records, and parking.

Ported from tests/integration/test_engine.py (which keeps what needs Azure: two hosts sharing one
error window table, the sharded summary under concurrency, the claim-check blob byte-identical).
"""

from __future__ import annotations

import base64
import json

import pytest

from shared.delivery.engine import DelayScheduled, Delivered, FailureRecorded, Parked, RetryScheduled
from shared.errors import StorageUnavailable
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.messages.models import Envelope
from shared.messages.wire import MAX_INLINE_ENVELOPE_BYTES, pack
from shared.operability.metrics import Counter, Metrics
from shared.recovery.models import ParkedMessage
from shared.recovery.parker import Parker
from tests.twins.clock import FakeTime
from tests.twins.senders import ScriptedSender, ok, status
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_config, make_engine, run_inbound

END = FakeTime().now().replace(year=2100)


def backoff(**values: object) -> dict[str, object]:
    base = {"requeue_min_delay_seconds": 1, "requeue_max_delay_seconds": 2}
    return {"mode": "backoff", "backoff": {**base, **values}}


async def enqueue(stores: MemoryStores, envelope: Envelope) -> None:
    _, text = await pack(envelope, stores.payloads)
    await stores.inbound.send(text)


async def failures_of(stores: MemoryStores, integration: str = "orders") -> list[Failure]:
    return [item.failure async for item in stores.failures.select(integration, FailureFilter(), not_after=END)]


async def test_receiver_failing_then_recovering_is_delivered_once_with_attempts_counted(stores, fake_time):
    # Given linear retry 3 with 2 endpoint attempts, and a receiver that fails 3 times then succeeds
    await stores.integrations.put(make_config(retry={"mode": "linear", "linear_count": 3}))
    sender = ScriptedSender([status(503), status(503), status(503), ok()])
    await enqueue(stores, Envelope(integration="orders", body_text="{}"))

    # When the engine drains inbound
    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then one engine retry happened and the second run delivered on its second attempt
    assert [type(o) for o in outcomes] == [RetryScheduled, Delivered]
    assert outcomes[-1] == Delivered(attempts=4, status_code=200)
    assert len(sender.sent) == 4
    assert await failures_of(stores) == []


async def test_linear_exhaustion_records_an_engine_failure_after_count_times_endpoint_attempts(stores, fake_time):
    # Given linear 3 x 2 endpoint attempts against a receiver that is down
    await stores.integrations.put(make_config(retry={"mode": "linear", "linear_count": 3}))
    sender = ScriptedSender([status(503, detail="maintenance")])
    await enqueue(stores, Envelope(integration="orders", body_text='{"order": 1}', sender="shop"))

    # When the engine drains inbound
    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then three runs happened and one failure holds all six attempts, with the content kept
    assert [type(o) for o in outcomes] == [RetryScheduled, RetryScheduled, FailureRecorded]
    [failure] = await failures_of(stores)
    assert failure.origin is FailureOrigin.ENGINE
    assert failure.attempts == 6 == len(sender.sent)
    assert [a.engine_attempt for a in failure.history] == [1, 1, 2, 2, 3, 3]
    assert (failure.status_code, failure.sender) == (503, "shop")
    assert "maintenance" in failure.reason
    content = await stores.payloads.get(failure.body_ref or "")
    assert content is not None and content.data == b'{"order": 1}'


async def test_bad_request_is_one_attempt_and_an_endpoint_failure(stores, fake_time):
    await stores.integrations.put(make_config())
    await enqueue(stores, Envelope(integration="orders", body_text="{}"))

    outcomes = await run_inbound(
        make_engine(stores, fake_time, ScriptedSender([status(400, detail="sku missing")])), stores, fake_time
    )

    assert [type(o) for o in outcomes] == [FailureRecorded]
    [failure] = await failures_of(stores)
    assert (failure.origin, failure.status_code, failure.attempts) == (FailureOrigin.ENDPOINT, 400, 1)
    assert failure.reason == "HTTP 400: sku missing"


async def test_backoff_requeues_with_a_visibility_delay_within_min_and_max(stores, fake_time):
    # Given backoff between 1 and 2 s and a receiver that is down
    await stores.integrations.put(make_config(retry=backoff(max_number_of_retries=2)))
    await enqueue(stores, Envelope(integration="orders", body_text="{}"))
    [message] = stores.inbound.drain()

    # When the engine handles the message once
    outcome = await make_engine(stores, fake_time, ScriptedSender([status(503)])).process_message(
        message.body, queue_message_id=message.id
    )

    # Then the copy waits on inbound, invisible for the delay it was sent with
    assert isinstance(outcome, RetryScheduled) and 1 <= outcome.delay_s <= 2
    assert stores.inbound.delays[-1] == outcome.delay_s
    assert stores.inbound.drain() == [] and await stores.inbound.depth() == 1
    fake_time.advance(outcome.delay_s)
    assert len(stores.inbound.drain()) == 1


async def test_backoff_gives_up_after_max_number_of_retries_with_the_full_history(stores, fake_time):
    await stores.integrations.put(make_config(retry=backoff(max_number_of_retries=2)))
    await enqueue(stores, Envelope(integration="orders", body_text="{}"))

    outcomes = await run_inbound(
        make_engine(stores, fake_time, ScriptedSender([status(503)]), endpoint_attempts=1), stores, fake_time
    )

    assert [type(o) for o in outcomes] == [RetryScheduled, RetryScheduled, FailureRecorded]
    [failure] = await failures_of(stores)
    assert failure.origin is FailureOrigin.ENGINE
    assert len(failure.history) == failure.attempts == 3
    assert "backoff retry exhausted after 2 retries" in failure.reason


async def test_error_window_over_threshold_delays_then_fails_after_max_delay_actions(stores, fake_time):
    # Given a backoff integration whose window allows 1 error, and 2 errors already counted
    await stores.integrations.put(
        make_config(
            retry=backoff(
                max_errors_per_interval=1, max_delay_actions=2, requeue_min_delay_seconds=0, requeue_max_delay_seconds=0
            )
        )
    )
    for _ in range(2):
        await stores.error_window.record("orders", interval_minutes=3, now=fake_time.now())
    sender = ScriptedSender([ok()])
    await enqueue(stores, Envelope(integration="orders", body_text="{}"))

    # When the engine drains
    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then the message was held back twice, never sent, and then failed for the manual retry
    assert [type(o) for o in outcomes] == [DelayScheduled, DelayScheduled, FailureRecorded]
    assert sender.sent == []
    [failure] = await failures_of(stores)
    assert failure.origin is FailureOrigin.ENGINE and failure.delay_actions == 2
    assert "delay actions" in failure.reason


async def test_a_failure_in_backoff_mode_is_counted_in_the_error_window(stores, fake_time):
    await stores.integrations.put(make_config(retry=backoff(max_errors_per_interval=10)))

    await make_engine(stores, fake_time, ScriptedSender([status(400)])).process(
        Envelope(integration="orders", body_text="x")
    )

    assert await stores.error_window.count("orders", interval_minutes=3, now=fake_time.now()) == 1


async def test_malformed_queue_message_becomes_an_ingest_failure_with_its_bytes(stores, fake_time):
    await stores.inbound.send("this is { not json")

    outcomes = await run_inbound(make_engine(stores, fake_time, ScriptedSender([ok()])), stores, fake_time)

    assert [type(o) for o in outcomes] == [FailureRecorded]
    [failure] = await failures_of(stores, "_unknown")
    assert failure.origin is FailureOrigin.INGEST and "not JSON" in failure.reason
    content = await stores.payloads.get(failure.body_ref or "")
    assert content is not None and content.data == b"this is { not json"


async def test_invalid_envelope_with_a_readable_integration_is_filed_under_it(stores, fake_time):
    await stores.inbound.send(json.dumps({"integration": "orders", "engine_attempts": -1}))

    await run_inbound(make_engine(stores, fake_time, ScriptedSender([ok()])), stores, fake_time)

    [failure] = await failures_of(stores, "orders")
    assert failure.origin is FailureOrigin.INGEST and "engine_attempts" in failure.reason


async def test_minimal_envelope_from_upstream_is_delivered(stores, fake_time):
    await stores.integrations.put(make_config())
    sender = ScriptedSender([ok()])
    await stores.inbound.send(json.dumps({"integration": "orders", "body_text": "hi"}))

    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    assert [type(o) for o in outcomes] == [Delivered]
    assert sender.sent[0].body == b"hi"


async def test_unknown_integration_is_a_config_failure(stores, fake_time):
    outcome = await make_engine(stores, fake_time, ScriptedSender([ok()])).process(
        Envelope(integration="ghost", body_text="x")
    )

    assert isinstance(outcome, FailureRecorded) and outcome.failure.origin is FailureOrigin.CONFIG
    assert [f.integration for f in await failures_of(stores, "ghost")] == ["ghost"]


async def test_persist_failures_false_records_nothing(stores, fake_time):
    await stores.integrations.put(make_config(persist_failures=False))

    outcome = await make_engine(stores, fake_time, ScriptedSender([status(404)])).process(
        Envelope(integration="orders", body_text="x")
    )

    assert isinstance(outcome, FailureRecorded) and outcome.persisted is False
    assert await failures_of(stores) == []
    assert stores.payloads.refs() == []


async def test_redirect_rule_delivers_to_the_fallback(stores, fake_time):
    await stores.integrations.put(
        make_config(
            fallback_endpoint={"kind": "http", "url": "https://fallback.example/in"},
            error_rules=[{"status_min": 500, "status_max": 599, "action": "redirect"}],
        )
    )
    sender = ScriptedSender([status(500), ok()])

    outcome = await make_engine(stores, fake_time, sender).process(Envelope(integration="orders", body_text="x"))

    assert outcome == Delivered(attempts=2, status_code=200)


async def test_a_large_message_travels_by_reference_and_its_payload_goes_once_delivered(stores, fake_time):
    # Given a message too large to travel inline
    await stores.integrations.put(make_config())
    body = b"\x01" * (MAX_INLINE_ENVELOPE_BYTES + 1)
    sender = ScriptedSender([ok()])
    await enqueue(stores, Envelope(integration="orders", body_b64=base64.b64encode(body).decode()))

    # When it is delivered
    [queued] = stores.inbound.peek()
    outcomes = await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then the queue carried a reference, the receiver got the bytes, and the payload is gone
    assert Envelope.model_validate_json(queued.text).body_ref is not None and len(queued.text) < 2048
    assert [type(o) for o in outcomes] == [Delivered]
    assert sender.sent[0].body == body
    assert stores.payloads.refs() == []


async def test_delivery_counts_received_delivered_and_endpoint_retries(stores, fake_time):
    await stores.integrations.put(make_config())
    metrics = Metrics()

    await make_engine(stores, fake_time, ScriptedSender([status(503), ok()]), metrics=metrics).process(
        Envelope(integration="orders", body_text="x")
    )

    counted = metrics.snapshot().integrations["orders"].since_start
    assert (counted[Counter.RECEIVED], counted[Counter.DELIVERED], counted[Counter.ENDPOINT_RETRIES]) == (1, 1, 1)


# --- our own storage failing: park, never lose ----------------------------------------------------


async def test_the_message_is_parked_when_the_failure_cannot_be_recorded(stores, fake_time):
    # Given a receiver that refuses the message and a failure store that is down
    await stores.integrations.put(make_config())
    stores.failures.arm("add", StorageUnavailable("failures table unreachable"), times=None)
    parker = Parker(stores.recovery, delay_s=0, metrics=Metrics())
    engine = make_engine(stores, fake_time, ScriptedSender([status(400)]), parker=parker)
    raw = Envelope(integration="orders", body_text="x").model_dump_json().encode()

    # When the engine handles it
    outcome = await engine.process_message(raw, queue_message_id="q1")

    # Then it waits on the recovery flow, as received, saying why
    assert isinstance(outcome, Parked) and "failures table unreachable" in outcome.reason
    [parked] = [ParkedMessage.model_validate_json(text) for text in stores.recovery.texts()]
    assert parked.flow == "inbound" and parked.reason.startswith("engine: ")
    assert Envelope.model_validate_json(parked.text).body_text == "x"


async def test_the_message_is_parked_when_its_retry_cannot_be_requeued(stores, fake_time):
    await stores.integrations.put(make_config(retry={"mode": "linear", "linear_count": 3}))
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"))
    engine = make_engine(
        stores, fake_time, ScriptedSender([status(503)]), parker=Parker(stores.recovery, delay_s=0, metrics=Metrics())
    )

    outcome = await engine.process_message(
        Envelope(integration="orders", body_text="x").model_dump_json().encode(), queue_message_id="q1"
    )

    assert isinstance(outcome, Parked)
    assert len(stores.recovery.texts()) == 1 and await stores.inbound.depth() == 0


async def test_without_a_parker_a_storage_outage_reaches_the_host(stores, fake_time):
    stores.integrations.arm("get", StorageUnavailable("config table unreachable"))
    engine = make_engine(stores, fake_time, ScriptedSender([ok()]))

    with pytest.raises(StorageUnavailable):
        await engine.process_message(b'{"integration": "orders"}', queue_message_id="q1")

    assert stores.recovery.texts() == []
