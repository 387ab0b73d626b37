"""Building failure records: fingerprints for grouping like-failures, and the record itself (pure)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from shared.config.models import MAX_ATTEMPT_HISTORY, AttemptRecord, Envelope, Failure, FailureOrigin

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


# RowKeys sort ascending; inverting the time makes the newest failure come first.
_INVERT_BASE_US = 10**16


def failure_row_key(failed_at: datetime, unique: str | None = None) -> str:
    micros = int(failed_at.timestamp() * 1_000_000)
    return f"{_INVERT_BASE_US - micros:016d}-{unique or uuid.uuid4().hex[:12]}"


def row_key_bound(moment: datetime) -> str:
    """The RowKey prefix of failures at exactly `moment` (for time-range key queries).

    Keys are 16 digits from 1970 until 2286; a bound outside that span is clamped to the first
    or last key, so `from=1900-...` matches everything and `to=9999-...` does too, instead of
    producing a 17-digit or negative key that sorts in the wrong place.
    """
    inverted = _INVERT_BASE_US - int(moment.timestamp() * 1_000_000)
    return f"{min(max(inverted, 0), _INVERT_BASE_US - 1):016d}"


def failed_at_of(row_key: str) -> datetime:
    micros = _INVERT_BASE_US - int(row_key[:16])
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


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
        id=failure_row_key(now),
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
