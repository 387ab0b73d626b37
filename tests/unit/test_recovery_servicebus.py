"""The Service Bus recovery backend against the FAKE Service Bus client (no emulator exists here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.servicebus.exceptions import MessageLockLostError, ServiceBusConnectionError

from shared.errors import ConcurrencyConflict, StorageUnavailable
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from shared.recovery.models import ParkedMessage
from shared.recovery.parker import Parker
from shared.recovery.sweeper import RecoverySweeper
from shared.storage.recovery_service_bus import ServiceBusRecoveryFlow
from tests.twins.service_bus import FakeServiceBusClient
from tests.unit.on_twins import audit_on, envelopes_on, make_jobs


@pytest.fixture
def client() -> FakeServiceBusClient:
    return FakeServiceBusClient()


@pytest.fixture
def store(client: FakeServiceBusClient) -> ServiceBusRecoveryFlow:
    return ServiceBusRecoveryFlow(client, "recovery", timeout_s=5)


async def test_parking_schedules_the_message_after_the_park_delay(client):
    # Given a store and a parker on a clock that stands still, with a 30 s park delay
    fixed_now = datetime.now(UTC)
    store = ServiceBusRecoveryFlow(client, "recovery", timeout_s=5, clock=lambda: fixed_now)
    parker = Parker(store, delay_s=30, metrics=Metrics(), clock=lambda: fixed_now)

    # When a message is parked
    await parker.park_envelope(Envelope(integration="orders", body_text="x"), "ingest: inbound down")

    # Then it is scheduled exactly the park delay after parking, and not receivable before its time
    [stored] = client.queue("recovery")
    assert stored.visible_at == fixed_now + timedelta(seconds=30)
    assert await store.receive(10, lease_s=60) == []


async def test_parked_message_is_received_completed_and_counted(client, store):
    parker = Parker(store, delay_s=0, metrics=Metrics())
    envelope = Envelope(integration="orders", body_text="x")
    await parker.park_envelope(envelope, "engine: tables down")

    status = await store.status()
    [message] = await store.receive(10, lease_s=60)
    await store.delete(message)

    assert (status.count, status.kind, status.name) == (1, "recovery", "recovery")
    parked = ParkedMessage.model_validate_json(message.text)
    assert Envelope.model_validate_json(parked.text).id == envelope.id
    assert (await store.status()).count == 0


async def test_a_received_but_uncompleted_message_stays_locked_then_returns(client, store):
    await Parker(store, delay_s=0, metrics=Metrics()).park_text("jobs", '{"integration": "o", "job_id": "j"}', "poison")

    first = await store.receive(10, lease_s=60)
    again = await store.receive(10, lease_s=60)

    assert len(first) == 1 and again == []


async def test_body_too_large_for_service_bus_cannot_be_parked(store):
    big = Envelope(integration="orders", body_b64="A" * (400 * 1024))

    with pytest.raises(StorageUnavailable, match="too large"):
        await Parker(store, delay_s=0, metrics=Metrics()).park_envelope(big, "ingest")


async def test_broker_outage_is_storage_unavailable(client, store):
    client.fail_always("recovery", ServiceBusConnectionError(message="namespace unreachable"))

    with pytest.raises(StorageUnavailable):
        await Parker(store, delay_s=0, metrics=Metrics()).park_envelope(
            Envelope(integration="orders", body_text="x"), "ingest"
        )


async def test_close_closes_handlers_and_client(client, store):
    await Parker(store, delay_s=0, metrics=Metrics()).park_envelope(
        Envelope(integration="orders", body_text="x"), "test"
    )
    await store.receive(1, lease_s=60)

    await store.close()

    assert client.closed


async def test_dead_lettered_messages_are_a_source_of_their_own(client, store):
    # Given a parked message the broker dead-lettered (maxDeliveryCount exceeded)
    from azure.servicebus import ServiceBusMessage

    parked = ParkedMessage(
        flow="inbound", text='{"integration": "orders"}', reason="test", parked_at="2026-11-23T12:00:00Z"
    )
    client.enqueue("recovery/$deadletterqueue", ServiceBusMessage(parked.model_dump_json()))

    # When the sweep's sources are read
    [dead_letters] = store.extra_sources()
    status = await dead_letters.status()
    [message] = await dead_letters.receive(10, lease_s=60)
    await dead_letters.delete(message)

    # Then the dead-letter queue is counted, read and emptied like the flow itself
    assert (status.name, status.kind, status.count) == ("recovery/$deadletterqueue", "recovery", 1)
    assert ParkedMessage.model_validate_json(message.text).reason == "test"
    assert (await dead_letters.status()).count == 0
    assert (await store.status()).count == 0


async def test_completing_a_message_whose_lock_lapsed_is_a_conflict(client, store, monkeypatch):
    # Given a received message whose lock the broker has since given to another receiver
    await Parker(store, delay_s=0, metrics=Metrics()).park_envelope(Envelope(integration="orders", body_text="x"), "t")
    [message] = await store.receive(10, lease_s=60)
    receiver = await store._get_receiver()

    async def lock_lost(_message: object) -> None:
        raise MessageLockLostError(message="the lock supplied is invalid")

    monkeypatch.setattr(receiver, "complete_message", lock_lost)

    # When it is completed, then that is a conflict (the sweep counts it), not an outage
    with pytest.raises(ConcurrencyConflict):
        await store.delete(message)


async def test_the_sweep_moves_the_flow_and_its_dead_letters_back_to_inbound(client, stores, fake_time):
    # Given the Service Bus backend with one parked and one dead-lettered message
    from azure.servicebus import ServiceBusMessage

    flow = ServiceBusRecoveryFlow(client, "recovery", timeout_s=5, clock=fake_time.now)
    await Parker(flow, delay_s=0, metrics=Metrics()).park_envelope(Envelope(integration="orders", body_text="a"), "t")
    dead = ParkedMessage(
        flow="inbound",
        text=Envelope(integration="orders", body_text="b").model_dump_json(),
        reason="dlq",
        parked_at=fake_time.now(),
    )
    client.enqueue("recovery/$deadletterqueue", ServiceBusMessage(dead.model_dump_json()))
    sweeper = RecoverySweeper(
        flow=flow, poison=stores.poison, inbound=InboundShards(stores.inbound_shards), job_pages=stores.job_pages,
        payloads=stores.payloads, failures=stores.failures, jobs=make_jobs(stores, fake_time).runner,
        state=stores.sweep_state, main_flow=stores.main_flow, max_reinserts=3, batch_size=100,
        max_inbound_depth=1000, metrics=Metrics(), audit=audit_on(stores, fake_time), clock=fake_time.now,
    )  # fmt: skip

    # When it sweeps
    result = await sweeper.sweep(trigger="manual")

    # Then both are back on inbound, each counted under its own queue
    assert result.reinserted == 2
    assert result.by_queue == {"recovery": 1, "recovery/$deadletterqueue": 1}
    assert sorted(e.body_text or "" for e in envelopes_on(stores)) == ["a", "b"]
    await flow.close()
