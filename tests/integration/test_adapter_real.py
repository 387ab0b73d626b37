"""Adapters against real receivers: an aiohttp server on 127.0.0.1, and Azurite for storage queues."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from devtools.azurite import AzuritePorts, AzuriteProcess, connection_string, free_port
from shared.config.models import HttpEndpoint, StorageQueueEndpoint
from shared.delivery.adapters.base import Delivery
from shared.delivery.adapters.registry import SenderRegistry
from shared.errors import PermanentDeliveryError, TransientDeliveryError
from shared.settings import Settings
from shared.storage.account import StorageAccount
from shared.storage.queues import MAX_QUEUE_MESSAGE_BYTES

ONE_MIB = 1024 * 1024


@dataclass
class Received:
    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server: `/ok` answers 200, `/busy` 503 with Retry-After, `/slow` only once released."""

    base_url: str = ""
    requests: list[Received] = field(default_factory=list)
    #: Set at teardown: until then `/slow` never answers, whatever timeout the sender uses.
    release_slow: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.method, request.path_qs, request.headers, await request.read()))
        if request.path == "/busy":
            return web.Response(status=503, text="Service Unavailable\nback soon", headers={"Retry-After": "7"})
        if request.path == "/slow":
            await self.release_slow.wait()
        return web.Response(status=200, text="accepted")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = web.Application(client_max_size=4 * ONE_MIB)
    app.router.add_route("*", "/{tail:.*}", state.record)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base_url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        state.release_slow.set()
        await runner.cleanup()


@pytest.fixture
async def registry() -> AsyncIterator[SenderRegistry]:
    registry = SenderRegistry(
        Settings.from_env(
            {
                "RECEIVER_TOKEN": "s3cret",
                "ENDPOINT_SECRET_SETTINGS": "RECEIVER_TOKEN",
                "ALLOW_PRIVATE_ENDPOINTS": "true",
            }
        )
    )
    try:
        yield registry
    finally:
        await registry.aclose()


def http_endpoint(url: str, **extra: object) -> HttpEndpoint:
    return HttpEndpoint.model_validate({"url": url, **extra})


async def test_a_real_receiver_gets_the_exact_bytes_and_headers(receiver: Receiver, registry: SenderRegistry):
    # Given a 1 MiB binary body and an endpoint with a secret header from app settings
    body = os.urandom(ONE_MIB)
    endpoint = http_endpoint(
        f"{receiver.base_url}/orders?tenant=acme", method="PUT", headers={"Authorization": "Bearer %RECEIVER_TOKEN%"}
    )
    delivery = Delivery(
        message_id="msg-1",
        integration="orders",
        body=body,
        content_type="application/x-order",
        correlation_id="corr-7",
        headers={"X-Trace": "t-1"},
    )

    # When it is delivered
    response = await registry.sender_for(endpoint).send(delivery)

    # Then the receiver got every byte and every header, and answered 200
    assert (response.status_code, response.detail) == (200, "")
    [got] = receiver.requests
    assert (got.method, got.path) == ("PUT", "/orders?tenant=acme")
    assert got.body == body
    assert got.headers["Idempotency-Key"] == "msg-1"
    assert got.headers["X-Correlation-Id"] == "corr-7"
    assert got.headers["Content-Type"] == "application/x-order"
    assert got.headers["Authorization"] == "Bearer s3cret"
    assert got.headers["X-Trace"] == "t-1"


async def test_a_503_with_retry_after_comes_back_as_a_response(receiver: Receiver, registry: SenderRegistry):
    # When a busy receiver answers
    sender = registry.sender_for(http_endpoint(f"{receiver.base_url}/busy"))
    response = await sender.send(Delivery(message_id="m", integration="orders", body=b"x"))

    # Then its status, requested wait and reason are reported, not raised
    assert response.status_code == 503
    assert response.retry_after_s == 7.0
    assert response.detail == "Service Unavailable back soon"


async def test_a_closed_port_is_transient(registry: SenderRegistry):
    # Given a port nothing listens on
    url = f"http://127.0.0.1:{free_port()}/orders"

    # When a delivery is sent there
    with pytest.raises(TransientDeliveryError) as raised:
        await registry.sender_for(http_endpoint(url)).send(Delivery(message_id="m", integration="orders", body=b"x"))

    # Then the failure names a connection error
    assert "ConnectError" in raised.value.message


async def test_a_receiver_slower_than_the_timeout_is_transient(receiver: Receiver, registry: SenderRegistry):
    # Given an endpoint with a short timeout and a receiver that does not answer while the test runs
    endpoint = http_endpoint(f"{receiver.base_url}/slow", timeout_s=0.3)

    # When a delivery is sent (a sender that waited for the answer would hang here until pytest-timeout)
    with pytest.raises(TransientDeliveryError) as raised:
        await registry.sender_for(endpoint).send(Delivery(message_id="m", integration="orders", body=b"x"))

    # Then the sender gave up on its own, and says it was the endpoint's timeout
    assert raised.value.message.endswith(("no answer within 0.3 s", "ReadTimeout after 0.3 s")), raised.value.message


@pytest.fixture
def storage_settings(azurite: AzuriteProcess) -> Settings:
    return Settings.from_env({"OutboundStorage": azurite.connection_string})


async def receive_bodies(azurite: AzuriteProcess, queue: str) -> list[bytes]:
    settings = Settings.from_env({"Reader": azurite.connection_string})
    account = StorageAccount(settings.connection("Reader"), timeout_s=10)
    try:
        return [message.body for message in await account.queues.receive(queue, visibility_timeout_s=30)]
    finally:
        await account.close()


async def test_a_body_arrives_on_the_target_queue(azurite: AzuriteProcess, storage_settings: Settings, prefix: str):
    # Given a queue endpoint on the Azurite account
    queue = f"{prefix}-out"
    registry = SenderRegistry(storage_settings)
    sender = registry.sender_for(StorageQueueEndpoint(connection="OutboundStorage", queue=queue))

    # When a text body and a binary body are delivered
    try:
        first = await sender.send(Delivery(message_id="m1", integration="orders", body='{"wörld": 1}'.encode()))
        await sender.send(Delivery(message_id="m2", integration="orders", body=b"\x00\xff\xfe"))
    finally:
        await registry.aclose()

    # Then both are on the queue: the text as itself, the binary body as base64 text
    assert first.status_code == 201
    assert await receive_bodies(azurite, queue) == ['{"wörld": 1}'.encode(), base64.b64encode(b"\x00\xff\xfe")]


async def test_the_largest_message_that_fits_is_accepted_by_storage(
    azurite: AzuriteProcess, storage_settings: Settings, prefix: str
):
    # Given a body whose base64 form is exactly the 64 KiB limit
    queue = f"{prefix}-big"
    body = b"a" * (MAX_QUEUE_MESSAGE_BYTES // 4 * 3)
    registry = SenderRegistry(storage_settings)
    sender = registry.sender_for(StorageQueueEndpoint(connection="OutboundStorage", queue=queue))

    # When it is delivered, and then one byte more
    try:
        await sender.send(Delivery(message_id="m1", integration="orders", body=body))
        with pytest.raises(PermanentDeliveryError):
            await sender.send(Delivery(message_id="m2", integration="orders", body=body + b"a"))
    finally:
        await registry.aclose()

    # Then the one that fits arrived whole
    assert await receive_bodies(azurite, queue) == [body]


async def test_unreachable_storage_is_transient(prefix: str):
    # Given a storage connection to ports nothing listens on
    unreachable = connection_string(AzuritePorts.free())
    registry = SenderRegistry(Settings.from_env({"OutboundStorage": unreachable, "STORAGE_TIMEOUT_S": "1"}))
    sender = registry.sender_for(StorageQueueEndpoint(connection="OutboundStorage", queue=f"{prefix}-out"))

    # When a delivery is sent
    try:
        with pytest.raises(TransientDeliveryError):
            await sender.send(Delivery(message_id="m1", integration="orders", body=b"x"))
    finally:
        await registry.aclose()
