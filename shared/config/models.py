"""The domain's data: envelopes, integration configs, retry policy, failures and jobs.

JSON is snake_case throughout (DESIGN.md section 3). Validation errors carry the field's
location, which `shared.validation` turns into `{"field": "retry.linear_count", ...}`.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

#: Spec: linear engine retry runs at least 3 and at most 10 times.
MIN_LINEAR_COUNT = 3
MAX_LINEAR_COUNT = 10
DEFAULT_LINEAR_COUNT = 3
#: Azure Storage queues hide a message for at most 7 days.
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600
#: A failure keeps this many attempt records; older ones are summarised by the count.
MAX_ATTEMPT_HISTORY = 20
#: Reserved integration for messages whose integration cannot be read (cannot be created by users).
UNKNOWN_INTEGRATION = "_unknown"

INTEGRATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ENVELOPE_INTEGRATION_PATTERN = r"^(_unknown|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
#: Failure and job ids are RowKeys built by `shared.failures.failure_row_key`: inverted time, then 12 hex digits.
RECORD_ID_PATTERN = r"^[0-9]{16}-[0-9a-f]{12}$"
#: What the API takes as an instant (`from`, `to`): an RFC 3339 date-time whose offset may be left out
#: (then it is UTC). The first and last day Python can represent are refused, so every accepted value
#: converts to UTC (a `+14:00` on 0001-01-01 would fall before year 1); leap seconds are not representable.
API_DATETIME_PATTERN = (
    r"^(?!0000-|0001-01-01|9999-12-31)[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)
_SETTING_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_QUEUE_NAME_PATTERN = r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"
#: RFC 9110 field name: a token.
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
#: RFC 9110 field value: no control characters but horizontal tab (CR, LF and NUL would split or end
#: the request), written so that JSON Schema (ECMA) and Python read it alike.
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _aware(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 exists only before year 1 in UTC; a ValueError makes it a field error.
        raise ValueError("is outside the range of representable instants") from None


def _api_datetime_text(value: Any) -> Any:
    """A caller's instant must be ISO 8601 text: no unix numbers ("0.5"), no date-only, no space separator."""
    if isinstance(value, datetime):
        return value  # built in code, not sent by a caller
    if not isinstance(value, str) or re.fullmatch(API_DATETIME_PATTERN, value) is None:
        raise ValueError(
            "must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z (offset optional, UTC when absent), "
            "between 0001-01-02 and 9999-12-30"
        )
    # Parsed here (not by pydantic) so strict validation of request bodies takes it too; fromisoformat
    # checks the calendar (no 02-30) and keeps microseconds of a longer fraction (.NET sends 7 digits).
    return datetime.fromisoformat(value.upper())


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
#: An instant given by a caller (query parameter or request body).
ApiDatetime = Annotated[
    datetime,
    BeforeValidator(_api_datetime_text),
    AfterValidator(_aware),
    Field(json_schema_extra={"pattern": API_DATETIME_PATTERN}),
]
RecordId = Annotated[str, Field(pattern=RECORD_ID_PATTERN)]
IntegrationId = Annotated[str, Field(pattern=INTEGRATION_ID_PATTERN)]
SettingName = Annotated[str, Field(pattern=_SETTING_NAME_PATTERN, max_length=256)]
Counter = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- endpoints ------------------------------------------------------------------------------


def _valid_header_name(name: str) -> str:
    if not re.fullmatch(HEADER_NAME_PATTERN, name):
        raise ValueError("is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)")
    return name


def _valid_header_value(value: str) -> str:
    if not re.fullmatch(HEADER_VALUE_PATTERN, value):
        raise ValueError("must not contain control characters such as CR, LF or NUL")
    return value


HeaderName = Annotated[str, AfterValidator(_valid_header_name)]
HeaderValue = Annotated[
    str,
    AfterValidator(_valid_header_value),
    WithJsonSchema({"type": "string", "pattern": HEADER_VALUE_PATTERN}),
]


def _kind_required(schema: JsonDict) -> None:
    """`kind` chooses the variant of the endpoint union, so a request must name it.

    Code may leave the default (`HttpEndpoint(url=...)`); the JSON contract may not: without
    the tag the discriminated union cannot tell the variants apart.
    """
    required = schema.get("required")
    schema["required"] = ["kind", *(required if isinstance(required, list) else [])]


class _EndpointModel(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_kind_required)


class HttpEndpoint(_EndpointModel):
    kind: Literal["http"] = "http"
    url: Annotated[AnyHttpUrl, Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})]
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        description="sent with every delivery; `%NAME%` in a value is replaced by app setting NAME, "
        "which must be listed in ENDPOINT_SECRET_SETTINGS",
        json_schema_extra={"propertyNames": {"pattern": HEADER_NAME_PATTERN}},
    )
    timeout_s: Annotated[float, Field(gt=0, le=230)] = 30.0


class StorageQueueEndpoint(_EndpointModel):
    kind: Literal["storage_queue"] = "storage_queue"
    connection: SettingName
    # The rule is checked below (pydantic's patterns have no look-ahead); the schema states it too.
    queue: Annotated[str, Field(json_schema_extra={"pattern": _QUEUE_NAME_PATTERN})]

    @field_validator("queue")
    @classmethod
    def _valid_queue_name(cls, value: str) -> str:
        if not is_valid_queue_name(value):
            raise ValueError(
                "must be 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric"
            )
        return value


class ServiceBusEndpoint(_EndpointModel):
    kind: Literal["service_bus"] = "service_bus"
    connection: SettingName
    entity: Annotated[str, Field(min_length=1, max_length=260)]


Endpoint = Annotated[HttpEndpoint | StorageQueueEndpoint | ServiceBusEndpoint, Field(discriminator="kind")]


class ErrorAction(StrEnum):
    RETRY = "retry"
    TERMINATE = "terminate"
    REDIRECT = "redirect"


class ErrorRule(_Model):
    """Receiver statuses in [status_min, status_max] get `action` instead of the default classification."""

    status_min: Annotated[int, Field(ge=100, le=599)]
    status_max: Annotated[int, Field(ge=100, le=599)]
    action: ErrorAction

    @field_validator("status_max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("status_min")
        if low is not None and value < low:
            raise ValueError(f"must be >= status_min ({low})")
        return value

    def matches(self, status_code: int) -> bool:
        return self.status_min <= status_code <= self.status_max


# --- retry policy ---------------------------------------------------------------------------


class RetryMode(StrEnum):
    LINEAR = "linear"
    BACKOFF = "backoff"


class BackoffPolicy(_Model):
    """The spec's backoff variables, with its defaults."""

    enabled: bool = True
    max_number_of_retries: Annotated[int, Field(ge=0, le=100)] = 5
    failure_count_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 3
    max_errors_per_interval: Annotated[int, Field(ge=1)] = 1000
    requeue_min_delay_seconds: Annotated[int, Field(ge=0, le=MAX_VISIBILITY_DELAY_S)] = 10
    requeue_max_delay_seconds: Annotated[int, Field(ge=0, le=MAX_VISIBILITY_DELAY_S)] = 60
    max_delay_actions: Annotated[int, Field(ge=0, le=100)] = 5

    @field_validator("requeue_max_delay_seconds")
    @classmethod
    def _max_delay_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("requeue_min_delay_seconds")
        if low is not None and value < low:
            raise ValueError(f"must be >= requeue_min_delay_seconds ({low})")
        return value


class RetryPolicy(_Model):
    mode: RetryMode = RetryMode.LINEAR
    linear_count: Annotated[int, Field(ge=MIN_LINEAR_COUNT, le=MAX_LINEAR_COUNT)] = DEFAULT_LINEAR_COUNT
    backoff: BackoffPolicy = Field(default_factory=BackoffPolicy)

    def effective(self) -> RetryPolicy:
        """Backoff with Enabled=false falls back to the default policy (linear 3), as the spec says."""
        if self.mode is RetryMode.BACKOFF and not self.backoff.enabled:
            return RetryPolicy()
        return self


# --- integration config ---------------------------------------------------------------------


class IntegrationConfig(_Model):
    id: IntegrationId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sender: Annotated[str, Field(max_length=200)] = ""
    receiver: Annotated[str, Field(max_length=200)] = ""
    endpoint: Endpoint
    fallback_endpoint: Endpoint | None = None
    error_rules: Annotated[list[ErrorRule], Field(max_length=50)] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    persist_failures: bool = True

    @field_validator("error_rules")
    @classmethod
    def _redirect_needs_fallback(cls, rules: list[ErrorRule], info: ValidationInfo) -> list[ErrorRule]:
        # fallback_endpoint is declared before error_rules, so it has been validated already.
        if info.data.get("fallback_endpoint") is None and any(r.action is ErrorAction.REDIRECT for r in rules):
            raise ValueError("a 'redirect' rule needs a fallback_endpoint")
        return rules


class AttemptRecord(_Model):
    at: UtcDatetime
    engine_attempt: Counter = 0
    endpoint_attempt: Counter = 0
    target: str = ""
    status_code: int | None = None
    outcome: str
    duration_ms: Annotated[float, Field(ge=0)] = 0.0


# --- envelope -------------------------------------------------------------------------------


def _valid_base64(value: str | None) -> str | None:
    if value is not None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("is not valid base64") from exc
    return value


class Envelope(_Model):
    """One message on its way to a receiver; the `inbound` queue message.

    Exactly one of body_text, body_b64 and body_ref holds the body (none: empty body).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")] = Field(
        default_factory=new_id
    )
    integration: Annotated[str, Field(pattern=ENVELOPE_INTEGRATION_PATTERN)]
    sender: str | None = None
    receiver: str | None = None
    correlation_id: Annotated[str, Field(max_length=256)] | None = None
    content_type: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body_text: str | None = None
    body_b64: Annotated[str | None, AfterValidator(_valid_base64)] = None
    body_ref: str | None = None
    received_at: UtcDatetime = Field(default_factory=utc_now)
    engine_attempts: Counter = 0
    delay_actions: Counter = 0
    resend_count: Counter = 0
    recovery_count: Counter = 0
    #: Extension: endpoint attempts so far across engine runs, and the newest of them, so a
    #: failure after several requeues still shows its whole story.
    attempts: Counter = 0
    history: Annotated[list[AttemptRecord], Field(max_length=MAX_ATTEMPT_HISTORY)] = Field(default_factory=list)
    #: Extension: the W3C trace context of the ingest that created it (telemetry only).
    traceparent: Annotated[str, Field(max_length=128)] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> Self:
        bodies = [name for name in ("body_text", "body_b64", "body_ref") if getattr(self, name) is not None]
        if len(bodies) > 1:
            raise ValueError(f"give one body field, not {' and '.join(bodies)}")
        return self

    def inline_body(self) -> bytes | None:
        """The body when it travels inside the envelope; None when it lives in a blob."""
        if self.body_text is not None:
            return self.body_text.encode("utf-8")
        if self.body_b64 is not None:
            return base64.b64decode(self.body_b64)
        if self.body_ref is not None:
            return None
        return b""


# --- failures -------------------------------------------------------------------------------


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


class Failure(_Model):
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
    attempts: Counter = 0
    delay_actions: Counter = 0
    resend_count: Counter = 0
    recovery_count: Counter = 0
    correlation_id: str | None = None
    body_ref: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    received_at: UtcDatetime | None = None
    history: Annotated[list[AttemptRecord], Field(max_length=MAX_ATTEMPT_HISTORY)] = Field(default_factory=list)
    #: Fields shown here masked (credential headers) or shortened (past the Table limits); their whole
    #: values are kept beside the content, for a resend, and never shown.
    overflow: list[str] = Field(default_factory=list)


# --- jobs -----------------------------------------------------------------------------------


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


class FailureFilter(_Model):
    """The failure-list filters; also a job's frozen selection."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: ApiDatetime | None = Field(default=None, alias="from")
    to: ApiDatetime | None = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    sender: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    receiver: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    origin: FailureOrigin | None = None
    group: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @field_validator("to")
    @classmethod
    def _range_not_reversed(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("from_")
        if value is not None and start is not None and value < start:
            raise ValueError("must not be before 'from'")
        return value


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


class JobSelection(_Model):
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


class JobRequest(_Model):
    """POST /integrations/{integration}/jobs."""

    action: JobAction
    selection: JobSelection


class Job(_Model):
    id: str = Field(default_factory=new_id)
    integration: str
    action: JobAction
    selection: JobSelection
    state: JobState = JobState.QUEUED
    total: Counter | None = None
    processed: Counter = 0
    succeeded: Counter = 0
    failed: Counter = 0
    created_at: UtcDatetime = Field(default_factory=utc_now)
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    last_error: str | None = None
    cancel_requested: bool = False
    #: Items per second over the last page (the status card's rate).
    rate_per_s: Annotated[float, Field(ge=0)] | None = None
    #: Items passed over: already gone (removed elsewhere) when the job reached them.
    skipped: Counter = 0


def dump_json_dict(model: BaseModel) -> dict[str, Any]:
    """JSON-compatible dict with aliases (FailureFilter's `from`), as the API speaks."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=False)


def is_valid_queue_name(name: str) -> bool:
    return re.fullmatch(_QUEUE_NAME_PATTERN, name) is not None


# --- recovery -------------------------------------------------------------------------------


class RecoveryQueueStatus(_Model):
    """One queue of recovery material: the recovery flow itself, or a host poison queue."""

    name: str
    kind: Literal["recovery", "poison"]
    count: Counter
    #: Age of the oldest waiting message in seconds; null when empty or not knowable (Service Bus).
    oldest_age_s: Annotated[float, Field(ge=0)] | None = None


class SweepResult(_Model):
    """What one recovery sweep did (timer or `POST /recovery/replay`)."""

    started_at: UtcDatetime
    finished_at: UtcDatetime
    trigger: Literal["timer", "manual"]
    #: False when the health check failed and nothing was moved.
    healthy: bool
    #: Messages put back on their flow with recovery_count+1.
    reinserted: Counter = 0
    #: Messages past RECOVERY_MAX_REINSERTS, recorded as `catastrophic` failures.
    gave_up: Counter = 0
    #: Messages left in place because something failed mid-way (they stay for the next sweep).
    errors: Counter = 0
    #: Per source queue: how many left it.
    by_queue: dict[str, int] = Field(default_factory=dict)
    #: Active jobs whose page message had been lost and was re-enqueued.
    jobs_resumed: Counter = 0
    reason: str | None = None


class RecoveryStatus(_Model):
    backend: Literal["storage", "servicebus"]
    queues: list[RecoveryQueueStatus]
    last_sweep: SweepResult | None = None
