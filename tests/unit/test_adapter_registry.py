"""SenderRegistry: one sender per endpoint, shared clients, config errors up front, everything closed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shared.config.models import HttpEndpoint, ServiceBusEndpoint, StorageQueueEndpoint
from shared.delivery.adapters.base import Delivery
from shared.delivery.adapters.http import HttpSender
from shared.delivery.adapters.registry import SenderRegistry
from shared.delivery.adapters.service_bus import ServiceBusSender
from shared.delivery.adapters.storage_queue import StorageQueueSender
from shared.errors import ConfigError
from shared.settings import Connection, Settings
from shared.storage.account import StorageAccount
from tests.twins.service_bus import FakeServiceBusClient

# A well-formed connection string to a port nothing listens on: clients build, nothing is contacted.
STORAGE_CS = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1"
)
SERVICE_BUS_CS = "Endpoint=sb://rebound.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=a2V5"

HTTP = HttpEndpoint.model_validate({"url": "http://receiver.test/orders"})
OTHER_HTTP = HttpEndpoint.model_validate({"url": "http://receiver.test/invoices"})
QUEUE = StorageQueueEndpoint(connection="OutboundStorage", queue="orders-out")
OTHER_QUEUE = StorageQueueEndpoint(connection="OutboundStorage", queue="invoices-out")
BUS = ServiceBusEndpoint(connection="ServiceBusConnection", entity="orders")
OTHER_BUS = ServiceBusEndpoint(connection="ServiceBusConnection", entity="invoices")


class ClosingAccount(StorageAccount):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection, timeout_s=1)
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


class Built:
    """Records what the registry's factories built."""

    def __init__(self) -> None:
        self.http_clients: list[httpx.AsyncClient] = []
        self.accounts: list[ClosingAccount] = []
        self.buses: list[FakeServiceBusClient] = []
        self.requests: list[httpx.Request] = []

    def http_client(self) -> httpx.AsyncClient:
        def answer(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(204)

        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        self.http_clients.append(client)
        return client

    def account(self, connection: Connection) -> StorageAccount:
        account = ClosingAccount(connection)
        self.accounts.append(account)
        return account

    def bus(self, connection: Connection) -> FakeServiceBusClient:
        client = FakeServiceBusClient(f"{connection.name.lower()}.servicebus.windows.net")
        self.buses.append(client)
        return client


@pytest.fixture
def built() -> Built:
    return Built()


@pytest.fixture
def app_settings() -> dict[str, str]:
    return {
        "OutboundStorage": STORAGE_CS,
        "OtherStorage": STORAGE_CS,
        "ServiceBusConnection": SERVICE_BUS_CS,
        "OtherBus": SERVICE_BUS_CS,
        "ORDERS_TOKEN": "s3cret",
        "ENDPOINT_SECRET_SETTINGS": "ORDERS_TOKEN",
    }


@pytest.fixture
def registry(app_settings: dict[str, str], built: Built) -> Iterator[SenderRegistry]:
    yield SenderRegistry(
        Settings.from_env(app_settings),
        http_client_factory=built.http_client,
        service_bus_client_factory=built.bus,
        storage_account_factory=built.account,
    )


def test_each_endpoint_kind_gets_its_sender(registry: SenderRegistry):
    assert isinstance(registry.sender_for(HTTP), HttpSender)
    assert isinstance(registry.sender_for(QUEUE), StorageQueueSender)
    assert isinstance(registry.sender_for(BUS), ServiceBusSender)


def test_an_equal_endpoint_gets_the_same_sender(registry: SenderRegistry):
    # Given two endpoint objects with the same configuration
    twin = HttpEndpoint.model_validate({"url": "http://receiver.test/orders"})

    # Then they share one sender, and a different endpoint gets another
    assert registry.sender_for(twin) is registry.sender_for(HTTP)
    assert registry.sender_for(OTHER_HTTP) is not registry.sender_for(HTTP)


def test_all_http_endpoints_share_one_client(registry: SenderRegistry, built: Built):
    registry.sender_for(HTTP)
    registry.sender_for(OTHER_HTTP)

    assert len(built.http_clients) == 1


def test_queue_endpoints_share_one_storage_account_per_connection(registry: SenderRegistry, built: Built):
    # When queues on one connection and on another are used
    registry.sender_for(QUEUE)
    registry.sender_for(OTHER_QUEUE)
    registry.sender_for(StorageQueueEndpoint(connection="OtherStorage", queue="orders-out"))

    # Then there is one account per connection setting
    assert [account.connection.name for account in built.accounts] == ["OutboundStorage", "OtherStorage"]


def test_service_bus_endpoints_share_one_client_per_connection(registry: SenderRegistry, built: Built):
    registry.sender_for(BUS)
    registry.sender_for(OTHER_BUS)
    registry.sender_for(ServiceBusEndpoint(connection="OtherBus", entity="orders"))

    assert [client.fully_qualified_namespace for client in built.buses] == [
        "servicebusconnection.servicebus.windows.net",
        "otherbus.servicebus.windows.net",
    ]


@pytest.mark.parametrize(
    "endpoint",
    [
        StorageQueueEndpoint(connection="MissingStorage", queue="orders-out"),
        ServiceBusEndpoint(connection="MissingBus", entity="orders"),
    ],
)
def test_a_missing_connection_setting_is_a_config_error(registry: SenderRegistry, endpoint: object):
    with pytest.raises(ConfigError) as raised:
        registry.sender_for(endpoint)  # type: ignore[arg-type]

    assert "Missing" in raised.value.message


def test_an_identity_connection_without_a_queue_endpoint_is_a_config_error(built: Built):
    # Given a connection that only names a Service Bus namespace
    settings = Settings.from_env({"Mixed__fullyQualifiedNamespace": "rebound.servicebus.windows.net"})
    registry = SenderRegistry(settings, storage_account_factory=built.account)

    # When a queue endpoint uses it
    with pytest.raises(ConfigError) as raised:
        registry.sender_for(StorageQueueEndpoint(connection="Mixed", queue="orders-out"))

    # Then it fails at lookup, naming the missing setting
    assert "Mixed__queueServiceUri" in raised.value.message


def test_a_storage_connection_string_the_sdk_refuses_is_a_config_error_that_does_not_quote_it():
    settings = Settings.from_env({"OutboundStorage": "AccountKey=s3cret"})
    registry = SenderRegistry(settings)

    with pytest.raises(ConfigError) as raised:
        registry.sender_for(QUEUE)

    assert "s3cret" not in str(raised.value)
    assert raised.value.__cause__ is None


def test_a_failed_lookup_is_not_cached(built: Built):
    # Given a registry whose settings lack the connection
    registry = SenderRegistry(Settings.from_env({}), storage_account_factory=built.account)
    with pytest.raises(ConfigError):
        registry.sender_for(QUEUE)

    # Then nothing half-built was kept
    assert built.accounts == []


async def test_endpoint_header_settings_resolve_against_the_registry_settings(registry: SenderRegistry, built: Built):
    # Given an HTTP endpoint whose Authorization references an app setting
    endpoint = HttpEndpoint.model_validate(
        {"url": "http://receiver.test/orders", "headers": {"Authorization": "Bearer %ORDERS_TOKEN%"}}
    )

    # When a delivery goes out through the registry's sender
    await registry.sender_for(endpoint).send(Delivery(message_id="m", integration="orders", body=b"x"))

    # Then the setting's value was filled in
    assert built.requests[0].headers["Authorization"] == "Bearer s3cret"


async def test_aclose_closes_every_client_and_sender_it_built(registry: SenderRegistry, built: Built):
    # Given senders of every kind, one of them with an open link
    registry.sender_for(HTTP)
    registry.sender_for(QUEUE)
    await registry.sender_for(BUS).send(Delivery(message_id="m", integration="orders", body=b"x"))

    # When the registry is closed (twice, as shutdown paths may)
    await registry.aclose()
    await registry.aclose()

    # Then the HTTP client, the storage account, the bus client and its link are all closed
    assert built.http_clients[0].is_closed
    assert built.accounts[0].closed
    assert built.buses[0].closed
    assert built.buses[0].senders[0].closed


async def test_aclose_keeps_going_past_a_failing_close(registry: SenderRegistry, built: Built):
    # Given a bus client whose close fails
    registry.sender_for(BUS)
    registry.sender_for(HTTP)

    async def broken() -> None:
        raise RuntimeError("already gone")

    built.buses[0].close = broken  # type: ignore[method-assign]

    # When the registry is closed
    await registry.aclose()

    # Then the others were still closed
    assert built.http_clients[0].is_closed
