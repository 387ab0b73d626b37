"""What control needs from storage: the state per integration, the hold, and the shared rate-limit slots.

On Azure: `TableControlStates`, `TableHeldMessages` and `TableRateSlots` (shared/storage/control_tables.py,
tables `control`, `held` and `ratelimit`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from shared.control.models import ControlState
from shared.tokens import Version


@dataclass(frozen=True)
class StoredControlState:
    """An integration's control state as read, with the version a conditional write checks."""

    state: ControlState
    version: Version


class ControlStates(Protocol):
    async def get(self, integration: str) -> StoredControlState | None: ...

    async def create(self, integration: str, state: ControlState) -> Version:
        """Store the first record; `ConcurrencyConflict` when one exists (someone else was first)."""
        ...

    async def replace(self, integration: str, state: ControlState, *, version: Version) -> Version:
        """Replace the record if it still has `version`; `ConcurrencyConflict` when it changed or is gone."""
        ...

    def all(self) -> AsyncIterator[tuple[str, StoredControlState]]:
        """Every integration's record (one query: the timer looks at all of them)."""
        ...


@dataclass(frozen=True)
class HeldItem:
    """One held message: its place in arrival order, the queue text it arrived as, and its version."""

    position: str
    text: str
    version: Version


class HeldMessages(Protocol):
    """Messages of paused integrations, per integration, in arrival order."""

    async def hold(self, integration: str, position: str, text: str) -> None:
        """Keep `text` at `position` (arrival order); the same position again replaces it (one message is
        held once, however often it comes by)."""
        ...

    async def oldest(self, integration: str, *, limit: int) -> list[HeldItem]:
        """Up to `limit` held messages, oldest position first."""
        ...

    async def release(self, integration: str, item: HeldItem) -> bool:
        """Remove the item if it is unchanged since read; False when it was held again meanwhile, or is gone."""
        ...

    async def count(self, integration: str, *, limit: int) -> int:
        """Held messages, counted up to `limit`."""
        ...


class RateSlots(Protocol):
    """Token slots shared by every instance: slot n of an integration holds at most `capacity` tokens."""

    async def claim(self, integration: str, slot: int, *, capacity: int, want: int) -> tuple[int, int]:
        """Take up to `want` tokens of `slot`: (index of the first, how many). (capacity, 0) when the slot
        is full, or already behind (the slot's storage moved on to a later slot)."""
        ...
