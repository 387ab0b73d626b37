"""`MemoryPayloadStore`: message bodies by reference, in memory (the twin of `BlobPayloadStore`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.errors import StorageError
from shared.messages.ports import STORED_WITHOUT_TYPE, Payload
from tests.twins.faults import Twin


@dataclass(frozen=True)
class _Kept:
    data: bytes
    content_type: str | None
    written_at: datetime


class MemoryPayloadStore(Twin):
    """Implements `shared.messages.ports.PayloadStore`.

    A payload put without a content type reads back as `application/octet-stream`, as a blob does.
    Affordances: `touch(ref, at)` dates a payload (the retention's orphan sweep reads the write
    time), `keep(ref, error)` makes deleting one payload fail with `error`, `refs()` lists what is kept.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self._clock = clock
        self._kept: dict[str, _Kept] = {}
        self._undeletable: dict[str, StorageError] = {}

    async def put(self, ref: str, data: bytes, *, content_type: str | None) -> str:
        async with self.call("put"):
            self._kept[ref] = _Kept(bytes(data), content_type or STORED_WITHOUT_TYPE, self._clock())
            return ref

    async def get(self, ref: str) -> Payload | None:
        async with self.call("get"):
            kept = self._kept.get(ref)
            return None if kept is None else Payload(kept.data, kept.content_type)

    async def delete(self, ref: str) -> bool:
        async with self.call("delete"):
            return self._delete(ref)

    async def delete_many(self, refs: Sequence[str]) -> list[StorageError | None]:
        async with self.call("delete_many"):
            outcomes: list[StorageError | None] = []
            for ref in refs:
                error = self._undeletable.get(ref)
                if error is None:
                    self._delete(ref)
                outcomes.append(error)
            return outcomes

    async def names_older_than(self, cutoff: datetime, *, limit: int) -> list[str]:
        async with self.call("names_older_than"):
            # Listed by name, as a blob container lists.
            return sorted(ref for ref, kept in self._kept.items() if kept.written_at < cutoff)[:limit]

    async def ping(self) -> None:
        """The health probe of the payload store (what `storage.blobs` checks on Azure)."""
        async with self.call("ping"):
            return None

    def _delete(self, ref: str) -> bool:
        error = self._undeletable.get(ref)
        if error is not None:
            raise error
        return self._kept.pop(ref, None) is not None

    # --- affordances -------------------------------------------------------------------------

    def touch(self, ref: str, at: datetime) -> None:
        """Date the payload `ref` as last written at `at`."""
        kept = self._kept[ref]
        self._kept[ref] = _Kept(kept.data, kept.content_type, at)

    def keep(self, ref: str, error: StorageError | None) -> None:
        """Deleting `ref` fails with `error` from now on (None: deletes work again)."""
        if error is None:
            self._undeletable.pop(ref, None)
        else:
            self._undeletable[ref] = error

    def refs(self) -> list[str]:
        return sorted(self._kept)
