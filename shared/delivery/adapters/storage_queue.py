"""Storage-queue delivery: the body becomes one message on the receiver's queue.

What the receiver reads, after the queue's own base64 layer (the Functions host's default
`messageEncoding`, and how `QueueGateway` writes):
- a body that is valid UTF-8 arrives as that text, byte for byte;
- any other body arrives as the standard base64 of its bytes, because a queue message is
  text and there is nowhere to put a flag saying "decode me once more".
Queue messages carry no properties, so the content type, correlation id and headers of a
delivery do not travel; a receiver that needs them should be an HTTP or Service Bus endpoint.
"""

from __future__ import annotations

import base64

from azure.core.exceptions import HttpResponseError

from shared.config.models import StorageQueueEndpoint
from shared.delivery.adapters.base import Delivery, Response
from shared.errors import ConfigError, PermanentDeliveryError, StorageUnavailable, TransientDeliveryError
from shared.storage.queues import MAX_QUEUE_MESSAGE_BYTES, QueueGateway

#: What a queue answers to a successful put; reported so every adapter's success looks alike.
QUEUED_STATUS = 201


def message_text(body: bytes) -> str:
    """The queue message text for a body (see the module docstring for the rule)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii")


def encoded_size(text: str) -> int:
    """Bytes on the wire: the gateway base64-encodes the UTF-8 text, and the limit applies to that."""
    return 4 * -(-len(text.encode("utf-8")) // 3)


class StorageQueueSender:
    """Sends to one queue through the gateway of the endpoint's storage account (not owned here)."""

    def __init__(self, endpoint: StorageQueueEndpoint, queues: QueueGateway) -> None:
        self.endpoint = endpoint
        self._queues = queues
        self.target = f"storage_queue {endpoint.connection}/{endpoint.queue}"

    async def send(self, delivery: Delivery) -> Response:
        text = message_text(delivery.body)
        size = encoded_size(text)
        if size > MAX_QUEUE_MESSAGE_BYTES:
            raise PermanentDeliveryError(
                f"{self.target}: message of {size} bytes after base64 exceeds the queue limit of "
                f"{MAX_QUEUE_MESSAGE_BYTES} bytes"
            )
        try:
            await self._queues.send(self.endpoint.queue, text)
        except StorageUnavailable as exc:
            raise TransientDeliveryError(f"{self.target}: {exc.message}") from exc
        except ConfigError as exc:
            raise PermanentDeliveryError(f"{self.target}: {exc.message}") from exc
        except HttpResponseError as exc:
            # 5xx and 408 already became StorageUnavailable; what is left is the service refusing
            # this request (403 not authorised, 400 bad name, 413 too large): no retry can fix that.
            code = exc.status_code
            raise PermanentDeliveryError(
                f"{self.target}: refused with {code} {exc.reason or type(exc).__name__}", status_code=code
            ) from exc
        return Response(QUEUED_STATUS)

    async def aclose(self) -> None:
        """Nothing to release: the storage account belongs to whoever built it."""
