"""A failure as a `failures` table row: credentials masked, every property within Table limits.

Azure refuses a property over 64 KiB and an entity over 1 MiB (Azurite accepts both, DESIGN.md
section 10), and a refused row means a failure that is never recorded: the message would go
round the host's retries into poison and back, forever. So the row never depends on what a
sender put in its headers or fields. Each free-text property is cut to `MAX_ROW_TEXT_CHARS`
(structurally for the JSON ones: whole headers and attempts kept while they fit), credential
headers are masked, and the whole values of everything changed go to an overflow blob beside
the content (`overflow_blob_name`), which a resend reads back. The row lists those fields in
`Overflow`, so readers know what they see is partial.
"""

from __future__ import annotations

import json
from typing import Any

from shared.failures.models import Failure, FailureOrigin
from shared.messages.models import AttemptRecord
from shared.sensitive import mask_headers
from shared.storage.tables import Entity

#: Characters one free-text property may hold in the row (UTF-16: 32 KiB of the 64 KiB property
#: limit); with ~20 properties the entity stays far below 1 MiB.
MAX_ROW_TEXT_CHARS = 16_000
#: What a shortened value ends with, so nobody mistakes it for the whole.
ELLIPSIS = "…"

_TEXT_FIELDS = ("reason", "sender", "receiver", "correlation_id", "content_type")


def overflow_blob_name(integration: str, failure_id: str) -> str:
    """Beside the content in `payloads`; the `/` keeps it apart from message-id names, which have none."""
    return f"overflow/{integration}/{failure_id}.json"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def fit_headers(headers: dict[str, str], limit: int = MAX_ROW_TEXT_CHARS) -> dict[str, str]:
    """Headers whose JSON fits `limit`: each value at most a share of it, then whole headers while they fit."""
    share = max(64, limit // max(1, len(headers)) - 16)
    fitted: dict[str, str] = {}
    for name, value in headers.items():
        candidate = {**fitted, _cut(name, 256): _cut(value, share)}
        if len(_compact(candidate)) > limit:
            break
        fitted = candidate
    return fitted


def fit_history(history: list[AttemptRecord], limit: int = MAX_ROW_TEXT_CHARS) -> list[AttemptRecord]:
    """The newest attempts whose JSON fits `limit` (the last ones say why it finally failed)."""
    trimmed = [a.model_copy(update={"target": _cut(a.target, 512), "outcome": _cut(a.outcome, 512)}) for a in history]
    while trimmed and len(_compact([a.model_dump(mode="json") for a in trimmed])) > limit:
        trimmed = trimmed[1:]
    return trimmed


def fitted_for_row(failure: Failure) -> tuple[Failure, dict[str, Any]]:
    """The failure as the row may hold it, and the whole (JSON) values of every field that had to change."""
    texts = {name: _cut(value, MAX_ROW_TEXT_CHARS) for name in _TEXT_FIELDS if (value := getattr(failure, name))}
    shown = failure.model_copy(
        update={"headers": fit_headers(mask_headers(failure.headers)), "history": fit_history(failure.history), **texts}
    )
    whole = failure.model_dump(mode="json")
    names = ("headers", "history", *_TEXT_FIELDS)
    changed = {name: whole[name] for name in names if getattr(shown, name) != getattr(failure, name)}
    return shown.model_copy(update={"overflow": sorted(changed)}), changed


def failure_to_row(failure: Failure) -> Entity:
    """The row of an already fitted failure (see `fitted_for_row`)."""
    row: Entity = {
        "PartitionKey": failure.integration,
        "RowKey": failure.id,
        "MessageId": failure.message_id,
        "FailedAt": failure.failed_at,
        "Reason": failure.reason,
        "Group": failure.group,
        "Origin": failure.origin.value,
        "Attempts": failure.attempts,
        "DelayActions": failure.delay_actions,
        "ResendCount": failure.resend_count,
        "RecoveryCount": failure.recovery_count,
        "Headers": _compact(failure.headers),
        "History": _compact([a.model_dump(mode="json") for a in failure.history]),
    }
    optional = {
        "StatusCode": failure.status_code,
        "Sender": failure.sender,
        "Receiver": failure.receiver,
        "CorrelationId": failure.correlation_id,
        "BodyRef": failure.body_ref,
        "ContentType": failure.content_type,
        "ReceivedAt": failure.received_at,
        "Overflow": ",".join(failure.overflow) or None,
    }
    # Table storage has no nulls: an absent property is the null.
    row.update({key: value for key, value in optional.items() if value is not None})
    return row


def failure_from_row(row: Entity) -> Failure:
    return Failure(
        id=row["RowKey"],
        integration=row["PartitionKey"],
        message_id=row["MessageId"],
        failed_at=row["FailedAt"],
        reason=row["Reason"],
        group=row["Group"],
        origin=FailureOrigin(row["Origin"]),
        status_code=row.get("StatusCode"),
        sender=row.get("Sender"),
        receiver=row.get("Receiver"),
        attempts=row.get("Attempts", 0),
        delay_actions=row.get("DelayActions", 0),
        resend_count=row.get("ResendCount", 0),
        recovery_count=row.get("RecoveryCount", 0),
        correlation_id=row.get("CorrelationId"),
        body_ref=row.get("BodyRef"),
        content_type=row.get("ContentType"),
        headers=json.loads(row.get("Headers") or "{}"),
        received_at=row.get("ReceivedAt"),
        history=[AttemptRecord.model_validate(a) for a in json.loads(row.get("History") or "[]")],
        overflow=[name for name in (row.get("Overflow") or "").split(",") if name],
    )
