"""What the audit trail needs from storage. `TableAuditStore` (shared/storage/audit_table.py) implements it
on Azure; entries are never changed, only added and, past the retention, removed."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.audit.models import AuditEntry, AuditFilter, AuditPage
from shared.tokens import Cursor


class AuditStore(Protocol):
    async def append(self, entry: AuditEntry) -> None:
        """Keep the entry, listed newest first both in its integration's trail and in the global one.
        Appending the same entry (same id) twice keeps it once."""
        ...

    async def page(self, selection: AuditFilter, *, limit: int, cursor: Cursor | None) -> AuditPage:
        """Up to `limit` entries matching the filter, newest first, after `cursor` (a cursor this store
        issued; any other is `BadParameter("cursor")`)."""
        ...

    async def purge_before(self, cutoff: datetime, *, limit: int) -> int:
        """Remove up to `limit` entries older than `cutoff`; how many were removed."""
        ...
