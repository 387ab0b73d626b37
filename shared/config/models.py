"""Integration configs: where a message goes (endpoints), what counts as which error, how it is retried."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, ValidationInfo, field_validator

from shared.config.fields import (
    HEADER_NAME_PATTERN,
    QUEUE_NAME_PATTERN,
    HeaderName,
    HeaderValue,
    SettingName,
    TaggedModel,
    is_valid_queue_name,
)
from shared.control.models import CircuitBreakerPolicy, RateLimitPolicy
from shared.pickup.models import Source
from shared.values import FrozenModel, IntegrationId

#: Spec: linear engine retry runs at least 3 and at most 10 times.
MIN_LINEAR_COUNT = 3
MAX_LINEAR_COUNT = 10
DEFAULT_LINEAR_COUNT = 3
#: Azure Storage queues hide a message for at most 7 days.
MAX_VISIBILITY_DELAY_S = 7 * 24 * 3600


# --- endpoints ------------------------------------------------------------------------------


class _EndpointModel(TaggedModel):
    pass


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
    queue: Annotated[str, Field(json_schema_extra={"pattern": QUEUE_NAME_PATTERN})]

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


class ErrorRule(FrozenModel):
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


class BackoffPolicy(FrozenModel):
    """The spec's backoff variables, with its defaults."""

    enabled: bool = True
    max_number_of_retries: Annotated[int, Field(ge=0, le=100)] = 5
    failure_count_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = 3
    max_errors_per_interval: Annotated[int, Field(ge=1)] = 1000
    requeue_min_delay_seconds: Annotated[int, Field(ge=0, le=MAX_VISIBILITY_DELAY_S)] = 10
    # Checked against the minimum when left at its default too: a minimum above 60 with the default maximum
    # would be stored and then never read back.
    requeue_max_delay_seconds: Annotated[int, Field(ge=0, le=MAX_VISIBILITY_DELAY_S, validate_default=True)] = 60
    max_delay_actions: Annotated[int, Field(ge=0, le=100)] = 5

    @field_validator("requeue_max_delay_seconds")
    @classmethod
    def _max_delay_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("requeue_min_delay_seconds")
        if low is not None and value < low:
            raise ValueError(f"must be >= requeue_min_delay_seconds ({low})")
        return value


class RetryPolicy(FrozenModel):
    mode: RetryMode = RetryMode.LINEAR
    linear_count: Annotated[int, Field(ge=MIN_LINEAR_COUNT, le=MAX_LINEAR_COUNT)] = DEFAULT_LINEAR_COUNT
    backoff: BackoffPolicy = Field(default_factory=BackoffPolicy)

    def effective(self) -> RetryPolicy:
        """Backoff with Enabled=false falls back to the default policy (linear 3), as the spec says."""
        if self.mode is RetryMode.BACKOFF and not self.backoff.enabled:
            return RetryPolicy()
        return self


# --- integration config ---------------------------------------------------------------------


class IntegrationConfig(FrozenModel):
    id: IntegrationId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sender: Annotated[str, Field(max_length=200)] = ""
    receiver: Annotated[str, Field(max_length=200)] = ""
    endpoint: Endpoint
    fallback_endpoint: Endpoint | None = None
    error_rules: Annotated[list[ErrorRule], Field(max_length=50)] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    persist_failures: bool = True
    #: Where Rebound fetches messages from, when the upstream system cannot call the API (issue 16).
    source: Source | None = None
    #: Pause by itself when the receiver keeps failing transiently (issue 18).
    circuit_breaker: CircuitBreakerPolicy | None = None
    #: Delivery attempts per second across all instances (issue 18).
    rate_limit: RateLimitPolicy | None = None

    @field_validator("error_rules")
    @classmethod
    def _redirect_needs_fallback(cls, rules: list[ErrorRule], info: ValidationInfo) -> list[ErrorRule]:
        # fallback_endpoint is declared before error_rules, so it has been validated already.
        if info.data.get("fallback_endpoint") is None and any(r.action is ErrorAction.REDIRECT for r in rules):
            raise ValueError("a 'redirect' rule needs a fallback_endpoint")
        return rules
