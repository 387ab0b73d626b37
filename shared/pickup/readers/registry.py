"""A reader per source for each run, and the long-lived clients behind them, closed together.

Like the delivery registry: one storage account per connection setting, one Service Bus client
per connection setting, one vetted HTTP client for every poll. SFTP connections live for one run.
The factories are injection points (tests pass the fake Service Bus client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx

from shared.delivery.adapters.http import SettingResolver, build_http_client
from shared.egress import EgressPolicy
from shared.errors import ConfigError
from shared.pickup.models import BlobSource, HttpPollSource, ServiceBusSource, SftpSource, Source, StorageQueueSource
from shared.pickup.ports import SourceReader
from shared.pickup.readers.blob import BlobReader
from shared.pickup.readers.http_poll import HttpPollReader
from shared.pickup.readers.service_bus import SdkReceivingClient, ServiceBusReader
from shared.pickup.readers.sftp import SftpReader
from shared.pickup.readers.storage_queue import StorageQueueReader
from shared.settings import Connection, Settings
from shared.storage.account import StorageAccount
from shared.storage.clients import build_service_bus_client

logger = logging.getLogger(__name__)

ServiceBusClientFactory = Callable[[Connection], SdkReceivingClient]


class PickupReaders:
    def __init__(
        self,
        settings: Settings,
        *,
        egress: EgressPolicy,
        lease_s: int,
        http_client_factory: Callable[[], httpx.AsyncClient] | None = None,
        service_bus_client_factory: ServiceBusClientFactory | None = None,
        resolve_setting: SettingResolver | None = None,
    ) -> None:
        self.settings = settings
        self.egress = egress
        self._lease_s = lease_s
        self._http_client_factory = http_client_factory or (lambda: build_http_client(egress))
        self._service_bus_client_factory = service_bus_client_factory or build_service_bus_client
        self._resolve_setting = resolve_setting or settings.app_setting
        self._accounts: dict[str, StorageAccount] = {}
        self._service_bus: dict[str, SdkReceivingClient] = {}
        self._http: httpx.AsyncClient | None = None

    def reader_for(self, integration: str, source: Source) -> SourceReader:
        if isinstance(source, BlobSource):
            return BlobReader(source, self._account(source.connection, "blob").blobs)
        if isinstance(source, StorageQueueSource):
            return StorageQueueReader(source, self._account(source.connection, "queue").queues, lease_s=self._lease_s)
        if isinstance(source, ServiceBusSource):
            return ServiceBusReader(source, self._service_bus_client(source.connection))
        if isinstance(source, SftpSource):
            return SftpReader(source, egress=self.egress, resolve_setting=self._resolve_setting)
        assert isinstance(source, HttpPollSource)
        if self._http is None:
            self._http = self._http_client_factory()
        return HttpPollReader(
            source,
            self._http,
            egress=self.egress,
            resolve_setting=self._resolve_setting,
            max_bytes=self.settings.max_message_bytes,
        )

    def _account(self, name: str, service: str) -> StorageAccount:
        account = self._accounts.get(name)
        if account is None:
            connection = self.settings.connection(name)
            if connection.uses_identity and service not in connection.service_uris:
                raise ConfigError(
                    f"connection setting {name!r} has no {service} endpoint "
                    f"({name}__{service}ServiceUri or __accountName)"
                )
            account = StorageAccount(connection, timeout_s=self.settings.storage_timeout_s)
            self._accounts[name] = account
        return account

    def _service_bus_client(self, name: str) -> SdkReceivingClient:
        client = self._service_bus.get(name)
        if client is None:
            client = self._service_bus_client_factory(self.settings.connection(name))
            self._service_bus[name] = client
        return client

    async def aclose(self) -> None:
        accounts, self._accounts = self._accounts, {}
        service_bus, self._service_bus = self._service_bus, {}
        http, self._http = self._http, None
        for account in accounts.values():
            await _quietly(account.close)
        for client in service_bus.values():
            await _quietly(client.close)
        if http is not None:
            await _quietly(http.aclose)


async def _quietly(close: Callable[[], Awaitable[None]]) -> None:
    try:
        await close()
    except Exception:
        # Shutdown must release everything else even when one client is already broken.
        logger.warning("closing a pickup client failed", exc_info=True)
