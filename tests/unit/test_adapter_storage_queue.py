"""StorageQueueSender without storage: the text rule, the size limit and the error mapping."""

from __future__ import annotations

import base64

import pytest
from azure.core.exceptions import HttpResponseError

from shared.config.models import StorageQueueEndpoint
from shared.delivery.adapters.base import Delivery
from shared.delivery.adapters.storage_queue import StorageQueueSender, encoded_size, message_text
from shared.errors import ConfigError, PermanentDeliveryError, StorageUnavailable, TransientDeliveryError
from shared.storage.queues import MAX_QUEUE_MESSAGE_BYTES, QueueGateway

ENDPOINT = StorageQueueEndpoint(connection="OutboundStorage", queue="orders-out")


class ScriptedQueues(QueueGateway):
    """A gateway that records sends, or raises a given error, without any storage behind it."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[str, str]] = []

    async def send(self, queue: str, text: str, *, visibility_timeout_s: int | None = None) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append((queue, text))
        return "id"


def make_delivery(body: bytes) -> Delivery:
    return Delivery(message_id="msg-1", integration="orders", body=body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"order": 42}', '{"order": 42}'),
        ("wörld €".encode(), "wörld €"),
        (b"", ""),
        (b"\x00\xff\xfe", base64.b64encode(b"\x00\xff\xfe").decode()),
    ],
)
def test_utf8_bodies_travel_as_text_and_other_bodies_as_base64(body: bytes, expected: str):
    assert message_text(body) == expected


@pytest.mark.parametrize(("text", "size"), [("", 0), ("a", 4), ("abc", 4), ("abcd", 8), ("€", 4)])
def test_encoded_size_is_the_base64_length_of_the_utf8_text(text: str, size: int):
    assert encoded_size(text) == size


async def test_a_body_is_sent_to_the_endpoint_queue_and_reported_as_queued():
    # Given a working gateway
    queues = ScriptedQueues()
    sender = StorageQueueSender(ENDPOINT, queues)

    # When a delivery is sent
    response = await sender.send(make_delivery(b"hello"))

    # Then the text went to the configured queue and the answer is 201
    assert queues.sent == [("orders-out", "hello")]
    assert response.status_code == 201


async def test_the_largest_message_that_fits_is_sent_and_one_byte_more_is_permanent():
    # Given bodies right at and just over the 64 KiB base64 limit
    queues = ScriptedQueues()
    sender = StorageQueueSender(ENDPOINT, queues)
    fits = b"a" * (MAX_QUEUE_MESSAGE_BYTES // 4 * 3)

    # When both are sent
    await sender.send(make_delivery(fits))
    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(make_delivery(fits + b"a"))

    # Then only the one that fits reached the queue
    assert len(queues.sent) == 1
    assert "exceeds the queue limit" in raised.value.message


async def test_unreachable_storage_is_transient():
    sender = StorageQueueSender(ENDPOINT, ScriptedQueues(StorageUnavailable("send to orders-out: ConnectionError")))

    with pytest.raises(TransientDeliveryError) as raised:
        await sender.send(make_delivery(b"x"))

    assert raised.value.message.startswith("storage_queue OutboundStorage/orders-out")


async def test_a_refusal_by_the_service_is_permanent_with_its_status():
    error = HttpResponseError(message="This request is not authorized to perform this operation.")
    error.status_code = 403
    sender = StorageQueueSender(ENDPOINT, ScriptedQueues(error))

    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(make_delivery(b"x"))

    assert raised.value.status_code == 403


async def test_a_connection_without_a_queue_endpoint_is_permanent():
    sender = StorageQueueSender(ENDPOINT, ScriptedQueues(ConfigError("connection 'OutboundStorage' has no queue")))

    with pytest.raises(PermanentDeliveryError):
        await sender.send(make_delivery(b"x"))


def test_target_names_connection_and_queue():
    assert StorageQueueSender(ENDPOINT, ScriptedQueues()).target == "storage_queue OutboundStorage/orders-out"
