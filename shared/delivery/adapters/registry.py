"""One sender per endpoint, and the clients behind them, built on first use and closed together.

Clients are the expensive part (connection pools, AMQP connections), so they are shared
as widely as they safely can be: one `httpx.AsyncClient` for every HTTP endpoint, one
storage account per connection setting, one Service Bus client per connection setting.
Everything here is bound to the event loop that first used it, like `shared.services`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx

from shared.config.models import Endpoint, HttpEndpoint, StorageQueueEndpoint
from shared.delivery.adapters.base import Sender
from shared.delivery.adapters.http import HttpSender, SettingResolver, build_http_client
from shared.delivery.adapters.service_bus import SdkServiceBusClient, ServiceBusSender
from shared.delivery.adapters.storage_queue import StorageQueueSender
from shared.egress import EgressPolicy
from shared.errors import ConfigError
from shared.settings import Connection, Settings
from shared.storage.account import StorageAccount
from shared.storage.clients import build_service_bus_client
from shared.storage.queues import QueueGateway

logger = logging.getLogger(__name__)

HttpClientFactory = Callable[[], httpx.AsyncClient]
ServiceBusClientFactory = Callable[[Connection], SdkServiceBusClient]
StorageAccountFactory = Callable[[Connection], StorageAccount]


class SenderRegistry:
    """Builds and caches the `Sender` for each endpoint.

    The factories are injection points (tests pass an `httpx.MockTransport` client or the fake
    Service Bus client); whatever they return is owned, and closed, by the registry. An injected
    HTTP client bypasses the address checks of `build_http_client`; setting references are
    checked by the sender either way.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http_client_factory: HttpClientFactory | None = None,
        service_bus_client_factory: ServiceBusClientFactory | None = None,
        storage_account_factory: StorageAccountFactory | None = None,
        resolve_setting: SettingResolver | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.egress = egress or settings.egress_policy()
        self._http_client_factory = http_client_factory or (lambda: build_http_client(self.egress))
        self._service_bus_client_factory = service_bus_client_factory or build_service_bus_client
        self._storage_account_factory = storage_account_factory or self._build_storage_account
        self._resolve_setting = resolve_setting or settings.app_setting
        self._senders: dict[str, Sender] = {}
        self._http_client: httpx.AsyncClient | None = None
        self._storage_accounts: dict[str, StorageAccount] = {}
        self._service_bus_clients: dict[str, SdkServiceBusClient] = {}

    def sender_for(self, endpoint: Endpoint) -> Sender:
        """The sender for `endpoint`, built on first use; `ConfigError` if its connection setting is missing."""
        key = endpoint.model_dump_json()
        sender = self._senders.get(key)
        if sender is None:
            sender = self._build(endpoint)
            self._senders[key] = sender
        return sender

    def _build(self, endpoint: Endpoint) -> Sender:
        if isinstance(endpoint, HttpEndpoint):
            return HttpSender(endpoint, self._http(), resolve_setting=self._resolve_setting, egress=self.egress)
        if isinstance(endpoint, StorageQueueEndpoint):
            return StorageQueueSender(endpoint, self._queues(endpoint.connection))
        return ServiceBusSender(endpoint, self._service_bus_client(endpoint.connection))

    def _http(self) -> httpx.AsyncClient:
        if self._http_client is None:
            self._http_client = self._http_client_factory()
        return self._http_client

    def _storage_account(self, name: str) -> StorageAccount:
        account = self._storage_accounts.get(name)
        if account is None:
            connection = self.settings.connection(name)
            if connection.uses_identity and "queue" not in connection.service_uris:
                # Caught here rather than at the first send, so the engine records it as a config failure.
                raise ConfigError(
                    f"connection setting {name!r} has no queue endpoint ({name}__queueServiceUri or __accountName)"
                )
            account = self._storage_account_factory(connection)
            self._storage_accounts[name] = account
        return account

    def _queues(self, name: str) -> QueueGateway:
        account = self._storage_account(name)
        try:
            return account.queues
        except ValueError:
            # The SDK refused the connection string; not chained, as its message may quote the key.
            raise ConfigError(f"connection setting {name!r} is not a storage connection string") from None

    def _build_storage_account(self, connection: Connection) -> StorageAccount:
        return StorageAccount(connection, timeout_s=self.settings.storage_timeout_s)

    def _service_bus_client(self, name: str) -> SdkServiceBusClient:
        client = self._service_bus_clients.get(name)
        if client is None:
            client = self._service_bus_client_factory(self.settings.connection(name))
            self._service_bus_clients[name] = client
        return client

    async def aclose(self) -> None:
        """Close senders, then the clients they used. Keeps going past a failing close; safe to call twice."""
        senders, self._senders = self._senders, {}
        service_bus, self._service_bus_clients = self._service_bus_clients, {}
        accounts, self._storage_accounts = self._storage_accounts, {}
        http_client, self._http_client = self._http_client, None

        for sender in senders.values():
            await _quietly(sender.target, sender.aclose)
        for name, client in service_bus.items():
            await _quietly(f"service bus client {name}", client.close)
        for name, account in accounts.items():
            await _quietly(f"storage account {name}", account.close)
        if http_client is not None:
            await _quietly("http client", http_client.aclose)


async def _quietly(what: str, close: Callable[[], Awaitable[None]]) -> None:
    try:
        await close()
    except Exception:
        # Shutdown must release everything else even when one client is already broken.
        logger.warning("closing %s failed", what, exc_info=True)
