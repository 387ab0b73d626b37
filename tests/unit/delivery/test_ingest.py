"""Ingest on the twins: accepted onto `inbound`, parked when `inbound` is down, refused when both flows are."""

from __future__ import annotations

import pytest

from shared.delivery.ingest import MAX_FORWARDED_HEADERS, IncomingMessage
from shared.errors import HeadersTooLarge, IntegrationNotFound, PayloadTooLarge, StorageUnavailable
from shared.messages.models import Envelope
from shared.messages.wire import MAX_INLINE_ENVELOPE_BYTES
from shared.recovery.models import ParkedMessage
from tests.twins.senders import ScriptedSender, ok
from tests.unit.on_twins import envelopes_on, make_config, make_engine, run_inbound, services_on

LIMIT = 2048


def message(body: bytes = b"{}", headers: dict[str, str] | None = None) -> IncomingMessage:
    return IncomingMessage("orders", body, "application/json", headers or {})


@pytest.fixture
async def services(stores):
    await stores.integrations.put(make_config(sender="shop", receiver="erp"))
    return services_on(stores, MAX_MESSAGE_BYTES=str(LIMIT), RECOVERY_PARK_DELAY_S="0")


async def test_an_accepted_message_waits_on_inbound_as_an_envelope(services, stores, fake_time):
    # When a message is accepted
    accepted = await services.ingest.accept(
        message(headers={"X-Correlation-Id": "c-1", "X-Custom": "v"}), now=fake_time.now()
    )

    # Then it is on inbound, in the envelope ingest built from the config and the headers
    assert accepted.parked is False
    [envelope] = envelopes_on(stores)
    assert envelope == accepted.envelope
    assert (envelope.sender, envelope.receiver, envelope.correlation_id) == ("shop", "erp", "c-1")
    assert envelope.headers == {"x-custom": "v"}
    assert envelope.received_at == fake_time.now()


async def test_a_body_exactly_at_the_limit_is_accepted_and_one_byte_more_is_too_large(services, fake_time):
    accepted = await services.ingest.accept(message(b"x" * LIMIT), now=fake_time.now())

    with pytest.raises(PayloadTooLarge) as caught:
        await services.ingest.accept(message(b"x" * (LIMIT + 1)), now=fake_time.now())

    assert accepted.parked is False
    assert caught.value.http_status == 413 and caught.value.details["limit_bytes"] == LIMIT


async def test_too_many_headers_to_forward_are_refused(services, fake_time):
    headers = {f"X-H{i}": "v" for i in range(MAX_FORWARDED_HEADERS + 1)}

    with pytest.raises(HeadersTooLarge) as caught:
        await services.ingest.accept(message(headers=headers), now=fake_time.now())

    assert caught.value.http_status == 431


async def test_an_unknown_integration_is_not_found(services, fake_time):
    with pytest.raises(IntegrationNotFound):
        await services.ingest.accept(IncomingMessage("ghost", b"{}", None, {}), now=fake_time.now())


async def test_a_large_body_goes_to_the_payload_store_and_travels_by_reference(stores, fake_time):
    await stores.integrations.put(make_config())
    services = services_on(stores)
    body = b"y" * (MAX_INLINE_ENVELOPE_BYTES + 1)

    accepted = await services.ingest.accept(message(body), now=fake_time.now())

    [envelope] = envelopes_on(stores)
    assert envelope.body_ref == accepted.envelope.id and envelope.body_text is None
    stored = await stores.payloads.get(envelope.body_ref)
    assert stored is not None and stored.data == body


async def test_when_inbound_is_down_the_message_is_parked_and_still_accepted(services, stores, fake_time):
    # Given inbound unreachable
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"), times=None)

    # When a message arrives
    accepted = await services.ingest.accept(message(b'{"n": 1}'), now=fake_time.now())

    # Then it is accepted as parked: on the recovery flow, bound for inbound, saying why
    assert accepted.parked is True
    [parked] = [ParkedMessage.model_validate_json(text) for text in stores.recovery.texts()]
    assert parked.flow == "inbound" and parked.reason.startswith("ingest: ")
    envelope = Envelope.model_validate_json(parked.text)
    assert envelope.id == accepted.envelope.id and envelope.inline_body() == b'{"n": 1}'
    # (with the correlation id ingest defaults to the message id)
    assert envelope.correlation_id == accepted.envelope.id


async def test_when_the_config_store_is_down_the_message_is_parked_unchecked(services, stores, fake_time):
    stores.integrations.arm("get", StorageUnavailable("config table unreachable"))
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"))

    accepted = await services.ingest.accept(message(), now=fake_time.now())

    assert accepted.parked is True and len(stores.recovery.texts()) == 1


async def test_when_both_flows_are_down_the_message_is_refused_and_nothing_is_kept(services, stores, fake_time):
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"), times=None)
    stores.recovery.arm("send", StorageUnavailable("recovery unreachable"), times=None)

    with pytest.raises(StorageUnavailable):
        await services.ingest.accept(message(), now=fake_time.now())

    assert stores.recovery.texts() == [] and stores.inbound.peek() == []


async def test_x_message_id_becomes_the_idempotency_key_the_receiver_sees(services, stores, fake_time):
    # Given a message sent with its own id
    await services.ingest.accept(message(headers={"X-Message-Id": "m-1"}), now=fake_time.now())
    sender = ScriptedSender([ok()])

    # When the engine delivers it
    await run_inbound(make_engine(stores, fake_time, sender), stores, fake_time)

    # Then the delivery carries that id (the HTTP adapter sends it as Idempotency-Key)
    assert [delivery.message_id for delivery in sender.sent] == ["m-1"]
