"""Identity-based connections build the right clients, and connection strings keep working.

Everything here constructs clients and closes them; nothing is awaited that talks to Azure, and
a fixture makes any attempt to open a socket fail the test.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential
from azure.servicebus.aio import ServiceBusClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueServiceClient

from shared.errors import ConfigError
from shared.settings import Connection, Settings
from shared.storage import clients
from shared.storage.account import StorageAccount
from shared.storage.clients import AccountClients, build_service_bus_client
from tests.unit.test_infra_settings import bicep_environment

CLIENT_ID = "00000000-0000-0000-0000-00000000c11d"
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
SERVICE_BUS_CONNECTION_STRING = (
    "Endpoint=sb://rebound.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0"
)


def identity_environ(name: str, account: str, **extra: str) -> dict[str, str]:
    """The identity form of a storage connection, as infra/main.bicep deploys it."""
    return {
        f"{name}__credential": "managedidentity",
        f"{name}__clientId": CLIENT_ID,
        f"{name}__queueServiceUri": f"https://{account}.queue.core.windows.net",
        f"{name}__tableServiceUri": f"https://{account}.table.core.windows.net",
        f"{name}__blobServiceUri": f"https://{account}.blob.core.windows.net",
        **extra,
    }


class RecordingManagedIdentityCredential(ManagedIdentityCredential):
    """The real credential, remembering what it was built with."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        super().__init__(**kwargs)


class RecordingDefaultAzureCredential(DefaultAzureCredential):
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        super().__init__(**kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Building and closing clients must not reach out: any connection attempt fails the test.

    Recorded as well as raised: the SDKs turn a failed connection into their own errors (and retry).
    """
    attempts: list[object] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[1:] or kwargs)
        raise OSError("network disabled in unit tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", refuse)
    yield
    assert not attempts, f"network connections were attempted: {attempts}"


@pytest.fixture(autouse=True)
def recording_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clients, "ManagedIdentityCredential", RecordingManagedIdentityCredential)
    monkeypatch.setattr(clients, "DefaultAzureCredential", RecordingDefaultAzureCredential)


async def test_managed_identity_settings_build_clients_for_each_service_endpoint():
    # Given the identity form of AzureWebJobsStorage
    settings = Settings.from_env(identity_environ("AzureWebJobsStorage", "streboundmain"))

    # When the account's clients are built
    account = AccountClients(settings.storage, timeout_s=5)
    queues, tables, blobs = account.queue_service, account.table_service, account.blob_service

    # Then each talks to its own endpoint of that account
    assert isinstance(queues, QueueServiceClient)
    assert queues.url == "https://streboundmain.queue.core.windows.net/"
    assert isinstance(tables, TableServiceClient)
    assert tables.url == "https://streboundmain.table.core.windows.net"
    assert isinstance(blobs, BlobServiceClient)
    assert blobs.url == "https://streboundmain.blob.core.windows.net/"
    assert {queues.account_name, tables.account_name, blobs.account_name} == {"streboundmain"}
    # And all three authenticate with one managed identity credential for the configured client id
    credential = queues.credential
    assert isinstance(credential, RecordingManagedIdentityCredential)
    assert credential.kwargs == {"client_id": CLIENT_ID}
    assert tables.credential is credential
    assert blobs.credential is credential
    await account.close()


async def test_without_a_credential_setting_the_default_chain_is_used_with_the_client_id():
    # Given endpoints and a client id, but no __credential (the host's "default" behaviour)
    environ = identity_environ("AzureWebJobsStorage", "acct")
    del environ["AzureWebJobsStorage__credential"]

    # When a client is built
    account = AccountClients(Settings.from_env(environ).storage, timeout_s=5)
    credential = account.queue_service.credential

    # Then it uses DefaultAzureCredential, whose managed identity leg uses that client id
    assert isinstance(credential, RecordingDefaultAzureCredential)
    assert credential.kwargs == {"managed_identity_client_id": CLIENT_ID}
    await account.close()


async def test_the_credential_name_is_matched_case_insensitively_like_the_host():
    environ = identity_environ("AzureWebJobsStorage", "acct", AzureWebJobsStorage__credential="ManagedIdentity")

    account = AccountClients(Settings.from_env(environ).storage, timeout_s=5)

    assert isinstance(account.queue_service.credential, RecordingManagedIdentityCredential)
    await account.close()


async def test_a_system_assigned_identity_needs_no_client_id():
    environ = identity_environ("AzureWebJobsStorage", "acct")
    del environ["AzureWebJobsStorage__clientId"]

    account = AccountClients(Settings.from_env(environ).storage, timeout_s=5)
    credential = account.queue_service.credential

    assert isinstance(credential, RecordingManagedIdentityCredential)
    assert credential.kwargs == {}
    await account.close()


async def test_the_recovery_account_is_its_own_identity_connection():
    # Given both accounts in identity form (the recovery one without tables, as deployed)
    recovery = identity_environ("RecoveryStorage", "strecovery")
    del recovery["RecoveryStorage__tableServiceUri"]
    settings = Settings.from_env({**identity_environ("AzureWebJobsStorage", "stmain"), **recovery})

    # When the recovery account's gateways are built
    account = StorageAccount(settings.recovery_storage, timeout_s=5)
    queues = account._clients.queue_service

    # Then they point at the recovery account, not the primary one
    assert settings.recovery_storage.name == "RecoveryStorage"
    assert queues.account_name == "strecovery"
    assert account._clients.blob_service.url == "https://strecovery.blob.core.windows.net/"
    # And a service the connection does not name fails by name, only when used
    with pytest.raises(ConfigError, match=r"RecoveryStorage__tableServiceUri"):
        _ = account._clients.table_service
    await account.close()


async def test_account_name_alone_builds_public_cloud_endpoints():
    settings = Settings.from_env(
        {"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__credential": "managedidentity"}
    )

    account = AccountClients(settings.storage, timeout_s=5)

    assert account.queue_service.url == "https://acct.queue.core.windows.net/"
    assert account.table_service.url == "https://acct.table.core.windows.net"
    assert account.blob_service.url == "https://acct.blob.core.windows.net/"
    await account.close()


async def test_closing_the_account_closes_the_shared_credential_once(monkeypatch: pytest.MonkeyPatch):
    # Given an account whose three clients were built with one credential
    closed: list[object] = []
    account = AccountClients(Settings.from_env(identity_environ("AzureWebJobsStorage", "acct")).storage, timeout_s=5)
    _ = account.queue_service, account.table_service, account.blob_service
    credential = account.queue_service.credential
    original_close = credential.close

    async def close() -> None:
        closed.append(credential)
        await original_close()

    monkeypatch.setattr(credential, "close", close)

    # When the account is closed
    await account.close()

    # Then the credential is closed once, after its clients
    assert closed == [credential]


async def test_service_bus_identity_settings_build_a_client_for_the_namespace():
    # Given the identity form of the Service Bus connection
    settings = Settings.from_env(
        {
            "RECOVERY_BACKEND": "servicebus",
            "ServiceBusConnection__fullyQualifiedNamespace": "sb-rebound.servicebus.windows.net",
            "ServiceBusConnection__credential": "managedidentity",
            "ServiceBusConnection__clientId": CLIENT_ID,
        }
    )

    # When the client is built from the setting RECOVERY_SERVICE_BUS_CONNECTION names
    client = build_service_bus_client(settings.connection(settings.recovery_service_bus_connection))

    # Then it talks to that namespace with the managed identity
    assert isinstance(client, ServiceBusClient)
    assert client.fully_qualified_namespace == "sb-rebound.servicebus.windows.net"
    credential = client._credential
    assert isinstance(credential, RecordingManagedIdentityCredential)
    assert credential.kwargs == {"client_id": CLIENT_ID}
    await client.close()


async def test_azurite_connection_strings_keep_working():
    # Given the local settings' connection string
    settings = Settings.from_env({"AzureWebJobsStorage": AZURITE})

    # When the clients are built
    account = AccountClients(settings.storage, timeout_s=5)

    # Then they use Azurite's endpoints and the account key, no identity
    assert not settings.storage.uses_identity
    assert account.queue_service.url == "http://127.0.0.1:10001/devstoreaccount1/"
    assert account.table_service.url == "http://127.0.0.1:10002/devstoreaccount1"
    assert account.blob_service.url == "http://127.0.0.1:10000/devstoreaccount1/"
    assert account.queue_service.account_name == "devstoreaccount1"
    assert not isinstance(account.queue_service.credential, ManagedIdentityCredential | DefaultAzureCredential)
    assert account._credential is None
    await account.close()


async def test_a_service_bus_connection_string_keeps_working():
    connection = Settings.from_env({"ServiceBusConnection": SERVICE_BUS_CONNECTION_STRING}).connection(
        "ServiceBusConnection"
    )

    client = build_service_bus_client(connection)

    assert client.fully_qualified_namespace == "rebound.servicebus.windows.net"
    await client.close()


def test_a_connection_string_wins_over_identity_parts_like_in_the_host():
    environ = {**identity_environ("AzureWebJobsStorage", "acct"), "AzureWebJobsStorage": AZURITE}

    connection = Connection.from_environ("AzureWebJobsStorage", environ)

    assert connection.connection_string == AZURITE
    assert not connection.uses_identity


@pytest.mark.parametrize("deploy_service_bus", [False, True], ids=["storage-recovery", "service-bus-recovery"])
async def test_the_settings_infra_deploys_build_identity_clients(deploy_service_bus: bool):
    # Given the app settings infra/main.bicep deploys (values Azure fills in are placeholders)
    settings = Settings.from_env(bicep_environment(deployServiceBus=deploy_service_bus))

    # When the storage accounts (and Service Bus client) are built from them
    main = AccountClients(settings.storage, timeout_s=5)
    recovery = AccountClients(settings.recovery_storage, timeout_s=5)
    built: list[Any] = [main.queue_service, main.table_service, main.blob_service]
    built += [recovery.queue_service, recovery.blob_service]

    # Then every client is HTTPS to its service with the user-assigned identity
    for client in built:
        assert client.url.startswith("https://")
        assert isinstance(client.credential, RecordingManagedIdentityCredential)
        assert client.credential.kwargs["client_id"]
    assert settings.recovery_storage.name == "RecoveryStorage"
    if deploy_service_bus:
        bus = build_service_bus_client(settings.connection(settings.recovery_service_bus_connection))
        assert bus.fully_qualified_namespace.endswith(".servicebus.windows.net")
        await bus.close()
    await main.close()
    await recovery.close()
