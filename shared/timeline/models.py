"""A message's timeline: its events from the first failed attempt on, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.tokens import Cursor
from shared.values import FrozenModel, UtcDatetime

#: An envelope id as the engine takes it (shared.messages.models.Envelope.id).
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
#: Events a timeline page holds by default, and at most.
DEFAULT_LIMIT = 200
MAX_LIMIT = 500


class TimelineEvent(StrEnum):
    #: When the message arrived (from the envelope; recorded with its first trouble).
    RECEIVED = "received"
    #: One endpoint attempt: endpoint, status, outcome, duration.
    ATTEMPT = "attempt"
    #: Engine retry: a copy waits on `inbound` for the next run.
    RETRY_SCHEDULED = "retry_scheduled"
    #: Delay action: the integration's error window was over its threshold; not attempted.
    DELAYED = "delayed"
    #: Recorded as a failure (failure id, origin, reason).
    FAILED = "failed"
    #: Put back on `inbound` by a retry job (job id, who started it).
    RESENT = "resent"
    #: Put on the recovery flow: our own storage failed on its way.
    PARKED = "parked"
    #: Moved back from the recovery flow to `inbound` by the sweep.
    RECOVERED = "recovered"
    #: The receiver took it.
    DELIVERED = "delivered"


class TimelineItem(FrozenModel):
    at: UtcDatetime
    event: TimelineEvent
    #: The instance that recorded it (null when reconstructed from the envelope, e.g. `received`).
    instance: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    #: Tells events of the same instant apart; the same event recorded twice keeps one row.
    key: str = Field(exclude=True)


class Timeline(BaseModel):
    """GET /integrations/{integration}/messages/{message_id}/timeline."""

    integration: str
    message_id: str
    items: list[TimelineItem] = Field(description="oldest first")
    next_cursor: str | None = Field(description="where the next page starts; null on the last page")


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: Cursor | None
