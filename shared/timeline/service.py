"""Reading a message's timeline: a page of its events, oldest first; 404 `no_timeline` when nothing was kept."""

from __future__ import annotations

from shared.errors import BadParameter, NoTimeline
from shared.timeline.models import MAX_LIMIT, Timeline
from shared.timeline.ports import TimelineStore
from shared.tokens import Cursor


class MessageTimelines:
    def __init__(self, store: TimelineStore) -> None:
        self._store = store

    async def page(self, integration: str, message_id: str, *, limit: int, cursor: str | None) -> Timeline:
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}")
        page = await self._store.page(
            integration, message_id, limit=limit, cursor=Cursor(cursor) if cursor is not None else None
        )
        if not page.items and cursor is None:
            raise NoTimeline(integration, message_id)
        return Timeline(integration=integration, message_id=message_id, items=page.items, next_cursor=page.next_cursor)
