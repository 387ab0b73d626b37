"""ServiceBusSender against FakeServiceBusClient (the fake stands in at the SDK client boundary)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus.aio import ServiceBusClient
from azure.servicebus.exceptions import (
    MessageSizeExceededError,
    MessagingEntityDisabledError,
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusError,
    ServiceBusQuotaExceededError,
    ServiceBusServerBusyError,
)

from shared.config.models import ServiceBusEndpoint
from shared.delivery.adapters import service_bus
from shared.delivery.adapters.base import Delivery
from shared.delivery.adapters.service_bus import ServiceBusSender
from shared.errors import ConfigError, DeliveryError, PermanentDeliveryError, TransientDeliveryError
from shared.settings import Connection
from shared.storage import clients
from shared.storage.clients import build_service_bus_client
from tests.twins.service_bus import FakeQueueSender, FakeServiceBusClient, message_body

ENTITY = "orders-in"


def make_delivery(**overrides: Any) -> Delivery:
    values: dict[str, Any] = {
        "message_id": "msg-1",
        "integration": "orders",
        "body": b"\x00\xffbinary",
        "content_type": "application/x-order",
        "correlation_id": "corr-7",
        "headers": {"x-tenant": "acme"},
    }
    values.update(overrides)
    return Delivery(**values)


@pytest.fixture
def client() -> FakeServiceBusClient:
    return FakeServiceBusClient()


@pytest.fixture
def sender(client: FakeServiceBusClient) -> ServiceBusSender:
    return ServiceBusSender(ServiceBusEndpoint(connection="ServiceBusConnection", entity=ENTITY), client)


async def test_message_carries_body_id_correlation_content_type_and_properties(
    client: FakeServiceBusClient, sender: ServiceBusSender
):
    # When a delivery is sent
    response = await sender.send(make_delivery())

    # Then one message with every field arrived on the entity, and the broker's ack reads as 201
    assert response.status_code == 201 and response.ok
    [message] = client.sent[ENTITY]
    assert message_body(message) == b"\x00\xffbinary"
    assert message.message_id == "msg-1"
    assert message.correlation_id == "corr-7"
    assert message.content_type == "application/x-order"
    assert message.application_properties == {"x-tenant": "acme"}


async def test_a_delivery_without_headers_sends_no_properties(client: FakeServiceBusClient, sender: ServiceBusSender):
    await sender.send(make_delivery(headers={}, correlation_id=None, content_type=None))

    [message] = client.sent[ENTITY]
    assert message.application_properties is None
    assert message.correlation_id is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ServiceBusConnectionError(message="link detached"), TransientDeliveryError),
        (OperationTimeoutError(message="timed out"), TransientDeliveryError),
        (ServiceBusServerBusyError(message="busy"), TransientDeliveryError),
        (ServiceBusCommunicationError(message="dns"), TransientDeliveryError),
        (ServiceBusQuotaExceededError(message="full"), TransientDeliveryError),
        (ServiceBusError("something else"), TransientDeliveryError),
        (MessageSizeExceededError(message="too big"), PermanentDeliveryError),
        (MessagingEntityNotFoundError(message="no such queue"), PermanentDeliveryError),
        (ServiceBusAuthenticationError(message="bad key"), PermanentDeliveryError),
        (ServiceBusAuthorizationError(message="no Send claim"), PermanentDeliveryError),
        (MessagingEntityDisabledError(message="disabled"), PermanentDeliveryError),
        (ClientAuthenticationError(message="no managed identity"), PermanentDeliveryError),
    ],
)
async def test_each_sdk_error_maps_to_transient_or_permanent(
    client: FakeServiceBusClient, sender: ServiceBusSender, error: Exception, expected: type[DeliveryError]
):
    # Given the broker fails the next send with an SDK error
    client.fail_next_sends(ENTITY, error)

    # When a delivery is sent
    with pytest.raises(DeliveryError) as raised:
        await sender.send(make_delivery())

    # Then it is mapped to exactly the expected class, naming the SDK error type
    assert type(raised.value) is expected
    assert type(error).__name__ in raised.value.message
    assert client.sent[ENTITY] == []


async def test_the_sender_is_opened_once_and_reused(client: FakeServiceBusClient, sender: ServiceBusSender):
    # When many deliveries go out at once, then one more
    await asyncio.gather(*(sender.send(make_delivery(message_id=f"m{i}")) for i in range(10)))
    await sender.send(make_delivery(message_id="last"))

    # Then exactly one SDK sender was created and opened, and it carried them all
    assert len(client.senders) == 1
    assert client.senders[0].opened
    assert len(client.sent[ENTITY]) == 11


async def test_the_sender_stays_in_use_after_a_transient_failure(
    client: FakeServiceBusClient, sender: ServiceBusSender
):
    # Given one busy answer
    client.fail_next_sends(ENTITY, ServiceBusServerBusyError(message="busy"))
    with pytest.raises(TransientDeliveryError):
        await sender.send(make_delivery())

    # When the next attempt goes out
    await sender.send(make_delivery())

    # Then the same link served it (the SDK reconnects links itself)
    assert len(client.senders) == 1
    assert len(client.sent[ENTITY]) == 1


async def test_a_sender_that_failed_to_open_is_not_kept(client: FakeServiceBusClient, sender: ServiceBusSender):
    # Given the entity is missing when the link first opens
    client.fail_next_opens(ENTITY, MessagingEntityNotFoundError(message="no such queue"))
    with pytest.raises(PermanentDeliveryError):
        await sender.send(make_delivery())

    # When the entity exists by the next attempt
    await sender.send(make_delivery())

    # Then a fresh sender was opened, and the failed one closed
    assert len(client.senders) == 2
    assert client.senders[0].closed
    assert len(client.sent[ENTITY]) == 1


async def test_a_broker_that_outlasts_the_timeout_is_transient_and_the_link_is_replaced(
    client: FakeServiceBusClient, monkeypatch: pytest.MonkeyPatch
):
    # Given a stuck broker and a short send timeout
    monkeypatch.setattr(service_bus, "SEND_TIMEOUT_GRACE_S", 0.0)
    sender = ServiceBusSender(ServiceBusEndpoint(connection="C", entity=ENTITY), client, timeout_s=0.05)
    client.delay_sends(ENTITY, 5)

    # When a delivery is sent
    with pytest.raises(TransientDeliveryError) as raised:
        await sender.send(make_delivery())

    # Then it timed out as transient, and the next attempt opens a new link
    assert "0.05 s" in raised.value.message
    client.delay_sends(ENTITY, 0)
    await sender.send(make_delivery())
    assert len(client.senders) == 2
    assert client.senders[0].closed


class HangingOpenClient(FakeServiceBusClient):
    """Its senders never finish opening their link."""

    def get_queue_sender(self, queue_name: str, **kwargs: object) -> FakeQueueSender:
        sender = super().get_queue_sender(queue_name)

        async def hang() -> FakeQueueSender:
            await asyncio.sleep(60)
            return sender

        sender.__aenter__ = hang  # type: ignore[method-assign]
        return sender


async def test_a_link_that_never_opens_is_transient_and_not_kept(monkeypatch: pytest.MonkeyPatch):
    # Given a broker whose links never open, and a short send timeout
    monkeypatch.setattr(service_bus, "SEND_TIMEOUT_GRACE_S", 0.0)
    client = HangingOpenClient()
    sender = ServiceBusSender(ServiceBusEndpoint(connection="C", entity=ENTITY), client, timeout_s=0.05)

    # When a delivery is sent
    with pytest.raises(TransientDeliveryError):
        await sender.send(make_delivery())

    # Then the half-open sender was closed and dropped
    assert client.senders[0].closed
    assert client.sent[ENTITY] == []


async def test_a_message_id_the_sdk_refuses_is_permanent(client: FakeServiceBusClient, sender: ServiceBusSender):
    with pytest.raises(PermanentDeliveryError):
        await sender.send(make_delivery(message_id="x" * 129))

    assert client.senders == []


async def test_a_message_over_the_broker_limit_is_permanent():
    # Given a broker with a small limit
    client = FakeServiceBusClient(max_message_bytes=1024)
    sender = ServiceBusSender(ServiceBusEndpoint(connection="C", entity=ENTITY), client)

    # When a larger message is sent
    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(make_delivery(body=b"x" * 2048))

    # Then it is refused as too large
    assert "MessageSizeExceededError" in raised.value.message


async def test_aclose_closes_the_sdk_sender(client: FakeServiceBusClient, sender: ServiceBusSender):
    # Given an open sender
    await sender.send(make_delivery())

    # When the adapter is closed
    await sender.aclose()

    # Then its link is closed, the client is left to its owner
    assert client.senders[0].closed
    assert not client.closed


def test_target_names_namespace_and_entity(sender: ServiceBusSender):
    assert sender.target == f"service_bus fake.servicebus.windows.net/{ENTITY}"


async def test_a_client_is_built_from_a_connection_string():
    connection = Connection(
        "ServiceBusConnection",
        connection_string="Endpoint=sb://rebound.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=k3y",
    )

    client = build_service_bus_client(connection)

    assert isinstance(client, ServiceBusClient)
    assert client.fully_qualified_namespace == "rebound.servicebus.windows.net"
    await client.close()


def test_a_malformed_connection_string_is_a_config_error_that_does_not_quote_it():
    connection = Connection("ServiceBusConnection", connection_string="AccountKey=s3cret;nonsense")

    with pytest.raises(ConfigError) as raised:
        build_service_bus_client(connection)

    assert "ServiceBusConnection" in raised.value.message
    assert "s3cret" not in str(raised.value)
    assert raised.value.__cause__ is None


class RecordingCredential:
    def __init__(self) -> None:
        self.closed = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token is needed to build or close a client")

    async def close(self) -> None:
        self.closed += 1


async def test_an_identity_client_is_built_from_the_namespace_and_closes_its_credential(
    monkeypatch: pytest.MonkeyPatch,
):
    # Given an identity-based connection with a namespace
    credential = RecordingCredential()
    monkeypatch.setattr(clients, "build_credential", lambda connection: credential)
    connection = Connection(
        "ServiceBusConnection", fully_qualified_namespace="rebound.servicebus.windows.net", credential="managedidentity"
    )

    # When a client is built and closed
    client = build_service_bus_client(connection)
    await client.close()

    # Then it talks to that namespace and released the credential it was built with
    assert client.fully_qualified_namespace == "rebound.servicebus.windows.net"
    assert credential.closed == 1


def test_an_identity_connection_without_a_namespace_is_a_config_error():
    connection = Connection("ServiceBusConnection", service_uris={"queue": "https://acct.queue.core.windows.net"})

    with pytest.raises(ConfigError) as raised:
        build_service_bus_client(connection)

    assert "ServiceBusConnection__fullyQualifiedNamespace" in raised.value.message
