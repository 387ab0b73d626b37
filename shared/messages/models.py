"""Messages: the envelope a message travels in (the `inbound` queue message) and its attempt history."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from shared.ids import RECORD_ID_PATTERN
from shared.values import (
    ENVELOPE_INTEGRATION_PATTERN,
    MAX_ATTEMPT_HISTORY,
    Count,
    FrozenModel,
    UtcDatetime,
    new_id,
    utc_now,
)


class AttemptRecord(FrozenModel):
    at: UtcDatetime
    engine_attempt: Count = 0
    endpoint_attempt: Count = 0
    target: str = ""
    status_code: int | None = None
    outcome: str
    duration_ms: Annotated[float, Field(ge=0)] = 0.0


def _valid_base64(value: str | None) -> str | None:
    if value is not None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("is not valid base64") from exc
    return value


class Envelope(FrozenModel):
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
    engine_attempts: Count = 0
    delay_actions: Count = 0
    resend_count: Count = 0
    recovery_count: Count = 0
    #: Extension: endpoint attempts so far across engine runs, and the newest of them, so a
    #: failure after several requeues still shows its whole story.
    attempts: Count = 0
    history: Annotated[list[AttemptRecord], Field(max_length=MAX_ATTEMPT_HISTORY)] = Field(default_factory=list)
    #: Extension: the retry job that resent it, so the job can count how its messages settle (issue 19).
    job_id: Annotated[str, Field(pattern=RECORD_ID_PATTERN)] | None = None
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
