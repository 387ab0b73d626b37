"""Pickup against real things: blobs and an upstream Storage queue on Azurite, an SFTP server (asyncssh's),
Service Bus at the SDK boundary (the fake client), and HTTP poll against a local aiohttp server."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from azure.servicebus import ServiceBusMessage
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

from devtools.azurite import AzuriteProcess
from shared.errors import StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.messages.models import Envelope
from shared.messages.shards import InboundShards
from shared.pickup.items import NAME_HEADER, SOURCE_HEADER
from shared.pickup.models import PickupOutcome
from shared.pickup.readers.registry import PickupReaders
from shared.pickup.runner import LEASE_S, RunReport
from shared.recovery.models import ParkedMessage
from shared.services import Services
from shared.settings import Settings
from tests.support.auth import TESTER
from tests.support.receiver import Answer, Receiver
from tests.support.sftp_server import PASSWORD, USERNAME, SftpServer
from tests.support.stores import azure_stores, stored_failures
from tests.twins.service_bus import FakeServiceBusClient

INTEGRATION = "orders"
ENDPOINT = {"kind": "http", "url": "https://shop.example/in"}


@pytest.fixture
def pickup_env(storage_env: dict[str, str], azurite: AzuriteProcess) -> dict[str, str]:
    return {
        **storage_env,
        "Upstream": azurite.connection_string,
        "MIN_PICKUP_INTERVAL_S": "1",
        "PICKUP_MAX_CONSECUTIVE_FAILURES": "2",
        # Endpoint retry on pickup in a fraction of a second.
        "ENDPOINT_RETRY_BASE_DELAY_S": "0.05",
        "ENDPOINT_RETRY_WINDOW_S": "2",
        "ENDPOINT_SECRET_SETTINGS": "SFTP_PASSWORD,SFTP_KEY,POLL_TOKEN",
        "SFTP_PASSWORD": PASSWORD,
        "POLL_TOKEN": "Bearer poll-secret",
        "STORAGE_TIMEOUT_S": "5",
        "RECOVERY_PARK_DELAY_S": "0",
        # Read by the fake Service Bus client's factory, which ignores it.
        "Bus": "Endpoint=sb://fake.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=x",
    }


@pytest.fixture
async def services(pickup_env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(pickup_env))
    yield services
    await services.close()


@pytest.fixture
async def blobs(azurite: AzuriteProcess) -> AsyncIterator[BlobServiceClient]:
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    yield client
    await client.close()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def configure(services: Services, source: dict[str, Any]) -> None:
    body = {"name": "Orders", "sender": "erp", "receiver": "shop", "endpoint": ENDPOINT, "source": source}
    await services.integrations.save(INTEGRATION, body, actor=TESTER)


async def run(services: Services) -> RunReport:
    config = await services.integrations.get(INTEGRATION)
    report = await services.pickup_runner.run_source(config, requested=True)
    assert report is not None, "the source did not run"
    return report


async def inbound(services: Services) -> list[Envelope]:
    """Everything on `inbound` now (each received once: it stays invisible for a minute)."""
    found: list[Envelope] = []
    azure = azure_stores(services)
    while batch := await azure.account.queues.receive(azure.names.inbound, visibility_timeout_s=60):
        found += [Envelope.model_validate_json(m.body) for m in batch]
    return found


# --- blob -----------------------------------------------------------------------------------------


async def test_blobs_under_the_prefix_are_enqueued_once_and_removed_the_rest_untouched(services, blobs):
    # Given an upstream container with two files under in/ and one elsewhere
    container = unique("drop")
    client = blobs.get_container_client(container)
    await client.create_container()
    for name, data in [("in/a.xml", b"<a/>"), ("in/b.json", b'{"b": 1}'), ("other/c.xml", b"<c/>")]:
        await client.upload_blob(name, data)
    await configure(services, {"kind": "blob", "connection": "Upstream", "container": container, "prefix": "in/"})

    # When the source runs twice
    first = await run(services)
    second = await run(services)

    # Then each file under the prefix is on inbound once, with its name and a type from its name
    envelopes = {e.headers[NAME_HEADER]: e for e in await inbound(services)}
    assert set(envelopes) == {"in/a.xml", "in/b.json"}
    assert envelopes["in/a.xml"].content_type == "text/xml" and envelopes["in/a.xml"].body_text == "<a/>"
    assert envelopes["in/b.json"].content_type == "application/json"
    assert {e.headers[SOURCE_HEADER] for e in envelopes.values()} == {"blob"}
    assert (first.picked, second.picked) == (2, 0)
    # And only what was picked is gone from the container
    assert [b.name async for b in client.list_blobs()] == ["other/c.xml"]
    # And the status says so
    status = await services.pickup.status(INTEGRATION)
    assert status.picked_total == 2 and status.last_outcome is PickupOutcome.OK and status.consecutive_failures == 0


async def test_blobs_picked_with_after_move_land_under_move_to_and_are_not_picked_again(services, blobs):
    container = unique("drop")
    client = blobs.get_container_client(container)
    await client.create_container()
    await client.upload_blob("order.xml", b"<o/>")
    source = {"kind": "blob", "connection": "Upstream", "container": container, "after": "move", "move_to": "done/"}
    await configure(services, source)

    await run(services)
    again = await run(services)

    assert [b.name async for b in client.list_blobs()] == ["done/order.xml"]
    assert again.picked == 0 and len(await inbound(services)) == 1


async def test_a_missing_container_fails_the_run_and_after_the_limit_is_a_pickup_failure(services):
    await configure(services, {"kind": "blob", "connection": "Upstream", "container": unique("missing")})

    first = await run(services)
    second = await run(services)

    assert first.outcome is PickupOutcome.FAILED and "does not exist" in (first.last_error or "")
    assert second.failure_recorded
    [failure] = await stored_failures(services.stores.failures, INTEGRATION)
    assert failure.origin is FailureOrigin.PICKUP and failure.body_ref is None
    detail = await services.failures.detail(INTEGRATION, failure.id)
    assert detail.content is None


async def test_a_connection_setting_that_is_not_set_is_reported_by_the_run(services):
    await configure(services, {"kind": "blob", "connection": "NotThere", "container": "drop"})

    report = await run(services)

    assert report.outcome is PickupOutcome.FAILED and "NotThere" in (report.last_error or "")


# --- storage queue --------------------------------------------------------------------------------


async def test_messages_on_an_upstream_queue_are_enqueued_then_deleted(services, azurite):
    # Given the upstream's own queue, one message base64-encoded (as the host writes) and one raw
    name = unique("upstream")
    queue = QueueClient.from_connection_string(azurite.connection_string, name)
    await queue.create_queue()
    await queue.send_message(base64.b64encode(b'{"order": 1}').decode())
    await queue.send_message("<order n='2'/>")
    await configure(services, {"kind": "storage_queue", "connection": "Upstream", "queue": name})

    # When the source runs
    report = await run(services)

    # Then both are on inbound, typed from how their text starts, and gone from the upstream queue
    envelopes = sorted(await inbound(services), key=lambda e: e.content_type or "")
    assert [(e.content_type, e.inline_body()) for e in envelopes] == [
        ("application/json", b'{"order": 1}'),
        ("application/xml", b"<order n='2'/>"),
    ]
    assert report.picked == 2
    assert (await queue.get_queue_properties()).approximate_message_count == 0
    await queue.delete_queue()
    await queue.close()


async def test_a_queue_message_picked_before_is_deleted_without_being_enqueued_again(services, azurite):
    # Given a message that was picked in an earlier run whose delete was lost
    name = unique("upstream")
    queue = QueueClient.from_connection_string(azurite.connection_string, name)
    await queue.create_queue()
    sent = await queue.send_message("again")
    await services.stores.pickup_seen.remember(
        INTEGRATION, f"message {sent.id}", message_id="pickup-earlier", at=services.pickup_runner._clock()
    )
    await configure(services, {"kind": "storage_queue", "connection": "Upstream", "queue": name})

    report = await run(services)

    assert report.duplicates == 1 and report.picked == 0
    assert await inbound(services) == []
    assert (await queue.get_queue_properties()).approximate_message_count == 0
    await queue.delete_queue()
    await queue.close()


async def test_a_missing_upstream_queue_is_reported_not_created(services, azurite):
    name = unique("absent")
    await configure(services, {"kind": "storage_queue", "connection": "Upstream", "queue": name})

    report = await run(services)

    assert "does not exist" in (report.last_error or "")
    queues = azure_stores(services).account.queues
    assert name not in await queues.list_queues(name)


# --- Service Bus (the fake at the SDK client boundary) -------------------------------------------


def with_fake_bus(services: Services, bus: FakeServiceBusClient) -> None:
    services.__dict__["pickup_readers"] = PickupReaders(
        services.settings, egress=services.egress, lease_s=LEASE_S, service_bus_client_factory=lambda _: bus
    )


async def test_service_bus_messages_are_completed_only_after_they_are_on_inbound(services):
    # Given two messages on a subscription, with a content type and application properties
    bus = FakeServiceBusClient()
    with_fake_bus(services, bus)
    sender = bus.get_queue_sender("orders/subscriptions/rebound")
    for n in (1, 2):
        message = ServiceBusMessage(
            f'{{"n": {n}}}', content_type="application/json", message_id=f"m{n}",
            application_properties={"Region": "eu"},
        )  # fmt: skip
        await sender.send_messages(message)
    await configure(services, {"kind": "service_bus", "connection": "Bus", "entity": "orders/subscriptions/rebound"})

    # When the source runs
    report = await run(services)

    # Then both are on inbound with their type and properties, and completed at the broker
    envelopes = sorted(await inbound(services), key=lambda e: e.body_text or "")
    assert [e.body_text for e in envelopes] == ['{"n": 1}', '{"n": 2}']
    assert envelopes[0].content_type == "application/json" and envelopes[0].headers["x-region"] == "eu"
    assert report.picked == 2
    assert [m.message_id for m in bus.completed["orders/subscriptions/rebound"]] == ["m1", "m2"]
    assert bus.queue("orders/subscriptions/rebound") == []


async def test_a_service_bus_message_whose_complete_failed_comes_back_and_is_not_enqueued_twice(services):
    from azure.servicebus.exceptions import MessageLockLostError

    bus = FakeServiceBusClient()
    with_fake_bus(services, bus)
    await bus.get_queue_sender("orders").send_messages(ServiceBusMessage("once", message_id="only"))
    bus.fail_next_settles("orders", *[MessageLockLostError(message="lock lost")] * 5)
    await configure(services, {"kind": "service_bus", "connection": "Bus", "entity": "orders"})

    first = await run(services)
    for stored in bus.queue("orders"):
        stored.locked_until = None  # the lock lapsed: the broker delivers it again
    second = await run(services)

    assert first.picked == 1 and "not removed" in (first.last_error or "")
    assert second.duplicates == 1 and second.picked == 0
    assert len(await inbound(services)) == 1
    assert bus.queue("orders") == []


async def test_a_service_bus_message_that_inbound_cannot_take_is_parked_then_completed(services):
    bus = FakeServiceBusClient()
    with_fake_bus(services, bus)
    await bus.get_queue_sender("orders").send_messages(ServiceBusMessage("<o/>", message_id="p1"))
    await configure(services, {"kind": "service_bus", "connection": "Bus", "entity": "orders"})
    azure = azure_stores(services)

    class Refusing:
        name = azure.inbound.name

        async def send(self, text: str, *, delay_s: int | None = None) -> None:
            raise StorageUnavailable("inbound: refused")

        async def depth(self) -> int:
            return 0

    services.pickup_runner._inbound = InboundShards([Refusing()])

    report = await run(services)

    assert report.parked == 1 and bus.queue("orders") == []
    [parked] = await azure.recovery_account.queues.receive(azure.names.recovery)
    envelope = Envelope.model_validate_json(ParkedMessage.model_validate_json(parked.body).text)
    assert envelope.inline_body() == b"<o/>" and envelope.integration == INTEGRATION


# --- HTTP poll ------------------------------------------------------------------------------------


@pytest.fixture
async def upstream_http() -> AsyncIterator[Receiver]:
    receiver = Receiver(
        [
            Answer(200, {"Content-Type": "application/xml", "X-Message-Id": "a1"}, text="<a/>"),
            Answer(200, {"Content-Type": "application/json"}, text='{"b": 2}'),
            Answer(204),
        ]
    )
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_http_poll_takes_a_message_per_200_answer_until_a_204(services, upstream_http):
    source = {"kind": "http_poll", "url": upstream_http.url, "headers": {"Authorization": "%POLL_TOKEN%"}}
    await configure(services, source)

    report = await run(services)

    envelopes = await inbound(services)
    assert [(e.content_type, e.inline_body()) for e in envelopes] == [
        ("application/xml; charset=utf-8", b"<a/>"),
        ("application/json; charset=utf-8", b'{"b": 2}'),
    ]
    assert report.picked == 2 and len(upstream_http.requests) == 3
    assert upstream_http.requests[0].headers["authorization"] == "Bearer poll-secret"


async def test_http_poll_to_a_private_address_is_refused_when_private_endpoints_are_not_allowed(
    pickup_env, upstream_http
):
    services = Services(Settings.from_env({**pickup_env, "ALLOW_PRIVATE_ENDPOINTS": "false"}))
    try:
        # Saved while allowed (e.g. before the setting changed): the connection itself is refused
        await services.stores.integrations.put(await _config_with({"kind": "http_poll", "url": upstream_http.url}))
        report = await run(services)
    finally:
        await services.close()

    assert report.outcome is PickupOutcome.FAILED and "loopback" in (report.last_error or "")
    assert upstream_http.requests == []


async def _config_with(source: dict[str, Any]) -> Any:
    from shared.config.models import IntegrationConfig

    return IntegrationConfig.model_validate(
        {"id": INTEGRATION, "name": "Orders", "endpoint": ENDPOINT, "source": source}
    )


async def test_http_poll_server_errors_are_retried_inside_the_window(services):
    receiver = Receiver([Answer(503), Answer(200, text="late"), Answer(204)])
    await receiver.start()
    try:
        await configure(services, {"kind": "http_poll", "url": receiver.url})
        report = await run(services)
    finally:
        await receiver.stop()

    assert report.picked == 1 and [e.inline_body() for e in await inbound(services)] == [b"late"]


# --- SFTP (a real server: asyncssh's) -------------------------------------------------------------


@pytest.fixture
async def sftp(tmp_path: Path) -> AsyncIterator[SftpServer]:
    server = await SftpServer(tmp_path).start()
    yield server
    await server.stop()


def sftp_source(server: SftpServer, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "sftp", "host": "127.0.0.1", "port": server.port, "username": USERNAME,
        "password_setting": "SFTP_PASSWORD", "host_key": server.host_key, "path": "/out", "pattern": "*.xml",
        **fields,
    }  # fmt: skip


async def test_sftp_files_matching_the_pattern_are_enqueued_and_removed(services, sftp):
    sftp.put("out/a.xml", b"<a/>")
    sftp.put("out/b.xml", b"<b/>")
    sftp.put("out/skip.tmp", b"partial")
    await configure(services, sftp_source(sftp))

    report = await run(services)

    assert report.outcome is PickupOutcome.OK and report.picked == 2
    names = sorted(e.headers[NAME_HEADER] for e in await inbound(services))
    assert names == ["a.xml", "b.xml"]
    assert sftp.files("out") == ["skip.tmp"]


async def test_sftp_with_a_fingerprint_and_a_private_key_moves_files_to_the_archive(services, sftp, pickup_env):
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    sftp.authorise(client_key)
    services.pickup_readers._resolve_setting = {  # the key lives in an app setting
        **pickup_env,
        "SFTP_KEY": client_key.export_private_key("openssh").decode(),
    }.get
    sftp.put("out/a.xml", b"<a/>")
    (sftp.root / "archive").mkdir()
    source = sftp_source(
        sftp, password_setting=None, private_key_setting="SFTP_KEY", host_key=sftp.fingerprint, after="move"
    )
    await configure(services, source)

    report = await run(services)

    assert report.picked == 1
    assert sftp.files("out") == [] and sftp.files("archive") == ["a.xml"]


async def test_sftp_with_a_wrong_host_key_is_refused_and_recorded_and_nothing_is_read(services, sftp):
    # Given a config that pins another key than the server's (a server swapped, or a man in the middle)
    sftp.put("out/a.xml", b"<a/>")
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    await configure(services, sftp_source(sftp, host_key=impostor))

    # When it runs as often as PICKUP_MAX_CONSECUTIVE_FAILURES (2) allows
    first = await run(services)
    second = await run(services)

    # Then the connection is refused, nothing is read or removed, and the refusal is recorded
    assert first.outcome is PickupOutcome.FAILED
    assert "host key refused" in (first.last_error or "") and sftp.fingerprint in (first.last_error or "")
    assert sftp.files("out") == ["a.xml"] and await inbound(services) == []
    status = await services.pickup.status(INTEGRATION)
    assert status.last_outcome is PickupOutcome.FAILED and "host key refused" in (status.last_error or "")
    assert second.failure_recorded
    [failure] = await stored_failures(services.stores.failures, INTEGRATION)
    assert failure.origin is FailureOrigin.PICKUP and "host key refused" in failure.reason


async def test_an_sftp_server_dropping_the_connection_mid_read_is_retried_and_nothing_is_lost(services, sftp):
    # Given a file larger than one read block, and a server that breaks off its first read of it
    data = bytes(range(256)) * 400  # 100 KiB
    sftp.put("out/big.xml", data)
    sftp.drop_reading("big.xml", times=1)
    await configure(services, sftp_source(sftp))

    # When the source runs
    report = await run(services)

    # Then endpoint retry reconnected and took the whole file, once
    assert sftp.dropped == 1
    assert report.picked == 1
    [envelope] = await inbound(services)
    body = envelope.inline_body()
    if body is None:
        payload = await services.stores.payloads.get(envelope.body_ref or "")
        body = payload.data if payload else None
    assert body == data
    assert sftp.files("out") == []


async def test_an_sftp_server_that_keeps_dropping_mid_read_leaves_the_file_where_it_is(services, sftp):
    sftp.put("out/big.xml", b"x" * 100_000)
    sftp.drop_reading("big.xml", times=100)
    await configure(services, sftp_source(sftp))

    report = await run(services)

    assert report.outcome is PickupOutcome.FAILED and sftp.dropped >= 2
    assert sftp.files("out") == ["big.xml"] and await inbound(services) == []


async def test_an_sftp_login_with_a_wrong_password_is_refused(services, sftp, pickup_env):
    services.pickup_readers._resolve_setting = {**pickup_env, "SFTP_PASSWORD": "wrong"}.get
    sftp.put("out/a.xml", b"<a/>")
    await configure(services, sftp_source(sftp))

    report = await run(services)

    assert "login refused" in (report.last_error or "") and sftp.files("out") == ["a.xml"]


def test_json_of_the_source_round_trips():
    # Guards the envelope ids: the description a source hashes into them is stable across a save
    from shared.config.models import IntegrationConfig

    config = IntegrationConfig.model_validate(
        {
            "id": "o",
            "name": "o",
            "endpoint": ENDPOINT,
            "source": {"kind": "blob", "connection": "U", "container": "abc"},
        }
    )
    assert IntegrationConfig.model_validate(json.loads(config.model_dump_json())) == config
