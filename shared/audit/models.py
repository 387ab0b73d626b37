"""The audit trail's shapes: who acted (`Actor`), what they did (`AuditAction`), one entry, and a listing's filter.

An entry is `{"at", "actor": {"name", "id", "auth"}, "action", "integration", "target", "details"}`:
`integration` is the integration the action touched (none for app-wide actions such as a recovery
replay), `target` the thing acted on within it (a job id), `details` what the action did, small
and free of message content and secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from shared.auth import MAX_IDENTITY_CHARS, Principal
from shared.ids import RECORD_ID_PATTERN
from shared.tokens import Cursor
from shared.values import ENVELOPE_INTEGRATION_PATTERN, ApiDatetime, FrozenModel, UtcDatetime

Identity = Annotated[str, Field(min_length=1, max_length=MAX_IDENTITY_CHARS)]


class Actor(FrozenModel):
    """Who did it, as the audit trail and a job's `created_by` keep it: a principal without its roles."""

    #: The display name (the dev user's name; an Entra user's name; an automation client's app id).
    name: Identity
    #: The stable id (Entra object id; the dev user's name; `function-key` in key mode).
    id: Identity
    #: How the caller was authenticated: `aad`, `dev`, `key`, or `system` for Rebound itself.
    auth: Annotated[str, Field(min_length=1, max_length=64)]

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(name=principal.name, id=principal.id, auth=principal.auth)


#: The actor of what Rebound does on its own (the end of a job started before jobs named their creator).
SYSTEM_ACTOR = Actor(name="rebound", id="rebound", auth="system")


class AuditAction(StrEnum):
    """Every state-changing action the API offers; a new one is a new member here and one `record` call."""

    #: An integration config was created or replaced; details: `created`, `changed` (field paths).
    CONFIG_PUT = "config.put"
    #: An integration config was deleted.
    CONFIG_DELETE = "config.delete"
    #: A retry or delete job was started; target: the job; details: `action`, `selection`, `total`.
    JOB_START = "job.start"
    #: A job ended (completed, failed or cancelled); actor: whoever started it; details: its final counts.
    JOB_FINISH = "job.finish"
    #: Someone asked a job to stop; target: the job.
    JOB_CANCEL = "job.cancel"
    #: A recovery sweep run by hand; details: what it moved.
    RECOVERY_REPLAY = "recovery.replay"
    #: "Pick up now": a pickup source asked to run at once (issue 16); the run's outcome is the source's status.
    PICKUP_RUN = "pickup.run"
    #: An integration paused (issue 18); details: `reason`.
    INTEGRATION_PAUSE = "integration.pause"
    #: An integration resumed; details: `held` (messages that then drain in arrival order).
    INTEGRATION_RESUME = "integration.resume"
    #: An alert rule created or replaced; target: the rule; details: `created`, `kind`, `channel`.
    ALERT_RULE_PUT = "alert_rule.put"
    #: An alert rule deleted; target: the rule.
    ALERT_RULE_DELETE = "alert_rule.delete"
    #: "Send test alert"; target: the rule; details: whether the notice went out.
    ALERT_RULE_TEST = "alert_rule.test"
    #: A failure group muted (issue 19); target: the group; details: `group`, `reason`, `until`.
    FAILURE_GROUP_MUTE = "failure_group.mute"
    #: A failure group unmuted; target: the group.
    FAILURE_GROUP_UNMUTE = "failure_group.unmute"
    #: One failure's message edited and sent again (issue 19); target: the failure; details: the new message
    #: id, sizes and SHA-256 of the body before and after, a bounded text diff, the headers changed.
    FAILURE_EDIT_RETRY = "failure.edit_retry"


class AuditEntry(FrozenModel):
    #: Sorts newest first, like failure and job ids.
    id: Annotated[str, Field(pattern=RECORD_ID_PATTERN)]
    at: UtcDatetime
    actor: Actor
    action: AuditAction
    integration: Annotated[str, Field(pattern=ENVELOPE_INTEGRATION_PATTERN)] | None = None
    target: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AuditFilter(FrozenModel):
    """`GET /api/audit`'s filters; they combine with AND."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    integration: Annotated[str, Field(pattern=ENVELOPE_INTEGRATION_PATTERN)] | None = None
    #: The actor's name or id, exactly.
    actor: Identity | None = None
    action: AuditAction | None = None
    from_: ApiDatetime | None = Field(default=None, alias="from")
    to: ApiDatetime | None = None

    @field_validator("to")
    @classmethod
    def _range_not_reversed(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before 'from'")
        return value

    def matches(self, entry: AuditEntry) -> bool:
        """Whether the entry passes every filter (the in-memory store's reading of the filters)."""
        return (
            (self.integration is None or entry.integration == self.integration)
            and (self.actor is None or self.actor in (entry.actor.name, entry.actor.id))
            and (self.action is None or entry.action is self.action)
            and (self.from_ is None or entry.at >= self.from_)
            and (self.to is None or entry.at <= self.to)
        )


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    #: Null only when nothing more can match.
    next_cursor: Cursor | None
