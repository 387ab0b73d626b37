"""What the routes share in their contract: answer shapes with no domain model, parameters, common answers.

The list and count shapes are what the handlers return (`json_response(FailureList(...))`), so the
documented schema and the served body come from one model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from blueprints.api import Param, Reply
from blueprints.http import CONFIG_ID, FAILURE_GROUP, FAILURES_INTEGRATION, RECORD_ID, IdShape
from shared.audit.models import AuditEntry
from shared.auth import AuthMode, Role
from shared.config.models import IntegrationConfig
from shared.control.models import ControlState, PauseInfo
from shared.failures.models import Failure, FailureGroup, FailureSummary
from shared.failures.queries import DEFAULT_LIMIT, MAX_LIMIT
from shared.jobs.models import Job

# --- answer shapes ----------------------------------------------------------------------------


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. `bad_parameter`, `job_active`")
    message: str = Field(description="human-readable explanation")
    details: dict[str, Any] = Field(
        description="structured context: `parameter` (400), `fields` (422), `active_job_id` (409), ..."
    )


class Error(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorInfo


class IntegrationView(IntegrationConfig):
    """A config as read: the config, and whether it is paused (read-only; a PUT ignores it)."""

    paused: PauseInfo | None = Field(
        default=None, description="set while the integration is paused (by a person, or its circuit breaker)"
    )

    @classmethod
    def of(cls, config: IntegrationConfig, state: ControlState | None) -> IntegrationView:
        return cls.model_validate({**config.model_dump(mode="json"), "paused": state.paused if state else None})


class IntegrationList(BaseModel):
    items: list[IntegrationView]


class OverviewItem(FailureSummary):
    """An integration in the overview: its failures, and what its hold keeps while it is paused (issue 18)."""

    held: Annotated[int, Field(ge=0)] = Field(default=0, description="messages waiting in the hold (paused)")


class FailureOverview(BaseModel):
    items: list[OverviewItem] = Field(
        description="integrations with failures or held messages, most recent failure first"
    )

    @classmethod
    def of(cls, summaries: list[FailureSummary], held: dict[str, int]) -> FailureOverview:
        items = [OverviewItem(**summary.model_dump(), held=held.get(summary.integration, 0)) for summary in summaries]
        listed = {item.integration for item in items}
        items += [
            OverviewItem(integration=name, count=0, first_failed_at=None, last_failed_at=None, by_origin={}, held=count)
            for name, count in sorted(held.items())
            if name not in listed
        ]
        return cls(items=items)


class FailureList(BaseModel):
    items: list[Failure] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null only when nothing more can match"
    )
    stopped_early: bool = Field(
        default=False,
        description="true when a scan (`q`, `sender`/`receiver` prefixes, `body_contains`) used up its budget "
        "before `limit` matches: the page may be short and `next_cursor` goes on from where it stopped",
    )


class FailureCount(BaseModel):
    count: Annotated[int, Field(ge=0)]


class FailureGroupList(BaseModel):
    items: list[FailureGroup] = Field(description="largest group first")


class JobList(BaseModel):
    items: list[Job]


class AuditList(BaseModel):
    items: list[AuditEntry] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null only when nothing more can match"
    )


class SignedIn(BaseModel):
    """Who is calling, as the portal shows it."""

    name: str = Field(description="display name (an automation client's app id; `function key` in key mode)")
    id: str = Field(description="stable id: the Entra object id, the dev user's name, `function-key`")
    auth: str = Field(description="how the caller signed in: `aad`, `dev`, `key`")
    roles: list[Role] = Field(description="the app roles held, lowest first; each includes those below it")


class SignInConfig(BaseModel):
    """How the portal signs people in on this deployment (anonymous: the page needs it before anyone has)."""

    auth_mode: AuthMode
    sign_in: str | None = Field(description="where to send the browser to sign in (null in key mode)")
    sign_out: str | None = Field(description="where to send the browser to sign out (null in key mode)")


class MessageAccepted(BaseModel):
    id: str = Field(description="the message id (X-Message-Id when given)")
    correlation_id: str | None = Field(description="X-Correlation-Id when given, else the message id")
    parked: bool = Field(
        description="true when `inbound` could not take it: it waits in the recovery flow and is delivered "
        "once storage is back"
    )


# --- parameters -------------------------------------------------------------------------------


def _path_id(name: str, description: str, shape: IdShape) -> Param:
    # The pattern is the one blueprints.http.route_id checks, so the document and the check agree.
    return Param(name, "path", description, {"type": "string", "pattern": shape.pattern}, required=True)


#: A config's id (config routes and ingest).
CONFIG_INTEGRATION = _path_id("integration", "integration id", CONFIG_ID)
#: An integration whose failures and jobs are read: a config id or `_unknown`.
FAILURE_INTEGRATION = _path_id("integration", "integration id", FAILURES_INTEGRATION)
FAILURE_ID = _path_id("failure_id", "a failure's `id` (stable; sorts newest first)", RECORD_ID)
JOB_ID = _path_id("job_id", "a job's `id`", RECORD_ID)

#: Query-string descriptions of the FailureFilter fields; their schemas come from the model.
FILTER_DESCRIPTIONS: dict[str, str] = {
    "from": "failed at or after this instant (ISO 8601; no offset means UTC)",
    "to": "failed at or before this instant (ISO 8601); must not be before `from`",
    "q": "the reason contains this text, case-insensitive (applied while scanning: a page may be short)",
    "sender": "the sender starts with this, case-insensitive (applied while scanning: a page may be short)",
    "receiver": "the receiver starts with this, case-insensitive (applied while scanning: a page may be short)",
    "origin": "where the failure arose",
    "group": "a failure group's fingerprint (see failure-groups)",
    "message_id": "exact message id (the envelope id)",
    "correlation_id": "exact correlation id",
    "ref": "exact message id or correlation id (the portal's search box)",
}
#: The content search of the failure list and the export (not of counts and jobs: it reads every body).
BODY_CONTAINS = Param(
    "body_contains",
    "query",
    "the text body contains this, case-insensitive. Reads the body of each failure examined, at most 500 per "
    "request (then `stopped_early` and a cursor); binary bodies and bodies over 1 MiB never match",
    {"type": "string", "minLength": 1, "maxLength": 200},
)
GROUP = _path_id("group", "a failure group's fingerprint (`group` in failure-groups)", FAILURE_GROUP)
PAGING = (
    Param(
        "limit",
        "query",
        "page size",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    Param(
        "cursor",
        "query",
        "the `next_cursor` of the previous page (opaque; any other value is a 400)",
        {"type": "string", "minLength": 1, "maxLength": 2048},
    ),
)
INGEST_HEADERS = (
    Param("X-Sender", "header", "the sending system; defaults to the config's sender"),
    Param(
        "X-Correlation-Id",
        "header",
        "traces the message end to end; defaults to the message id",
        {"type": "string", "maxLength": 256},
    ),
    Param(
        "X-Message-Id",
        "header",
        "the message id, sent on as Idempotency-Key: a retried POST with the same id reaches the receiver "
        "under the same key, so it can drop the duplicate; generated when absent",
        {"type": "string", "pattern": r"^[A-Za-z0-9._:-]+$", "maxLength": 128},
    ),
)

# --- common answers ---------------------------------------------------------------------------

BAD_PARAMETER = Reply(
    "a path or query parameter is invalid (malformed, empty, or not one this route takes); "
    "`details.parameter` names it",
    Error,
)
BAD_BODY = Reply(
    "a path or query parameter is invalid (`details.parameter` names it), or the body is not JSON "
    "(`details.field` is `body`: empty, malformed, NaN/Infinity, nested too deeply)",
    Error,
)
NO_INTEGRATION = Reply("the integration does not exist", Error)
NO_JOB = Reply("no such job", Error)
NOT_JSON = Reply("the Content-Type is not `application/json` (absent is taken as JSON)", Error)
INVALID = Reply("the body does not validate; `details.fields` lists `{field, message}`", Error)
NOT_MODIFIED = Reply("unchanged since the ETag in If-None-Match")
#: Every route that can fail answers this too; `build_openapi` adds it as `default`.
UNEXPECTED = Reply("unexpected error, e.g. 503 when storage is unavailable", Error)
