"""Pickup while storage breaks: files wait in an upstream container while Rebound's main storage, or the
upstream's, refuses every connection (a fault-injecting proxy in front of Azurite; Azurite itself is never
killed). The reconciliation: nothing removed from the source before its enqueue succeeded, and after
recovery every file on `inbound` exactly once."""

from __future__ import annotations

import collections
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from devtools.azurite import AzuritePorts, AzuriteProcess, connection_string
from shared.config.models import IntegrationConfig
from shared.messages.models import Envelope
from shared.messages.ports import MessageQueue
from shared.pickup.items import NAME_HEADER
from shared.pickup.runner import LEASE_S, RunReport
from shared.services import Services
from shared.settings import Settings
from shared.values import utc_now
from tests.support.auth import TESTER
from tests.support.fault_proxy import StorageProxies
from tests.support.stores import azure_stores

pytestmark = [pytest.mark.chaos, pytest.mark.xdist_group("chaos"), pytest.mark.timeout(180)]

FILES = 20
INTEGRATION = "dropped"


@pytest.fixture(scope="module")
def main_azurite() -> Iterator[AzuriteProcess]:
    with AzuriteProcess(extent_memory_limit_mb=256) as azurite:
        yield azurite


@pytest.fixture
def main_proxies(main_azurite: AzuriteProcess) -> Iterator[StorageProxies]:
    ports = main_azurite.ports
    proxies = StorageProxies(ports.blob, ports.queue, ports.table).start()
    yield proxies
    proxies.stop()


@pytest.fixture
def upstream_proxies(main_azurite: AzuriteProcess) -> Iterator[StorageProxies]:
    """The upstream's container lives on the same Azurite, reached through a proxy of its own."""
    ports = main_azurite.ports
    proxies = StorageProxies(ports.blob, ports.queue, ports.table).start()
    yield proxies
    proxies.stop()


def through(proxies: StorageProxies) -> str:
    return connection_string(AzuritePorts(blob=proxies.blob.port, queue=proxies.queue.port, table=proxies.table.port))


@pytest.fixture
async def observer(main_azurite: AzuriteProcess, prefix: str) -> AsyncIterator[Services]:
    """The test's own view of storage, straight to Azurite."""
    env = {"AzureWebJobsStorage": main_azurite.connection_string, "REBOUND_PREFIX": prefix}
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


@pytest.fixture
async def container(main_azurite: AzuriteProcess) -> AsyncIterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(main_azurite.connection_string)
    container = service.get_container_client(f"drop{uuid.uuid4().hex[:10]}")
    await container.create_container()
    for n in range(FILES):
        await container.upload_blob(f"in/{n:03}.xml", f"<order n='{n}'/>".encode())
    yield container
    await service.close()


def app_services(main: StorageProxies, upstream: StorageProxies, prefix: str) -> Services:
    env = {
        "AzureWebJobsStorage": through(main),
        "RecoveryStorage": through(main),
        "Upstream": through(upstream),
        "REBOUND_PREFIX": prefix,
        "STORAGE_TIMEOUT_S": "2",
        "MIN_PICKUP_INTERVAL_S": "1",
        "ENDPOINT_RETRY_BASE_DELAY_S": "0.05",
        "ENDPOINT_RETRY_WINDOW_S": "1",
    }
    return Services(Settings.from_env(env))


class CutAfter:
    """`inbound`, which cuts the storage off right after its `after`-th send went through."""

    def __init__(self, queue: MessageQueue, after: int, cut: StorageProxies) -> None:
        self._queue = queue
        self.name = queue.name
        self._after = after
        self._cut = cut
        self.sent = 0

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        await self._queue.send(text, delay_s=delay_s)
        self.sent += 1
        if self.sent == self._after:
            self._cut.refuse()

    async def depth(self) -> int:
        return await self._queue.depth()


async def configure(services: Services, container: ContainerClient) -> IntegrationConfig:
    source = {"kind": "blob", "connection": "Upstream", "container": container.container_name, "prefix": "in/"}
    body = {"name": INTEGRATION, "endpoint": {"kind": "http", "url": "https://shop.example/in"}, "source": source}
    config, _ = await services.integrations.save(INTEGRATION, body, actor=TESTER)
    return config


async def waiting(container: ContainerClient) -> list[str]:
    return [blob.name async for blob in container.list_blobs()]


async def on_inbound(observer: Services) -> collections.Counter[str]:
    """File names of everything on `inbound`, counted (each message received once)."""
    azure = azure_stores(observer)
    names: collections.Counter[str] = collections.Counter()
    while batch := await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=120):
        names.update(Envelope.model_validate_json(m.body).headers[NAME_HEADER] for m in batch)
    return names


async def run(services: Services, config: IntegrationConfig) -> RunReport | None:
    return await services.pickup_runner.run_source(config, requested=True)


async def test_main_storage_cut_while_files_wait_removes_nothing_unsent_and_ingests_each_once_after(
    main_proxies, upstream_proxies, container, observer, prefix
):
    # Given 20 files waiting upstream, and main storage that goes away right after the 5th enqueue
    services = app_services(main_proxies, upstream_proxies, prefix)
    try:
        config = await configure(services, container)
        azure = azure_stores(services)
        azure.__dict__["inbound"] = CutAfter(azure.inbound, after=5, cut=main_proxies)

        # When the source runs into the outage, and is tried again while it lasts
        first = await run(services, config)
        during = [await run(services, config) for _ in range(3)]

        # Then only what reached inbound was removed from the source; the rest waits there
        assert first is not None and first.picked == 5
        assert "main storage unreachable" in (first.last_error or "") or "inbound" in (first.last_error or "")
        assert during == [None, None, None]  # no run without its state and lease
        assert len(await waiting(container)) == FILES - 5

        # When main storage is back (and the lease the cut run could not release has lapsed)
        main_proxies.heal()
        services.pickup_runner._clock = lambda: utc_now() + timedelta(seconds=LEASE_S + 1)
        after = await run(services, config)
    finally:
        await services.close()

    # Then the rest is picked, and every file is on inbound exactly once
    assert after is not None and after.picked == FILES - 5 and after.duplicates == 0
    assert await waiting(container) == []
    names = await on_inbound(observer)
    assert sorted(names) == [f"in/{n:03}.xml" for n in range(FILES)]
    assert set(names.values()) == {1}


async def test_the_upstream_cut_after_an_enqueue_leaves_the_file_which_is_then_removed_not_ingested_again(
    main_proxies, upstream_proxies, container, observer, prefix
):
    # Given the upstream's storage that goes away right after the 3rd file was enqueued (before its removal)
    services = app_services(main_proxies, upstream_proxies, prefix)
    try:
        config = await configure(services, container)
        azure = azure_stores(services)
        azure.__dict__["inbound"] = CutAfter(azure.inbound, after=3, cut=upstream_proxies)

        # When the source runs into it
        first = await run(services, config)
        assert first is not None and first.picked == 3
        assert len(await waiting(container)) == FILES - 2  # the third was sent but could not be removed

        # And runs again once the upstream is back
        upstream_proxies.heal()
        services.pickup_runner._clock = lambda: utc_now() + timedelta(seconds=LEASE_S + 1)
        second = await run(services, config)
    finally:
        await services.close()

    # Then the third is removed without a second enqueue, and every file is on inbound exactly once
    assert second is not None and second.duplicates == 1 and second.picked == FILES - 3
    assert await waiting(container) == []
    names = await on_inbound(observer)
    assert sorted(names) == [f"in/{n:03}.xml" for n in range(FILES)]
    assert set(names.values()) == {1}
