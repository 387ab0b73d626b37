"""The audit trail as the other capabilities use it: `record` an action, list the trail, purge it.

Every state-changing service takes the acting `Actor` explicitly and records its action with
`await audit.record(actor, AuditAction.X, integration=..., target=..., details=...)` as the next
step after the state change and before it reports success, so no later error can skip it.

What that guarantees, per action (docs/auth.md, "The audit trail"):
- an entry is never written for an action that did not happen (the entry follows the change);
- a call that answers success has its entry;
- if the entry cannot be written (the audit store is down), the call fails with that error and the
  log keeps `audit.unrecorded` with everything but the details; a job start is undone then, other
  actions stand (a config already stored, a cancel already requested, messages already moved);
- the end of a job is recorded at least once: a page that crashes after the entry and before the
  job's final state is saved finishes the job again and records it again (same job id, as target).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.audit.models import Actor, AuditAction, AuditEntry, AuditFilter, AuditPage
from shared.audit.ports import AuditStore
from shared.errors import BadParameter, ReboundError
from shared.ids import newest_first_id
from shared.logs import log_event
from shared.tokens import Cursor
from shared.values import utc_now

logger = logging.getLogger("rebound.audit")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The audit filters as query parameters (AuditFilter's fields, `from` by its alias).
FILTER_PARAMETERS = ("integration", "actor", "action", "from", "to")
PAGE_PARAMETERS = ("limit", "cursor")
#: Details are a summary, not a dump: past this size (JSON characters) only their keys are kept, so an
#: entry always fits one Table property (64 KiB as UTF-16) and the write never fails for its size.
MAX_DETAILS_CHARS = 8_000
#: Entries removed per run of the retention timer, at most (the next run goes on).
PURGE_BATCH = 5_000


class AuditTrail:
    def __init__(self, store: AuditStore, *, retention_days: int, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._retention_days = retention_days
        self._clock = clock

    async def record(
        self,
        actor: Actor,
        action: AuditAction,
        *,
        integration: str | None = None,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry, stamped now by the trail's clock (`at` only where a test sets the time), so the
        trail's order is the order in which the entries were written; raises what the store raises (the
        caller's action then fails too)."""
        when = at or self._clock()
        entry = AuditEntry(
            id=newest_first_id(when),
            at=when,
            actor=actor,
            action=action,
            integration=integration,
            target=target,
            details=bounded(details or {}),
        )
        fields: dict[str, Any] = {
            "action": action.value, "integration": integration, "target": target,
            "actor_id": actor.id, "actor_auth": actor.auth, "entry_id": entry.id,
        }  # fmt: skip
        try:
            await self._store.append(entry)
        except ReboundError as exc:
            log_event(logger, "audit.unrecorded", level=logging.ERROR, error=exc.code, **fields)
            raise
        log_event(logger, "audit.recorded", **fields)
        return entry

    async def page(self, selection: AuditFilter, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> AuditPage:
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}")
        return await self._store.page(selection, limit=limit, cursor=None if cursor is None else Cursor(cursor))

    async def purge(self, *, now: datetime, limit: int = PURGE_BATCH) -> int:
        """Remove entries older than AUDIT_RETENTION_DAYS (at most `limit` a run)."""
        removed = await self._store.purge_before(now - timedelta(days=self._retention_days), limit=limit)
        log_event(logger, "audit.purged", entries=removed, retention_days=self._retention_days)
        return removed


def bounded(details: Mapping[str, Any]) -> dict[str, Any]:
    """The details as given when small enough; else their keys and a note that the values were dropped."""
    text = json.dumps(details, default=str, separators=(",", ":"))
    if len(text) <= MAX_DETAILS_CHARS:
        return dict(json.loads(text))
    return {"truncated": True, "keys": sorted(details)}


def parse_audit_filter(params: Mapping[str, str]) -> AuditFilter:
    """Query-string filters → AuditFilter; a bad value, an empty one included, is a 400 naming the parameter."""
    values = {key: value for key, value in params.items() if key in FILTER_PARAMETERS}
    try:
        return AuditFilter.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        parameter = str(first["loc"][0]) if first["loc"] else "filter"
        raise BadParameter(parameter, first["msg"].removeprefix("Value error, ")) from exc
