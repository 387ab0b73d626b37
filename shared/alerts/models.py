"""Alert shapes: a rule (what to watch, how much is too much, where to tell), its state, and an alert as it fired.

Rules live in the `alertrules` table, alerts in `alerts` (DESIGN.md section 11). A rule's `threshold`
means, per kind:

| kind | fires when | window |
|---|---|---|
| `failure_count` | failures recorded in the last `window_minutes` ≥ threshold | yes |
| `catastrophic` | `catastrophic` failures (recovery gave up) in the window ≥ threshold | yes |
| `circuit_open` | circuit breakers open or half-open ≥ threshold | no |
| `job_failed` | jobs that ended in the window failed, or with failed items, ≥ threshold | yes |
| `recovery_backlog` | messages waiting in the recovery flow and the poison queues ≥ threshold | no |
| `pickup_failing` | pickup sources whose last run failed ≥ threshold | no |

`integration` narrows a rule to one integration (null: all of them); `recovery_backlog` is app-wide.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AnyHttpUrl, BaseModel, Field, computed_field, model_validator

from shared.config.fields import SettingName, TaggedModel
from shared.values import INTEGRATION_ID_PATTERN, Count, FrozenModel, IntegrationId, UtcDatetime

RULE_ID_PATTERN = INTEGRATION_ID_PATTERN
#: A practical address check (the mail server has the last word): something@domain.tld, no spaces or angle brackets.
EMAIL_PATTERN = r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$"
#: Samples an alert carries (never bodies).
MAX_SAMPLES = 5


class AlertKind(StrEnum):
    FAILURE_COUNT = "failure_count"
    CATASTROPHIC = "catastrophic"
    CIRCUIT_OPEN = "circuit_open"
    JOB_FAILED = "job_failed"
    RECOVERY_BACKLOG = "recovery_backlog"
    PICKUP_FAILING = "pickup_failing"

    @property
    def windowed(self) -> bool:
        return self in (AlertKind.FAILURE_COUNT, AlertKind.CATASTROPHIC, AlertKind.JOB_FAILED)


class WebhookChannel(TaggedModel):
    kind: Literal["webhook"] = "webhook"
    url: Annotated[AnyHttpUrl, Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})]
    #: An app setting listed in ENDPOINT_SECRET_SETTINGS: its value signs the body (HMAC-SHA256).
    secret_setting: SettingName | None = None


class TeamsChannel(TaggedModel):
    """A Teams Workflows webhook ("When a Teams webhook request is received"): gets an Adaptive Card."""

    kind: Literal["teams"] = "teams"
    url: Annotated[AnyHttpUrl, Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})]


class EmailChannel(TaggedModel):
    kind: Literal["email"] = "email"
    to: Annotated[
        list[Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320)]], Field(min_length=1, max_length=20)
    ]


Channel = Annotated[WebhookChannel | TeamsChannel | EmailChannel, Field(discriminator="kind")]


class AlertRule(FrozenModel):
    id: Annotated[str, Field(pattern=RULE_ID_PATTERN)]
    kind: AlertKind
    integration: IntegrationId | None = None
    threshold: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    #: At most one alert per rule per cooldown, however long the condition holds.
    cooldown_minutes: Annotated[int, Field(ge=1, le=10_080)] = 60
    channel: Channel
    enabled: bool = True

    @model_validator(mode="after")
    def _backlog_is_app_wide(self) -> Self:
        if self.kind is AlertKind.RECOVERY_BACKLOG and self.integration is not None:
            raise ValueError("a recovery_backlog rule watches the whole app: leave 'integration' null")
        return self


class RuleState(BaseModel):
    """What the evaluator remembers per rule (beside the rule, every change conditional on its version)."""

    firing: bool = False
    last_fired_at: UtcDatetime | None = None
    last_alert_id: str | None = None
    last_resolved_at: UtcDatetime | None = None
    last_count: Count = 0
    last_evaluated_at: UtcDatetime | None = None


class RuleView(BaseModel):
    """GET /api/alert-rules: a rule (channel URLs with credential parts masked) and its state."""

    rule: AlertRule
    state: RuleState


class AlertSample(BaseModel):
    """One example of what the alert counts: a failure, a job, a source (never content)."""

    integration: str
    at: UtcDatetime | None = None
    summary: str
    failure_id: str | None = None
    message_id: str | None = None
    origin: str | None = None
    status_code: int | None = None


class Notice(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"
    TEST = "test"


class NoticeStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Alert(BaseModel):
    """An alert as it fired (GET /api/alerts), and whether its notices went out."""

    id: str
    rule_id: str
    kind: AlertKind
    integration: str | None
    channel: Literal["webhook", "teams", "email"]
    fired_at: UtcDatetime
    count: Count
    threshold: int
    window_minutes: int | None
    samples: list[AlertSample] = Field(default_factory=list)
    resolved_at: UtcDatetime | None = None
    fired_notice: NoticeStatus = NoticeStatus.PENDING
    resolved_notice: NoticeStatus | None = None
    send_attempts: Count = 0
    last_error: str | None = None
    #: A "send test alert": no condition behind it.
    test: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state(self) -> Literal["firing", "resolved"]:
        return "resolved" if self.resolved_at is not None else "firing"


class Measurement(BaseModel):
    """What a rule's condition came to at one evaluation."""

    count: int
    samples: list[AlertSample] = Field(default_factory=list)


def holds(rule: AlertRule, measurement: Measurement) -> bool:
    return measurement.count >= rule.threshold


def in_cooldown(rule: AlertRule, state: RuleState, now: datetime) -> bool:
    return state.last_fired_at is not None and (now - state.last_fired_at).total_seconds() < rule.cooldown_minutes * 60
