"""The one place that builds Azure clients from a connection setting.

A connection string (Azurite, or an account key) builds key-authenticated clients; the
identity form (`<name>__queueServiceUri`, `__credential=managedidentity`, `__clientId`)
builds clients with an azure-identity credential, as the Functions host does.

`Settings.connection(name)` resolves the setting; the storage clients and the Service Bus client
(the recovery flow's, and the Service Bus adapter's) are built here, all taking their credential
from `build_credential` below.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from azure.communication.email.aio import EmailClient
from azure.core.credentials_async import AsyncTokenCredential
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
from azure.servicebus.aio import ServiceBusClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from shared.errors import ConfigError
from shared.settings import Connection

#: The variables that route a request through a proxy (aiohttp reads them, in either case).
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "WS_PROXY", "WSS_PROXY")


def proxy_configured(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(environ.get(name) or environ.get(name.lower()) for name in PROXY_VARIABLES)


def client_options(timeout_s: float, *, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Few, quick SDK retries: an outage must surface within our own time bound, not after minutes.

    The SDK's aiohttp session trusts the environment by default, which costs a thread-pool hop per
    storage call to look up proxies and read ~/.netrc (storage authenticates with its key or token,
    never netrc). Only a machine with a proxy configured keeps that on.
    """
    return {
        "retry_total": 2,
        "retry_backoff_factor": 0.2,
        "retry_backoff_max": 2,
        "connection_timeout": timeout_s,
        "read_timeout": timeout_s,
        "use_env_settings": proxy_configured(environ),
    }


def build_credential(connection: Connection) -> AsyncTokenCredential:
    """The credential of an identity-based connection, shared by the storage and Service Bus clients.

    `__credential=managedidentity` (any case, as the host reads it): that managed identity,
    user-assigned when `__clientId` is set. Otherwise the default chain (managed identity in
    Azure, developer sign-ins locally), as the host does for a connection without `__credential`.
    """
    if (connection.credential or "").lower() == "managedidentity":
        return (
            ManagedIdentityCredential(client_id=connection.client_id)
            if connection.client_id
            else ManagedIdentityCredential()
        )
    return DefaultAzureCredential(managed_identity_client_id=connection.client_id)


def _service_uri(connection: Connection, service: str) -> str:
    try:
        return connection.service_uris[service]
    except KeyError:
        raise ConfigError(
            f"connection {connection.name!r} has no {service} endpoint ({connection.name}__{service}ServiceUri)"
        ) from None


class AccountClients:
    """The queue, table and blob service clients of one storage account, built on first use.

    Lazy, so a connection that lacks one service's endpoint fails only when that service is used.
    The credential (identity form) is shared by the three and closed with them.
    """

    def __init__(self, connection: Connection, *, timeout_s: float) -> None:
        self.connection = connection
        self._options = client_options(timeout_s)
        self._credential: AsyncTokenCredential | None = None

    def _identity(self) -> AsyncTokenCredential:
        if self._credential is None:
            self._credential = build_credential(self.connection)
        return self._credential

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        if self.connection.connection_string is not None:
            return QueueServiceClient.from_connection_string(self.connection.connection_string, **self._options)
        return QueueServiceClient(_service_uri(self.connection, "queue"), credential=self._identity(), **self._options)

    @cached_property
    def table_service(self) -> TableServiceClient:
        if self.connection.connection_string is not None:
            return TableServiceClient.from_connection_string(self.connection.connection_string, **self._options)
        return TableServiceClient(_service_uri(self.connection, "table"), credential=self._identity(), **self._options)

    @cached_property
    def blob_service(self) -> BlobServiceClient:
        if self.connection.connection_string is not None:
            return BlobServiceClient.from_connection_string(self.connection.connection_string, **self._options)
        return BlobServiceClient(_service_uri(self.connection, "blob"), credential=self._identity(), **self._options)

    async def close(self) -> None:
        for name in ("queue_service", "table_service", "blob_service"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                await client.close()
        if self._credential is not None:
            await self._credential.close()
            self._credential = None


# Few, quick SDK retries (as for storage): an outage must surface within our own time bound.
_RETRY_TOTAL = 2
_RETRY_BACKOFF_FACTOR = 0.2
_RETRY_BACKOFF_MAX_S = 2.0


class _IdentityServiceBusClient(ServiceBusClient):
    """Closes the credential it was built with; the SDK client leaves that to the caller."""

    def __init__(self, fully_qualified_namespace: str, credential: AsyncTokenCredential) -> None:
        super().__init__(
            fully_qualified_namespace,
            credential,
            retry_total=_RETRY_TOTAL,
            retry_backoff_factor=_RETRY_BACKOFF_FACTOR,
            retry_backoff_max=_RETRY_BACKOFF_MAX_S,
        )
        self._owned_credential = credential

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self._owned_credential.close()


class _IdentityEmailClient(EmailClient):
    """Closes the credential it was built with, like the Service Bus client above."""

    def __init__(self, endpoint: str, credential: AsyncTokenCredential) -> None:
        super().__init__(endpoint, credential, retry_total=_RETRY_TOTAL, retry_backoff_factor=_RETRY_BACKOFF_FACTOR)
        self._owned_credential = credential

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self._owned_credential.close()


def build_email_client(endpoint: str, *, client_id: str | None) -> EmailClient:
    """An Azure Communication Services email client with the app's managed identity (no access key)."""
    if not endpoint.startswith("https://"):
        raise ConfigError("ALERT_ACS_ENDPOINT must be https://<resource>.communication.azure.com")
    return _IdentityEmailClient(endpoint, DefaultAzureCredential(managed_identity_client_id=client_id or None))


def build_service_bus_client(connection: Connection) -> ServiceBusClient:
    """A Service Bus client from a connection setting: a connection string, or identity with a namespace."""
    if connection.connection_string is not None:
        try:
            return ServiceBusClient.from_connection_string(
                connection.connection_string,
                retry_total=_RETRY_TOTAL,
                retry_backoff_factor=_RETRY_BACKOFF_FACTOR,
                retry_backoff_max=_RETRY_BACKOFF_MAX_S,
            )
        except ValueError:
            # Not chained: the SDK's message may quote the malformed string, key included.
            raise ConfigError(
                f"connection setting {connection.name!r} is not a Service Bus connection string "
                "(Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...)"
            ) from None
    if not connection.fully_qualified_namespace:
        raise ConfigError(
            f"connection setting {connection.name!r} has no Service Bus namespace "
            f"({connection.name}__fullyQualifiedNamespace)"
        )
    return _IdentityServiceBusClient(connection.fully_qualified_namespace, build_credential(connection))
