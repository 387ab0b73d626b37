"""What pickup needs: the state and lease of each source, the items already picked, and a reader per source.

On Azure the two stores are `TablePickupStates` and `TableSeenItems` (shared/storage/pickup_tables.py,
tables `pickups` and `pickupseen`); the readers are in shared/pickup/readers/, one per source kind,
at the edge to the upstream systems like the delivery adapters are at the edge to receivers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.pickup.models import PickupState, Source
from shared.tokens import Version


@dataclass(frozen=True)
class StoredPickupState:
    """A source's state as read, with the version a conditional write checks."""

    state: PickupState
    version: Version


class PickupStates(Protocol):
    """One record per integration with a source: its last run, and the lease of the run going on."""

    async def get(self, integration: str) -> StoredPickupState | None: ...

    async def create(self, integration: str, state: PickupState) -> Version:
        """Store the first record; `ConcurrencyConflict` when one exists (someone else was first)."""
        ...

    async def replace(self, integration: str, state: PickupState, *, version: Version) -> Version:
        """Replace the record if it still has `version`; `ConcurrencyConflict` when it changed or is gone."""
        ...


class SeenItems(Protocol):
    """Items already picked, per integration, for duplicate detection (PICKUP_DEDUP_DAYS)."""

    async def picked_at(self, integration: str, key: str) -> datetime | None:
        """When the item with this key was picked; None when it never was (or was forgotten)."""
        ...

    async def remember(self, integration: str, key: str, *, message_id: str, at: datetime) -> None: ...

    async def forget_before(self, integration: str, cutoff: datetime, *, limit: int) -> int:
        """Forget up to `limit` items picked before `cutoff`; how many went."""
        ...


@dataclass(frozen=True)
class SourceItem:
    """One item a reader found: a file or blob, or a message it received (and holds locked)."""

    #: The item and its version at the source (a blob's name and ETag, a file's name, size and mtime,
    #: a message's id): what duplicate detection and the envelope id are made of.
    key: str
    #: The file or blob name, which travels in a header; None for messages.
    name: str | None
    #: Bytes, when the listing says; a file over MAX_MESSAGE_BYTES is left where it is, unread.
    size: int | None
    #: The reader's own handle (the received message, the listed blob).
    handle: object


@dataclass(frozen=True)
class ItemContent:
    data: bytes
    content_type: str | None
    #: The key of what was read: a blob rewritten since it was listed has a new ETag, so a new key.
    key: str
    #: Headers the source gave the item (a Service Bus message's application properties, a poll answer's).
    headers: dict[str, str]


class SourceReader(Protocol):
    """Reads one source during one run: open, list, read, remove, close.

    Operations raise `TransientPickupError` for what may pass (network, timeouts, a busy service),
    `PermanentPickupError` for what will not (a refused host key or credential, a missing
    container). The runner retries the transient ones inside the endpoint retry window.
    """

    #: Where it reads, without credentials (for logs and reasons).
    target: str
    #: True when an item that was read stays readable at the source until removed (files, blobs); False
    #: for messages and poll answers, which go to the recovery flow when `inbound` cannot take them.
    rereadable: bool

    async def open(self) -> None: ...

    async def list(self, limit: int) -> list[SourceItem]:
        """Up to `limit` items; for message sources this receives (and locks) them."""
        ...

    async def read(self, item: SourceItem) -> ItemContent: ...

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        """Delete the item, or move it (`after: move`); an item already gone counts as removed."""
        ...

    async def give_back(self, item: SourceItem) -> None:
        """An item listed but not taken: release its lock so it can be received again (a no-op for files)."""
        ...

    async def close(self) -> None: ...


class SourceReaders(Protocol):
    def reader_for(self, integration: str, source: Source) -> SourceReader:
        """A reader for one run; `ConfigError` when the source's connection or credentials cannot work."""
        ...

    async def aclose(self) -> None: ...
