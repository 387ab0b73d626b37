"""`MemoryAuditStore`: the audit trail in memory (the twin of `TableAuditStore`)."""

from __future__ import annotations

import re
from datetime import datetime

from shared.audit.models import AuditEntry, AuditFilter, AuditPage
from shared.errors import BadParameter
from shared.ids import RECORD_ID_PATTERN
from shared.tokens import Cursor
from tests.twins.faults import Twin

_CURSOR = re.compile(r"^memory-audit:(" + RECORD_ID_PATTERN.strip("^$") + r")$")


class MemoryAuditStore(Twin):
    """Implements `shared.audit.ports.AuditStore`.

    Entries are kept as their JSON by id, so a reader gets a copy rebuilt from storage. Ids sort
    newest first, as in the table; one ordered list serves the global trail and, filtered, each
    integration's.
    """

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[str, str] = {}

    async def append(self, entry: AuditEntry) -> None:
        async with self.call("append"):
            self._entries[entry.id] = entry.model_dump_json()

    async def page(self, selection: AuditFilter, *, limit: int, cursor: Cursor | None) -> AuditPage:
        async with self.call("page"):
            return self._page(selection, limit=limit, cursor=cursor)

    def _page(self, selection: AuditFilter, *, limit: int, cursor: Cursor | None) -> AuditPage:
        after = _after(cursor)
        matches = [
            entry
            for entry_id in sorted(self._entries)
            if after is None or entry_id > after
            if selection.matches(entry := AuditEntry.model_validate_json(self._entries[entry_id]))
        ]
        items = matches[:limit]
        more = len(matches) > limit
        return AuditPage(items, Cursor(f"memory-audit:{items[-1].id}") if more else None)

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        async with self.call("purge_before"):
            old = [key for key, text in self._entries.items() if AuditEntry.model_validate_json(text).at < cutoff]
            for entry_id in sorted(old, reverse=True)[:limit]:
                del self._entries[entry_id]
            return min(len(old), limit)

    # --- affordances -------------------------------------------------------------------------

    def entries(self) -> list[AuditEntry]:
        """Every entry, newest first."""
        return [AuditEntry.model_validate_json(self._entries[entry_id]) for entry_id in sorted(self._entries)]


def _after(cursor: Cursor | None) -> str | None:
    if cursor is None:
        return None
    found = _CURSOR.match(cursor)
    if found is None:
        raise BadParameter("cursor", "is not a cursor this API returned")
    return found.group(1)
