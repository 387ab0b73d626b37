"""Building failure records: fingerprints for grouping like-failures, and the record itself (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime

from shared.failures.models import Failure, FailureOrigin
from shared.ids import newest_first_id
from shared.messages.models import AttemptRecord, Envelope
from shared.values import MAX_ATTEMPT_HISTORY

#: Reasons are kept to this many characters (a Table property holds 32K; the list stays readable).
MAX_REASON_CHARS = 2000

_VOLATILE = [
    # UUIDs and long hex ids differ per message; the group is about the kind of failure.
    (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}:\d{2}(\.\d+)?(z|[+-]\d{2}:?\d{2})?", re.IGNORECASE), "<time>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise_reason(reason: str) -> str:
    text = reason.strip().lower()
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text[:300]


def fingerprint(origin: FailureOrigin, status_code: int | None, reason: str) -> str:
    """Like-failures share a fingerprint: same origin, same status, same reason up to ids and numbers."""
    key = f"{origin.value}|{status_code or ''}|{normalise_reason(reason)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def shorten(reason: str) -> str:
    single_line = " ".join(reason.split())
    return single_line if len(single_line) <= MAX_REASON_CHARS else single_line[: MAX_REASON_CHARS - 1] + "…"


def new_failure(
    envelope: Envelope,
    *,
    origin: FailureOrigin,
    reason: str,
    now: datetime,
    body_ref: str | None,
    status_code: int | None = None,
    attempts: int = 0,
    history: Sequence[AttemptRecord] = (),
    integration: str | None = None,
) -> Failure:
    reason = shorten(reason)
    return Failure(
        id=newest_first_id(now),
        integration=integration or envelope.integration,
        message_id=envelope.id,
        failed_at=now,
        reason=reason,
        group=fingerprint(origin, status_code, reason),
        origin=origin,
        status_code=status_code,
        sender=envelope.sender,
        receiver=envelope.receiver,
        attempts=attempts,
        delay_actions=envelope.delay_actions,
        resend_count=envelope.resend_count,
        recovery_count=envelope.recovery_count,
        correlation_id=envelope.correlation_id,
        body_ref=body_ref,
        content_type=envelope.content_type,
        headers=envelope.headers,
        received_at=envelope.received_at,
        # Keep the newest attempts: the last ones say why it finally failed.
        history=list(history)[-MAX_ATTEMPT_HISTORY:],
    )
