"""Retention: failures and payloads older than FAILURE_RETENTION_DAYS go, in bounded batches.

Run by the retention timer. Each run removes at most `limit` failures (the next run goes on),
and message timeline events as old as the failures it keeps (at most `limit` as well),
recounts the integrations it touched, deletes their content, drops error-window intervals
that can no longer be read, and removes orphaned payload blobs (a claim check whose message
was lost, content of failures removed by a crash mid-delete) a day after the retention.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.delivery.ports import ErrorWindow
from shared.failures.ports import FailureStore
from shared.logs import log_event
from shared.messages.ports import PayloadStore
from shared.timeline.ports import TimelineStore

logger = logging.getLogger("rebound.retention")

#: Error-window intervals are read only while current; a day is far past any interval length.
ERROR_WINDOW_KEEP = timedelta(days=1)
#: Orphaned payloads get one day more than failures, so a failure's content never goes first.
PAYLOAD_GRACE = timedelta(days=1)


class PurgeResult(BaseModel):
    failures: int = 0
    payloads: int = 0
    error_window_rows: int = 0
    timeline_events: int = 0
    integrations: list[str] = []


class Retention:
    def __init__(
        self,
        failures: FailureStore,
        payloads: PayloadStore,
        error_window: ErrorWindow,
        *,
        retention_days: int,
        timeline: TimelineStore | None = None,
    ) -> None:
        self._failures = failures
        self._payloads = payloads
        self._error_window = error_window
        self._retention_days = retention_days
        self._timeline = timeline

    async def purge(self, *, now: datetime, limit: int = 5000) -> PurgeResult:
        failures, payloads = self._failures, self._payloads
        cutoff = now - timedelta(days=self._retention_days)
        result = PurgeResult()
        for integration in await failures.integrations():
            # Error windows are only written when a failure is, so these partitions cover them.
            result.error_window_rows += await self._error_window.purge_before(integration, now - ERROR_WINDOW_KEEP)
            if result.failures >= limit:
                continue
            purged = await failures.purge_older_than(integration, cutoff, limit=limit - result.failures)
            if not purged:
                continue
            result.failures += len(purged)
            result.integrations.append(integration)
            for refs in purged:
                for ref in refs:
                    result.payloads += await payloads.delete(ref)
            await failures.rebuild_summary(integration)
        for name in await payloads.names_older_than(cutoff - PAYLOAD_GRACE, limit=limit):
            result.payloads += await payloads.delete(name)
        if self._timeline is not None:
            result.timeline_events = await self._timeline.purge_before(cutoff, limit=limit)
        log_event(
            logger, "retention.purged", failures=result.failures, payloads=result.payloads,
            error_window_rows=result.error_window_rows, integrations=len(result.integrations),
            timeline_events=result.timeline_events,
        )  # fmt: skip
        return result
