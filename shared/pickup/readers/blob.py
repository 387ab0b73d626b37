"""Blob source: the blobs under a prefix of someone's container, read, then deleted or moved.

An item's key is the blob's name and ETag: a blob written again under the same name is a new
message. Removal is conditional on the ETag that was read, so a blob rewritten while it was being
picked is not deleted (the next run picks the new content). A move writes the content under
`move_to` + its whole name and then deletes the original; the listing skips what lies under `move_to`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from shared.errors import ConcurrencyConflict, PermanentPickupError, StorageUnavailable, TransientPickupError
from shared.pickup.models import BlobSource, describe
from shared.pickup.ports import ItemContent, SourceItem
from shared.storage.blobs import BlobGateway, ListedBlob

T = TypeVar("T")


class BlobReader:
    rereadable = True

    def __init__(self, source: BlobSource, blobs: BlobGateway) -> None:
        self.source = source
        self._blobs = blobs
        self.target = describe(source)

    async def open(self) -> None:
        """Nothing to open: the account's clients are shared."""

    async def list(self, limit: int) -> list[SourceItem]:
        source = self.source
        skip = source.move_to if source.after == "move" else None
        listed = await self._call(
            "list",
            lambda: self._blobs.list_blobs(source.container, prefix=source.prefix, limit=limit, skip_prefix=skip),
        )
        return [
            SourceItem(key=_key(blob.name, blob.etag), name=blob.name, size=blob.size, handle=blob) for blob in listed
        ]

    async def read(self, item: SourceItem) -> ItemContent:
        listed = _listed(item)
        blob = await self._call(f"read {listed.name}", lambda: self._blobs.download(self.source.container, listed.name))
        if blob is None:
            raise TransientPickupError(f"{self.target}: {listed.name} vanished while it was picked")
        return ItemContent(data=blob.data, content_type=None, key=_key(listed.name, blob.etag), headers={})

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        source, listed = self.source, _listed(item)
        etag = content.key.rsplit("\n", 1)[1]
        if source.after == "move":
            target = f"{source.move_to}{listed.name}"
            await self._call(f"move {listed.name}", lambda: self._blobs.upload(source.container, target, content.data))
        try:
            await self._call(
                f"delete {listed.name}", lambda: self._blobs.delete_version(source.container, listed.name, etag)
            )
        except ConcurrencyConflict:
            # Rewritten since it was read: the new content is another message, for the next run.
            return

    async def give_back(self, item: SourceItem) -> None:
        """Nothing is locked."""

    async def close(self) -> None:
        """The account's clients belong to the registry."""

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            return await operation()
        except StorageUnavailable as exc:
            raise TransientPickupError(f"{self.target}: {what}: {exc.message}") from exc
        except ResourceNotFoundError as exc:
            raise PermanentPickupError(f"{self.target}: {what}: the container does not exist") from exc
        except HttpResponseError as exc:
            # 5xx and 408 already became StorageUnavailable: what is left is a refusal (403, 400).
            raise PermanentPickupError(
                f"{self.target}: {what}: refused with {exc.status_code} {exc.reason or ''}".rstrip()
            ) from exc


def _key(name: str, etag: str) -> str:
    return f"{name}\n{etag}"


def _listed(item: SourceItem) -> ListedBlob:
    handle = item.handle
    assert isinstance(handle, ListedBlob), "an item this reader listed"
    return handle
