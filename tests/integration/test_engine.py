"""The delivery engine against Azurite with a scripted receiver: every retry layer's decision."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random

import pytest

from shared.config.cache import ConfigCache
from shared.config.models import IntegrationConfig
from shared.delivery.engine import DelayScheduled, Delivered, DeliveryEngine, FailureRecorded, Outcome, RetryScheduled
from shared.delivery.retry import EndpointRetryPolicy
from shared.failures.models import FailureOrigin
from shared.messages.models import Envelope
from shared.messages.wire import pack
from shared.operability.metrics import Metrics
from shared.services import Services
from shared.storage.error_window_table import TableErrorWindow
from tests.support.stores import azure_stores, stored_failures
from tests.twins.clock import FakeTime
from tests.twins.senders import OneSender, ScriptedSender, ok, status


def make_config(**overrides) -> IntegrationConfig:
    data = {"id": "orders", "name": "Orders", "endpoint": {"kind": "http", "url": "http://127.0.0.1:9/in"}}
    data.update(overrides)
    return IntegrationConfig.model_validate(data)


def backoff(**values) -> dict:
    base = {"requeue_min_delay_seconds": 1, "requeue_max_delay_seconds": 2}
    return {"mode": "backoff", "backoff": {**base, **values}}


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def build_engine(services: Services, fake_time: FakeTime):
    def build(sender: ScriptedSender, *, endpoint_attempts: int = 2, error_window: TableErrorWindow | None = None):
        azure = azure_stores(services)
        return DeliveryEngine(
            configs=ConfigCache(services.stores.integrations, ttl_s=0),
            senders=OneSender(sender),
            inbound=services.inbound,
            payloads=services.stores.payloads,
            failures=services.stores.failures,
            error_window=error_window
            or TableErrorWindow(azure.account.tables.table(azure.names.error_window), cache_ttl_s=0),
            endpoint_policy=EndpointRetryPolicy(max_attempts=endpoint_attempts, base_delay_s=0.1, window_s=60),
            metrics=Metrics(),
            clock=fake_time.now,
            sleep=fake_time.sleep,
            monotonic=fake_time.monotonic,
            rng=random.Random(0),
        )

    return build


async def drain(services: Services, engine: DeliveryEngine, *, limit: int = 50) -> list[Outcome]:
    """Run the engine like the host would, until `inbound` has nothing visible."""
    outcomes: list[Outcome] = []
    azure = azure_stores(services)
    for _ in range(limit):
        messages = await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=30)
        if not messages:
            return outcomes
        for message in messages:
            outcomes.append(await engine.process_message(message.body, queue_message_id=message.id))
            await azure.account.queues.delete(azure.names.inbound, message)
    raise AssertionError("inbound never drained")


async def enqueue(services: Services, envelope: Envelope) -> None:
    _, text = await pack(envelope, services.stores.payloads)
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, text)


async def failures_of(services: Services, integration: str = "orders"):
    return await stored_failures(services.stores.failures, integration)


async def test_receiver_failing_then_recovering_is_delivered_once_with_attempts_counted(services, build_engine):
    # Given linear retry 3 with 2 endpoint attempts, and a receiver that fails 3 times then succeeds
    await services.stores.integrations.put(make_config(retry={"mode": "linear", "linear_count": 3}))
    sender = ScriptedSender([status(503), status(503), status(503), ok()])
    await enqueue(services, Envelope(integration="orders", body_text="{}"))

    # When the engine drains inbound
    outcomes = await drain(services, build_engine(sender))

    # Then one engine retry happened and the second run delivered on its second attempt
    assert [type(o) for o in outcomes] == [RetryScheduled, Delivered]
    assert outcomes[-1] == Delivered(attempts=4, status_code=200)
    assert len(sender.sent) == 4
    assert await failures_of(services) == []


async def test_linear_exhaustion_records_an_engine_failure_after_count_times_endpoint_attempts(services, build_engine):
    # Given linear 3 × 2 endpoint attempts against a receiver that is down
    await services.stores.integrations.put(make_config(retry={"mode": "linear", "linear_count": 3}))
    sender = ScriptedSender([status(503, detail="maintenance")])
    await enqueue(services, Envelope(integration="orders", body_text='{"order": 1}', sender="shop"))

    # When the engine drains inbound
    outcomes = await drain(services, build_engine(sender))

    # Then three runs happened and one failure holds all six attempts
    assert [type(o) for o in outcomes] == [RetryScheduled, RetryScheduled, FailureRecorded]
    [failure] = await failures_of(services)
    assert failure.origin is FailureOrigin.ENGINE
    assert failure.attempts == 6 == len(sender.sent)
    assert len(failure.history) == 6
    assert [a.engine_attempt for a in failure.history] == [1, 1, 2, 2, 3, 3]
    assert failure.status_code == 503
    assert "maintenance" in failure.reason
    assert failure.sender == "shop"
    content = await services.stores.payloads.get(failure.body_ref)
    assert content is not None and content.data == b'{"order": 1}'


async def test_bad_request_is_one_attempt_and_an_endpoint_failure(services, build_engine):
    await services.stores.integrations.put(make_config())
    sender = ScriptedSender([status(400, detail="sku missing")])
    await enqueue(services, Envelope(integration="orders", body_text="{}"))

    outcomes = await drain(services, build_engine(sender))

    assert [type(o) for o in outcomes] == [FailureRecorded]
    [failure] = await failures_of(services)
    assert (failure.origin, failure.status_code, failure.attempts) == (FailureOrigin.ENDPOINT, 400, 1)
    assert failure.reason == "HTTP 400: sku missing"


async def test_backoff_requeues_with_a_visibility_delay_within_min_and_max(services, build_engine):
    await services.stores.integrations.put(make_config(retry=backoff(max_number_of_retries=2)))
    sender = ScriptedSender([status(503)])
    await enqueue(services, Envelope(integration="orders", body_text="{}"))

    azure = azure_stores(services)
    [message] = await azure.account.queues.receive(azure.names.inbound)
    outcome = await build_engine(sender).process_message(message.body, queue_message_id=message.id)
    await azure.account.queues.delete(azure.names.inbound, message)

    assert isinstance(outcome, RetryScheduled)
    assert 1 <= outcome.delay_s <= 2
    # The copy exists but is invisible until its delay has passed.
    assert await azure.account.queues.receive(azure.names.inbound) == []
    assert await azure.account.queues.depth(azure.names.inbound) == 1


async def test_backoff_gives_up_after_max_number_of_retries_with_the_full_history(services, build_engine):
    await services.stores.integrations.put(
        make_config(retry=backoff(max_number_of_retries=2, requeue_min_delay_seconds=0, requeue_max_delay_seconds=0))
    )
    sender = ScriptedSender([status(503)])
    await enqueue(services, Envelope(integration="orders", body_text="{}"))

    outcomes = await drain(services, build_engine(sender, endpoint_attempts=1))

    assert [type(o) for o in outcomes] == [RetryScheduled, RetryScheduled, FailureRecorded]
    [failure] = await failures_of(services)
    assert failure.origin is FailureOrigin.ENGINE
    assert len(failure.history) == failure.attempts == 3
    assert "backoff retry exhausted after 2 retries" in failure.reason


async def test_error_window_over_threshold_delays_then_fails_after_max_delay_actions(services, build_engine):
    # Given a backoff integration whose window allows 1 error, and 2 errors already counted
    await services.stores.integrations.put(
        make_config(
            retry=backoff(
                max_errors_per_interval=1, max_delay_actions=2, requeue_min_delay_seconds=0, requeue_max_delay_seconds=0
            )
        )
    )
    azure = azure_stores(services)
    window = TableErrorWindow(azure.account.tables.table(azure.names.error_window), cache_ttl_s=0)
    engine = build_engine(ScriptedSender([ok()]), error_window=window)
    for _ in range(2):
        await window.record("orders", interval_minutes=3, now=FakeTime().now())
    await enqueue(services, Envelope(integration="orders", body_text="{}"))

    # When the engine drains
    outcomes = await drain(services, engine)

    # Then the message was held back twice, never sent, and then failed for the manual retry
    assert [type(o) for o in outcomes] == [DelayScheduled, DelayScheduled, FailureRecorded]
    assert engine._senders.sender.sent == []
    [failure] = await failures_of(services)
    assert failure.origin is FailureOrigin.ENGINE
    assert failure.delay_actions == 2
    assert "delay actions" in failure.reason


async def test_two_engine_instances_share_one_error_window(services, build_engine):
    # Given two engines, each with its own TableErrorWindow object (as two hosts would have)
    await services.stores.integrations.put(make_config(retry=backoff(max_errors_per_interval=2)))
    azure = azure_stores(services)
    table = azure.account.tables.table(azure.names.error_window)
    first = build_engine(
        ScriptedSender([status(500)]), endpoint_attempts=1, error_window=TableErrorWindow(table, cache_ttl_s=0)
    )
    second = build_engine(ScriptedSender([ok()]), error_window=TableErrorWindow(table, cache_ttl_s=0))

    # When the first fails three messages
    for _ in range(3):
        await first.process(Envelope(integration="orders", body_text="{}"))

    # Then the second holds its next message back instead of delivering it
    outcome = await second.process(Envelope(integration="orders", body_text="{}"))
    assert isinstance(outcome, DelayScheduled)


async def test_large_payload_goes_through_the_claim_check_byte_identical(services, build_engine):
    # Given a 1 MiB binary message
    await services.stores.integrations.put(make_config())
    body = os.urandom(1024 * 1024)
    sender = ScriptedSender([ok()])
    slim, text = await pack(
        Envelope(integration="orders", body_b64=base64.b64encode(body).decode()), services.stores.payloads
    )
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, text)

    # When it is delivered
    outcomes = await drain(services, build_engine(sender))

    # Then the queue carried a reference, the receiver got the exact bytes, and the blob is gone
    assert slim.body_ref == slim.id and len(text) < 2048
    assert [type(o) for o in outcomes] == [Delivered]
    assert sender.sent[0].body == body
    assert await services.stores.payloads.get(slim.id) is None


async def test_malformed_queue_message_becomes_an_ingest_failure_with_its_bytes(services, build_engine):
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, "this is { not json")

    outcomes = await drain(services, build_engine(ScriptedSender([ok()])))

    assert [type(o) for o in outcomes] == [FailureRecorded]
    [failure] = await failures_of(services, "_unknown")
    assert failure.origin is FailureOrigin.INGEST
    assert "not JSON" in failure.reason
    content = await services.stores.payloads.get(failure.body_ref)
    assert content is not None and content.data == b"this is { not json"


async def test_invalid_envelope_with_a_readable_integration_is_filed_under_it(services, build_engine):
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, json.dumps({"integration": "orders", "engine_attempts": -1}))

    await drain(services, build_engine(ScriptedSender([ok()])))

    [failure] = await failures_of(services, "orders")
    assert failure.origin is FailureOrigin.INGEST
    assert "engine_attempts" in failure.reason


async def test_minimal_envelope_from_upstream_is_delivered(services, build_engine):
    await services.stores.integrations.put(make_config())
    sender = ScriptedSender([ok()])
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, json.dumps({"integration": "orders", "body_text": "hi"}))

    outcomes = await drain(services, build_engine(sender))

    assert [type(o) for o in outcomes] == [Delivered]
    assert sender.sent[0].body == b"hi"


async def test_unknown_integration_is_a_config_failure(services, build_engine):
    outcome = await build_engine(ScriptedSender([ok()])).process(Envelope(integration="ghost", body_text="x"))

    assert isinstance(outcome, FailureRecorded)
    assert outcome.failure.origin is FailureOrigin.CONFIG


async def test_persist_failures_false_records_nothing(services, build_engine):
    await services.stores.integrations.put(make_config(persist_failures=False))

    outcome = await build_engine(ScriptedSender([status(404)])).process(Envelope(integration="orders", body_text="x"))

    assert isinstance(outcome, FailureRecorded) and outcome.persisted is False
    assert await failures_of(services) == []


async def test_redirect_rule_delivers_to_the_fallback(services, build_engine):
    await services.stores.integrations.put(
        make_config(
            fallback_endpoint={"kind": "http", "url": "http://127.0.0.1:9/fallback"},
            error_rules=[{"status_min": 500, "status_max": 599, "action": "redirect"}],
        )
    )
    sender = ScriptedSender([status(500), ok()])

    outcome = await build_engine(sender).process(Envelope(integration="orders", body_text="x"))

    assert isinstance(outcome, Delivered)
    assert outcome.attempts == 2


async def test_summary_stays_exact_under_concurrent_failures(services, build_engine):
    # Given 20 messages failing at the same moment
    await services.stores.integrations.put(make_config())
    engine = build_engine(ScriptedSender([status(400)]))

    # When they are processed concurrently
    await asyncio.gather(*(engine.process(Envelope(integration="orders", body_text="x")) for _ in range(20)))

    # Then the overview counts each exactly once
    [summary] = await services.stores.failures.overview()
    assert summary.count == 20
    assert summary.by_origin == {"endpoint": 20}
