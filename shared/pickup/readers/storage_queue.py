"""Storage queue source: an upstream's own queue, received under a lease, deleted once enqueued.

An item's key is the queue message's id: a message whose delete failed comes back with the same id
and is recognised. Messages are received hidden for the run's lease, so another run does not see
them meanwhile; one not taken comes back when that lapses. Bodies are read as the Functions host
reads them: base64 when the text is base64, else the text as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.errors import PermanentPickupError, StorageUnavailable, TransientPickupError
from shared.pickup.models import StorageQueueSource, describe
from shared.pickup.ports import ItemContent, SourceItem
from shared.storage.queues import QueueGateway, QueueMessage

T = TypeVar("T")
#: A Storage queue hands out at most 32 messages per receive.
MAX_RECEIVE = 32


class StorageQueueReader:
    rereadable = False

    def __init__(self, source: StorageQueueSource, queues: QueueGateway, *, lease_s: int) -> None:
        self.source = source
        self._queues = queues
        self._lease_s = lease_s
        self.target = describe(source)

    async def open(self) -> None:
        """Nothing to open: the account's clients are shared."""

    async def list(self, limit: int) -> list[SourceItem]:
        received = await self._call(
            "receive",
            lambda: self._queues.receive(
                self.source.queue,
                max_messages=min(limit, MAX_RECEIVE),
                visibility_timeout_s=self._lease_s,
                create_missing=False,
            ),
        )
        return [SourceItem(key=f"message {m.id}", name=None, size=len(m.body), handle=m) for m in received]

    async def read(self, item: SourceItem) -> ItemContent:
        return ItemContent(data=_message(item).body, content_type=None, key=item.key, headers={})

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        await self._call("delete", lambda: self._queues.delete(self.source.queue, _message(item)))

    async def give_back(self, item: SourceItem) -> None:
        """It becomes visible again when the lease it was received with lapses."""

    async def close(self) -> None:
        """The account's clients belong to the registry."""

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except StorageUnavailable as exc:
            raise TransientPickupError(f"{self.target}: {what}: {exc.message}") from exc
        except ResourceNotFoundError as exc:
            raise PermanentPickupError(f"{self.target}: {what}: the queue does not exist") from exc
        except HttpResponseError as exc:
            raise PermanentPickupError(f"{self.target}: {what}: refused with {exc.status_code}") from exc


def _message(item: SourceItem) -> QueueMessage:
    handle = item.handle
    assert isinstance(handle, QueueMessage), "an item this reader received"
    return handle
