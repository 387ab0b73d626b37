"""Message bodies in the `payloads` container: the claim check for large messages, and every
failed message's content (a failure's content is never only in memory)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.errors import StorageError
from shared.messages.ports import Payload
from shared.storage.blobs import BlobGateway


class BlobPayloadStore:
    def __init__(self, blobs: BlobGateway, container: str) -> None:
        self._blobs = blobs
        self._container = container

    async def put(self, ref: str, data: bytes, *, content_type: str | None) -> str:
        await self._blobs.upload(self._container, ref, data, content_type=content_type)
        return ref

    async def get(self, ref: str) -> Payload | None:
        blob = await self._blobs.download(self._container, ref)
        return None if blob is None else Payload(blob.data, blob.content_type)

    async def delete(self, ref: str) -> bool:
        return await self._blobs.delete(self._container, ref)

    async def delete_many(self, refs: Sequence[str]) -> list[StorageError | None]:
        """Per ref, in order: None when its content is gone, or the error that kept it."""
        return await self._blobs.delete_many(self._container, refs)

    async def names_older_than(self, cutoff: datetime, *, limit: int) -> list[str]:
        return await self._blobs.names_older_than(self._container, cutoff, limit=limit)
