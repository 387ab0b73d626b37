"""Retry and delete jobs: what a caller asks for, and the job as the status card shows it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from shared.audit.models import Actor
from shared.config.models import Endpoint, HttpEndpoint, ServiceBusEndpoint, StorageQueueEndpoint
from shared.failures.models import FailureFilter
from shared.ids import RecordId
from shared.sensitive import safe_url
from shared.values import Count, FrozenModel, UtcDatetime, new_id, utc_now


class JobAction(StrEnum):
    RETRY = "retry"
    DELETE = "delete"


class JobState(StrEnum):
    #: Accepted; the first page is on the `jobs` queue.
    QUEUED = "queued"
    #: At least one page has been processed.
    RUNNING = "running"
    #: Every selected failure was handled.
    COMPLETED = "completed"
    #: Stopped by an error it could not get past (see last_error).
    FAILED = "failed"
    #: Stopped at a page boundary after a cancel request.
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


def _exactly_true(value: Any) -> Any:
    # Literal[True] alone would take 1 (1 == True); JSON's `1` is not `true`.
    if value is not None and value is not True:
        raise ValueError("must be true (or leave it out)")
    return value


def _exactly_one_selection(schema: JsonDict) -> None:
    """The JSON Schema of "exactly one of all, filter, ids" (null counts as absent), so the contract says
    what the validator below enforces."""
    schema["oneOf"] = [
        {"required": ["all"], "properties": {"all": {"const": True}}},
        {"required": ["filter"], "properties": {"filter": {"type": "object"}}},
        {"required": ["ids"], "properties": {"ids": {"type": "array"}}},
    ]


class JobSelection(FrozenModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_exactly_one_selection)

    all: Annotated[Literal[True] | None, BeforeValidator(_exactly_true)] = None
    filter: FailureFilter | None = None
    ids: Annotated[list[RecordId], Field(min_length=1, max_length=1000)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [name for name in ("all", "filter", "ids") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of 'all', 'filter' or 'ids'")
        return self


class JobRequest(FrozenModel):
    """POST /integrations/{integration}/jobs."""

    action: JobAction
    selection: JobSelection
    #: Send elsewhere (issue 19): a retry job delivers its selection once to this endpoint instead of putting
    #: it back on `inbound` (validated as a config's endpoint is, the egress policy included).
    target: Endpoint | None = None

    @model_validator(mode="after")
    def _target_only_for_retry(self) -> Self:
        if self.target is not None and self.action is not JobAction.RETRY:
            raise ValueError("a target is for retry jobs only ('send elsewhere'); a delete job sends nothing")
        return self


def target_summary(target: Endpoint) -> dict[str, Any]:
    """Where a job sends, as the audit trail keeps it: the destination, never the headers (they may be credentials)."""
    if isinstance(target, HttpEndpoint):
        return {"kind": target.kind, "url": safe_url(str(target.url)), "method": target.method}
    if isinstance(target, StorageQueueEndpoint):
        return {"kind": target.kind, "connection": target.connection, "queue": target.queue}
    assert isinstance(target, ServiceBusEndpoint)
    return {"kind": target.kind, "connection": target.connection, "entity": target.entity}


#: A job's `ids` selection is named in full in the audit trail up to this many (the job itself keeps them all).
AUDITED_IDS = 20


def selection_summary(selection: JobSelection) -> dict[str, Any]:
    """The selection as the audit trail keeps it: whole, but for long id lists, which are counted."""
    if selection.ids is not None and len(selection.ids) > AUDITED_IDS:
        return {"ids_count": len(selection.ids), "ids_first": selection.ids[:AUDITED_IDS]}
    summary: dict[str, Any] = selection.model_dump(mode="json", by_alias=True, exclude_none=True)
    return summary


class Job(FrozenModel):
    id: str = Field(default_factory=new_id)
    integration: str
    action: JobAction
    selection: JobSelection
    state: JobState = JobState.QUEUED
    total: Count | None = None
    processed: Count = 0
    succeeded: Count = 0
    failed: Count = 0
    created_at: UtcDatetime = Field(default_factory=utc_now)
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    last_error: str | None = None
    cancel_requested: bool = False
    #: Items per second over the last page (the status card's rate).
    rate_per_s: Annotated[float, Field(ge=0)] | None = None
    #: Items passed over: already gone (removed elsewhere) when the job reached them.
    skipped: Count = 0
    #: Who started it (null for jobs started before jobs named their creator); the actor of its `job.finish`.
    created_by: Actor | None = None
    #: Retry jobs (null for delete jobs): messages put back on `inbound` (its succeeded items), then how the
    #: engine settled them: delivered, failed again (a failure recorded again), and still on their way.
    resent: Count | None = None
    delivered: Count | None = None
    failed_again: Count | None = None
    pending: Count | None = None
    #: Send elsewhere: where the retry delivers, once each, instead of `inbound` (null: the usual retry).
    target: Endpoint | None = None

    def target_json(self) -> str | None:
        """The target as stored beside the job (None without one)."""
        return None if self.target is None else self.target.model_dump_json()


@dataclass(frozen=True)
class JobLimits:
    page_size: int
    rate_per_s: float
    max_inbound_depth: int
