"""Failures: the persisted record of a message that could not be delivered, and the ways it is read back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.messages.models import AttemptRecord
from shared.tokens import Cursor
from shared.values import MAX_ATTEMPT_HISTORY, ApiDatetime, Count, FrozenModel, UtcDatetime


class FailureOrigin(StrEnum):
    #: The receiver refused or kept failing.
    ENDPOINT = "endpoint"
    #: Engine retry ran out (attempts or delay actions).
    ENGINE = "engine"
    #: The message could not be read or routed on arrival.
    INGEST = "ingest"
    #: Recovery gave up after RECOVERY_MAX_REINSERTS.
    CATASTROPHIC = "catastrophic"
    #: The integration's config cannot deliver (missing, or a connection setting absent).
    CONFIG = "config"
    #: The integration's pickup source kept failing (PICKUP_MAX_CONSECUTIVE_FAILURES runs); no message, a reason.
    PICKUP = "pickup"


class Failure(FrozenModel):
    """A persisted failure: when, why and where, with the content in the `payloads` blob."""

    id: str
    integration: str
    message_id: str
    failed_at: UtcDatetime
    reason: str
    group: str
    origin: FailureOrigin
    status_code: int | None = None
    sender: str | None = None
    receiver: str | None = None
    attempts: Count = 0
    delay_actions: Count = 0
    resend_count: Count = 0
    recovery_count: Count = 0
    correlation_id: str | None = None
    body_ref: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    received_at: UtcDatetime | None = None
    history: Annotated[list[AttemptRecord], Field(max_length=MAX_ATTEMPT_HISTORY)] = Field(default_factory=list)
    #: Fields shown here masked (credential headers) or shortened (past the Table limits); their whole
    #: values are kept beside the content, for a resend, and never shown.
    overflow: list[str] = Field(default_factory=list)


class FailureFilter(FrozenModel):
    """The failure-list filters; also a job's frozen selection."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: ApiDatetime | None = Field(default=None, alias="from")
    to: ApiDatetime | None = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    #: Case-insensitive prefixes (issue 19): "shop" finds "Shop-EU" and "shop".
    sender: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    receiver: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    origin: FailureOrigin | None = None
    group: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    #: Exact ids (issue 19): the envelope id, the correlation id, or `ref`, either of the two.
    message_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    correlation_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    ref: Annotated[str, Field(min_length=1, max_length=256)] | None = None

    @field_validator("to")
    @classmethod
    def _range_not_reversed(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before 'from'")
        return value


def prefix_matches(value: str | None, prefix: str | None) -> bool:
    """The sender/receiver filter: a case-insensitive prefix (no filter matches anything, no value nothing)."""
    return prefix is None or (value is not None and value.casefold().startswith(prefix.casefold()))


class GroupMute(FrozenModel):
    """A failure group left out of the overview counts and the alerts until `until` (or an unmute)."""

    at: UtcDatetime
    by: Annotated[str, Field(min_length=1, max_length=256)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    until: UtcDatetime | None = None

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now


class FailureSummary(BaseModel):
    integration: str
    count: int
    first_failed_at: UtcDatetime | None
    last_failed_at: UtcDatetime | None
    by_origin: dict[str, int]


class FailureGroup(BaseModel):
    group: str
    origin: FailureOrigin
    status_code: int | None
    sample_reason: str
    count: int
    first_failed_at: UtcDatetime | None
    last_failed_at: UtcDatetime | None
    #: Set while the group is muted (issue 19): left out of the overview counts and the alerts.
    muted: GroupMute | None = None


@dataclass(frozen=True)
class FailurePage:
    items: list[Failure]
    next_cursor: Cursor | None
    #: True when a scan (`q`, sender/receiver prefixes, `body_contains`) ran out of budget before `limit`
    #: matches: the page may be short, and `next_cursor` goes on from where the scan stopped.
    stopped_early: bool = False


class FailureContent(BaseModel):
    content_type: str | None
    encoding: Literal["text", "base64"]
    data: str
    size_bytes: int


class FailureDetail(BaseModel):
    failure: Failure
    content: FailureContent | None
