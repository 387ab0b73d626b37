"""Where messages and their bodies wait: the main flow's queues and the payload store (claim check).

On Azure: `StorageMessageQueue` (shared/storage/message_queue.py) and `BlobPayloadStore`
(shared/storage/payload_blobs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.errors import StorageError

#: What a payload put without a content type reads back as: a blob always has one, and this is its default.
STORED_WITHOUT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Payload:
    data: bytes
    content_type: str | None


class PayloadStore(Protocol):
    """Message bodies by reference: the claim check for large messages, and every failure's content."""

    async def put(self, ref: str, data: bytes, *, content_type: str | None) -> str:
        """Write (or overwrite: a ref names one message, so a retry writes the same bytes); returns `ref`."""
        ...

    async def get(self, ref: str) -> Payload | None:
        """The payload; put without a content type, it reads back as `STORED_WITHOUT_TYPE`."""
        ...

    async def delete(self, ref: str) -> bool:
        """True when this call removed it; a missing payload counts as deleted."""
        ...

    async def delete_many(self, refs: Sequence[str]) -> list[StorageError | None]:
        """Per ref, in order: None when its payload is gone, or the error that kept it."""
        ...

    async def names_older_than(self, cutoff: datetime, *, limit: int) -> list[str]:
        """Up to `limit` refs last written before `cutoff` (the retention's orphan sweep)."""
        ...


class MessageQueue(Protocol):
    """One queue of the main flow: `inbound` or `jobs`."""

    @property
    def name(self) -> str: ...

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        """Enqueue; with `delay_s` the message stays invisible that long."""
        ...

    async def depth(self) -> int:
        """Messages waiting, invisible (delayed) ones included."""
        ...
