"""Catastrophic recovery against Azurite: parking, the sweep, giving up, and where each park happens."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from devtools.azurite import AzuritePorts, connection_string
from shared.config.models import IntegrationConfig
from shared.delivery.engine import Parked
from shared.delivery.ingest import IncomingMessage
from shared.errors import StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.failures.records import new_failure
from shared.failures.retention import Retention
from shared.jobs.models import JobAction, JobLimits, JobRequest, JobSelection, JobState
from shared.jobs.runner import JobService
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.messages.wire import pack
from shared.recovery.models import ParkedMessage
from shared.services import Services
from shared.settings import Settings
from shared.values import utc_now
from tests.support.auth import TESTER
from tests.support.stores import azure_stores, stored_failures
from tests.twins.clock import FakeTime
from tests.twins.senders import OneSender, ScriptedSender, ok


def dead_storage() -> str:
    """A connection string to ports nobody listens on: every call fails at once."""
    return connection_string(AzuritePorts.free())


@pytest.fixture
def recovery_settings(storage_env: dict[str, str]) -> dict[str, str]:
    return {**storage_env, "RECOVERY_PARK_DELAY_S": "0", "RECOVERY_MAX_REINSERTS": "2", "STORAGE_TIMEOUT_S": "3"}


@pytest.fixture
async def services(recovery_settings: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(recovery_settings))
    yield services
    await services.close()


async def inbound(services: Services) -> list[Envelope]:
    """Everything on `inbound` now (each received once: it stays invisible for a minute)."""
    found: list[Envelope] = []
    azure = azure_stores(services)
    for _ in range(50):
        batch = await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=60)
        if not batch:
            return found
        found += [Envelope.model_validate_json(m.body) for m in batch]
    raise AssertionError(f"inbound never drained: {len(found)} messages received in 50 batches")


async def failures_of(services: Services, integration: str = "orders"):
    return await stored_failures(services.stores.failures, integration)


async def test_parked_message_is_reinserted_with_recovery_count_plus_one(services):
    # Given a message parked on the recovery flow
    envelope = Envelope(integration="orders", body_text='{"n": 1}')
    await services.parker.park_envelope(envelope, "ingest: inbound unreachable")

    # When the sweep runs
    result = await services.sweeper.sweep(trigger="manual")

    # Then it is back on inbound once, counted, and the recovery queue is empty
    [back] = await inbound(services)
    assert (back.id, back.recovery_count, back.body_text) == (envelope.id, 1, '{"n": 1}')
    azure = azure_stores(services)
    assert (result.healthy, result.reinserted, result.by_queue) == (True, 1, {azure.names.recovery: 1})
    assert await azure.account.queues.depth(azure.names.recovery) == 0


async def test_a_large_parked_body_waits_beside_the_flow_and_comes_back_byte_identical(services):
    body = os.urandom(300 * 1024)
    envelope = Envelope(integration="orders", body_b64=__import__("base64").b64encode(body).decode())

    await services.parker.park_envelope(envelope, "ingest: inbound unreachable")
    await services.sweeper.sweep(trigger="manual")

    [back] = await inbound(services)
    assert back.body_ref == envelope.id  # claim-checked into the main payloads
    stored = await services.stores.payloads.get(envelope.id)
    assert stored is not None and stored.data == body


async def test_poisoned_inbound_message_is_reinserted(services):
    envelope = Envelope(integration="orders", body_text="x", recovery_count=1)
    _, text = await pack(envelope, services.stores.payloads)
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound_poison, text)

    result = await services.sweeper.sweep(trigger="timer")

    [back] = await inbound(services)
    assert back.recovery_count == 2
    assert result.by_queue == {azure.names.inbound_poison: 1}


async def test_past_the_reinsert_limit_a_message_becomes_a_catastrophic_failure_with_its_content(services):
    envelope = Envelope(integration="orders", body_text='{"n": 9}', recovery_count=2)
    await services.parker.park_envelope(envelope, "engine: failures table unreachable")

    result = await services.sweeper.sweep(trigger="manual")

    assert (result.reinserted, result.gave_up) == (0, 1)
    assert await inbound(services) == []
    [failure] = await failures_of(services)
    assert failure.origin is FailureOrigin.CATASTROPHIC
    assert "gave up after 2 reinserts" in failure.reason
    content = await services.stores.payloads.get(failure.body_ref or "")
    assert content is not None and content.data == b'{"n": 9}'


async def test_unreadable_poison_message_becomes_an_ingest_failure(services):
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound_poison, "not an envelope at all")

    result = await services.sweeper.sweep(trigger="manual")

    assert result.gave_up == 1
    [failure] = await failures_of(services, "_unknown")
    assert failure.origin is FailureOrigin.INGEST


async def test_two_overlapping_sweeps_move_each_message_exactly_once(services, recovery_settings):
    # Given 40 parked messages and a second instance with its own clients
    for number in range(40):
        await services.parker.park_envelope(Envelope(integration="orders", body_text=str(number)), "test")
    other = Services(Settings.from_env(recovery_settings))

    # When both sweep at the same time
    try:
        results = await asyncio.gather(services.sweeper.sweep(trigger="timer"), other.sweeper.sweep(trigger="timer"))
    finally:
        await other.close()

    # Then every message is on inbound once
    ids = [e.body_text for e in await inbound(services)]
    assert sorted(ids, key=lambda text: int(text or "0")) == [str(n) for n in range(40)]
    assert sum(r.reinserted for r in results) == 40


async def test_a_sweep_moves_at_most_its_batch_size(recovery_settings):
    services = Services(Settings.from_env({**recovery_settings, "RECOVERY_BATCH_SIZE": "5"}))
    azure = azure_stores(services)
    try:
        for number in range(12):
            await services.parker.park_envelope(Envelope(integration="orders", body_text=str(number)), "test")

        result = await services.sweeper.sweep(trigger="timer")

        assert result.reinserted == 5
        assert await azure.account.queues.depth(azure.names.recovery) == 7
    finally:
        await services.close()


async def test_sweep_pauses_while_inbound_is_deep(recovery_settings):
    services = Services(Settings.from_env({**recovery_settings, "MAX_INBOUND_DEPTH": "2"}))
    azure = azure_stores(services)
    try:
        for _ in range(3):
            await azure.account.queues.send(azure.names.inbound, "{}")
        await services.parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")

        result = await services.sweeper.sweep(trigger="timer")

        assert result.reinserted == 0
        assert result.reason is not None and "backpressure" in result.reason
    finally:
        await services.close()


async def test_sweep_does_nothing_while_main_storage_is_unhealthy(recovery_settings, azurite):
    # Given the main account unreachable and the recovery account up with a parked message
    settings = {
        **recovery_settings,
        "AzureWebJobsStorage": dead_storage(),
        "RecoveryStorage": azurite.connection_string,
    }
    services = Services(Settings.from_env(settings))
    azure = azure_stores(services)
    try:
        await services.parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")

        result = await services.sweeper.sweep(trigger="timer")

        assert not result.healthy
        assert "main storage unhealthy" in (result.reason or "")
        assert await azure.recovery_account.queues.depth(azure.names.recovery) == 1
    finally:
        await services.close()


async def test_status_counts_each_queue_and_remembers_the_last_sweep(services):
    await services.parker.park_envelope(Envelope(integration="orders", body_text="x"), "test")
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound_poison, "junk")

    before = await services.sweeper.status()
    await services.sweeper.sweep(trigger="manual")
    after = await services.sweeper.status()

    counts = {q.name: q.count for q in before.queues}
    assert counts[azure.names.recovery] == 1 and counts[azure.names.inbound_poison] == 1
    assert before.queues[0].oldest_age_s is not None
    assert after.last_sweep is not None and after.last_sweep.trigger == "manual"
    assert {q.name: q.count for q in after.queues}[azure.names.recovery] == 0


async def test_ingest_parks_when_inbound_is_unreachable_and_fails_only_when_both_are(recovery_settings, azurite):
    async def ingest(services: Services):
        return await services.ingest.accept(
            IncomingMessage("orders", b"{}", "application/json", {}), now=FakeTime().now()
        )

    # Main down, recovery up: parked (accepted)
    main_down = Services(
        Settings.from_env(
            {**recovery_settings, "AzureWebJobsStorage": dead_storage(), "RecoveryStorage": azurite.connection_string}
        )
    )
    both_down = Services(
        Settings.from_env(
            {**recovery_settings, "AzureWebJobsStorage": dead_storage(), "RecoveryStorage": dead_storage()}
        )
    )
    try:
        accepted = await ingest(main_down)
        with pytest.raises(StorageUnavailable):
            await ingest(both_down)
    finally:
        await main_down.close()
        await both_down.close()

    # Then the first was accepted as parked (the second was refused above)
    assert accepted.parked
    recovery = Services(Settings.from_env(recovery_settings))
    try:
        [message] = await azure_stores(recovery).account.queues.receive(azure_stores(recovery).names.recovery)
    finally:
        await recovery.close()
    # And what was parked is the envelope ingest built, bound for inbound, saying why
    parked = ParkedMessage.model_validate_json(message.body)
    assert parked.flow == "inbound"
    assert parked.reason.startswith("ingest: "), parked.reason
    envelope = Envelope.model_validate_json(parked.text)
    assert (envelope.id, envelope.integration) == (accepted.envelope.id, "orders")
    # (with the correlation id ingest defaults to the message id, and the body as received)
    assert envelope.correlation_id == accepted.envelope.id
    assert envelope.inline_body() == b"{}"


async def test_engine_parks_the_message_when_it_cannot_record_a_failure(recovery_settings, azurite):
    # Given an engine whose main storage is gone (config, failures, requeue all unreachable)
    settings = {
        **recovery_settings,
        "AzureWebJobsStorage": dead_storage(),
        "RecoveryStorage": azurite.connection_string,
    }
    services = Services(Settings.from_env(settings))
    azure = azure_stores(services)
    try:
        raw = Envelope(integration="orders", body_text="x").model_dump_json().encode()

        outcome = await services.engine.process_message(raw, queue_message_id="q1")

        assert isinstance(outcome, Parked)
        assert await azure.recovery_account.queues.depth(azure.names.recovery) == 1
    finally:
        await services.close()


async def test_retry_job_parks_a_message_it_cannot_enqueue_and_still_completes(services):
    # Given a failure and a job service whose inbound sends fail
    time = FakeTime()
    envelope = Envelope(integration="orders", body_text="x")
    await services.stores.payloads.put(envelope.id, b"x", content_type=None)
    await services.stores.failures.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="r", now=time.now(), body_ref=envelope.id)
    )

    class NoInbound:
        """`inbound`, down: every send fails."""

        def __init__(self, inner: MessageQueue) -> None:
            self._inner, self.name = inner, inner.name

        async def send(self, text: str, *, delay_s: int | None = None) -> None:
            raise StorageUnavailable("inbound down (injected)")

        async def depth(self) -> int:
            return await self._inner.depth()

    stores, settings = services.stores, services.settings
    jobs = JobService(
        jobs=stores.jobs, integrations=stores.integrations, failures=stores.failures, payloads=stores.payloads,
        inbound=NoInbound(stores.inbound), job_pages=stores.job_pages,
        limits=JobLimits(
            page_size=settings.job_page_size, rate_per_s=settings.job_rate_limit_per_s,
            max_inbound_depth=settings.max_inbound_depth,
        ),
        metrics=services.metrics, audit=services.audit, parker=services.parker,
    )  # fmt: skip
    azure = azure_stores(services)

    # When a retry job runs
    job = await jobs.start(
        "orders", JobRequest(action=JobAction.RETRY, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    [message] = await azure.account.queues.receive(azure.names.jobs_queue)
    await jobs.run_page(message.body, message_id=message.id, now=time.now())

    # Then the message waits on the recovery flow and the failure is gone
    assert (await jobs.get("orders", job.id, now=time.now())).state is JobState.COMPLETED
    assert await azure.account.queues.depth(azure.names.recovery) == 1
    assert await failures_of(services) == []


async def test_poisoned_job_page_is_reinserted_and_past_the_limit_fails_the_job(services):
    # Real time: the sweep's stalled-job watchdog reads the real clock.
    time = FakeTime(utc_now())
    envelope = Envelope(integration="orders", body_text="x")
    await services.stores.failures.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="r", now=time.now(), body_ref=envelope.id)
    )
    job = await services.jobs.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )
    azure = azure_stores(services)
    await azure.account.queues.clear(azure.names.jobs_queue)
    page = {"integration": "orders", "job_id": job.id}

    await azure.account.queues.send(f"{azure.names.jobs_queue}-poison", json.dumps(page))
    first = await services.sweeper.sweep(trigger="manual")
    [moved] = await azure.account.queues.receive(azure.names.jobs_queue)
    await azure.account.queues.send(f"{azure.names.jobs_queue}-poison", json.dumps({**page, "recovery_count": 2}))
    second = await services.sweeper.sweep(trigger="manual")

    assert first.reinserted == 1 and json.loads(moved.body)["recovery_count"] == 1
    assert second.gave_up == 1
    ended = await services.jobs.get("orders", job.id, now=time.now())
    assert ended.state is JobState.FAILED and "gave up" in (ended.last_error or "")
    await services.jobs.start(
        "orders", JobRequest(action=JobAction.DELETE, selection=JobSelection(all=True)), actor=TESTER, now=time.now()
    )


async def test_retention_purges_old_failures_and_their_content_and_keeps_recent_ones(services):
    time = FakeTime()
    old = Envelope(integration="orders", body_text="old")
    await services.stores.payloads.put(old.id, b"old", content_type=None)
    await services.stores.failures.add(
        new_failure(old, origin=FailureOrigin.ENDPOINT, reason="r", now=time.now() - timedelta(days=8), body_ref=old.id)
    )
    recent = Envelope(integration="orders", body_text="new")
    await services.stores.payloads.put(recent.id, b"new", content_type=None)
    await services.stores.failures.add(
        new_failure(
            recent, origin=FailureOrigin.ENDPOINT, reason="r", now=time.now() - timedelta(days=1), body_ref=recent.id
        )
    )

    stores = services.stores
    retention = Retention(stores.failures, stores.payloads, stores.error_window, retention_days=7)
    result = await retention.purge(now=time.now())

    assert (result.failures, result.payloads) == (1, 1)
    assert [f.message_id for f in await failures_of(services)] == [recent.id]
    assert await services.stores.payloads.get(old.id) is None
    assert (await services.stores.failures.summary("orders")).count == 1


async def test_delivered_engine_message_is_not_parked(services):
    await services.stores.integrations.put(
        IntegrationConfig.model_validate(
            {"id": "orders", "name": "o", "endpoint": {"kind": "http", "url": "http://x/"}}
        )
    )
    engine = services.engine
    engine._senders = OneSender(ScriptedSender([ok()]))

    outcome = await engine.process_message(
        Envelope(integration="orders", body_text="x").model_dump_json().encode(), queue_message_id="q"
    )

    assert not isinstance(outcome, Parked)
    azure = azure_stores(services)
    assert await azure.account.queues.depth(azure.names.recovery) == 0


async def test_service_bus_backend_sweeps_the_flow_and_its_dead_letters_back_to_inbound(services):
    # Given the Service Bus backend (FAKE client) with one parked and one dead-lettered message
    from azure.servicebus import ServiceBusMessage

    from shared.recovery.sweeper import Parker, RecoverySweeper
    from shared.storage.recovery_service_bus import ServiceBusRecoveryFlow
    from tests.twins.service_bus import FakeServiceBusClient

    client = FakeServiceBusClient()
    flow = ServiceBusRecoveryFlow(client, "recovery", timeout_s=5)
    await Parker(flow, delay_s=0, metrics=services.metrics).park_envelope(
        Envelope(integration="orders", body_text="a"), "test"
    )
    dead = ParkedMessage(
        flow="inbound",
        text=Envelope(integration="orders", body_text="b").model_dump_json(),
        reason="dlq",
        parked_at=utc_now(),
    )
    client.enqueue("recovery/$deadletterqueue", ServiceBusMessage(dead.model_dump_json()))
    stores = services.stores
    sweeper = RecoverySweeper(
        flow=flow, poison=stores.poison, inbound=stores.inbound, job_pages=stores.job_pages,
        payloads=stores.payloads, failures=stores.failures, jobs=services.jobs, state=stores.sweep_state,
        main_flow=stores.main_flow, max_reinserts=3, batch_size=100, max_inbound_depth=1000,
        metrics=services.metrics, audit=services.audit,
    )  # fmt: skip

    # When it sweeps
    result = await sweeper.sweep(trigger="manual")

    # Then both are back on inbound
    assert result.reinserted == 2
    assert result.by_queue == {"recovery": 1, "recovery/$deadletterqueue": 1}
    assert sorted(e.body_text or "" for e in await inbound(services)) == ["a", "b"]
    await flow.close()
