"""What the timeline needs from storage. `TableTimelineStore` (shared/storage/timeline_table.py) implements it
on Azure: one partition per message, events in time order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.timeline.models import TimelineItem, TimelinePage
from shared.tokens import Cursor


class TimelineStore(Protocol):
    async def append(self, integration: str, message_id: str, items: Sequence[TimelineItem]) -> None:
        """Keep the events (one write); an event appended again (same time and key) is kept once."""
        ...

    async def page(self, integration: str, message_id: str, *, limit: int, cursor: Cursor | None) -> TimelinePage:
        """Up to `limit` events of the message, oldest first, after `cursor` (one this store issued; any other
        is `BadParameter("cursor")`)."""
        ...

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        """Remove up to `limit` events recorded before `cutoff`; how many were removed."""
        ...
