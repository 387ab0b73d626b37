"""Edit and retry one failure: send its message again with a corrected body (and headers), then let it go.

The edited copy is checked as ingest checks a message (size cap, header rules), enqueued on `inbound`
(or parked when `inbound` is unreachable, as a retry job does), and only then is the original failure
removed with its content, as a retry removes it: a crash in between leaves both, never neither.

The copy gets a new message id, `<original>.edit.<8 hex>`: a receiver that deduplicates on
Idempotency-Key must not drop a corrected body as a repeat of the refused one; the correlation id
stays, so the message is still traced end to end. The audit trail keeps sizes and SHA-256 of both
bodies and a unified diff of text bodies, cut to `MAX_DIFF_LINES` lines of `MAX_DIFF_CHARS` in all.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

from shared.audit.models import Actor, AuditAction
from shared.audit.service import MAX_DETAILS_CHARS, AuditTrail
from shared.config.fields import HEADER_NAME_PATTERN, HEADER_VALUE_PATTERN
from shared.errors import (
    FailureNotFound,
    HeadersTooLarge,
    NothingToResend,
    PayloadTooLarge,
    RequestValidationError,
    StorageUnavailable,
)
from shared.failures.models import Failure, FailureOrigin
from shared.failures.ports import FailureLog
from shared.failures.queries import render_content
from shared.messages.models import Envelope
from shared.messages.ports import STORED_WITHOUT_TYPE, MessageQueue, PayloadStore
from shared.messages.wire import body_fields, pack
from shared.recovery.ports import Parking
from shared.values import FrozenModel

#: The diff kept in the audit entry: at most this many lines, and no more than the rest of the entry leaves
#: of the trail's MAX_DETAILS_CHARS (as JSON: quotes and newlines count twice), so the entry is kept whole.
MAX_DIFF_LINES = 200
MAX_DIFF_CHARS = 6000
#: Headers an edited message may carry (the same caps as ingest's forwarded headers).
MAX_HEADERS = 32
MAX_HEADER_BYTES = 8 * 1024
_RESERVED_PREFIXES = ("x-functions-", "x-ms-", "x-arr-", "x-forwarded-")


class EditRetryRequest(FrozenModel):
    """POST .../failures/{failure_id}/edit-retry: the corrected message."""

    body_text: str | None = None
    body_b64: str | None = None
    content_type: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    #: Replaces the failure's headers when given (`{}` sends none); X- headers only, as ingest forwards.
    headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_body(self) -> Self:
        given = [name for name in ("body_text", "body_b64") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'body_text' or 'body_b64'")
        return self


@dataclass(frozen=True)
class EditedRetry:
    failure_id: str
    #: The id the edited copy travels under.
    message_id: str
    parked: bool


class EditRetry:
    def __init__(
        self,
        *,
        failures: FailureLog,
        payloads: PayloadStore,
        inbound: MessageQueue,
        audit: AuditTrail,
        max_message_bytes: int,
        parker: Parking | None = None,
    ) -> None:
        self._failures = failures
        self._payloads = payloads
        self._inbound = inbound
        self._audit = audit
        self._max_bytes = max_message_bytes
        self._parker = parker

    async def edit_retry(
        self, integration: str, failure_id: str, request: EditRetryRequest, *, actor: Actor, now: datetime
    ) -> EditedRetry:
        body = self._body(request)
        headers = None if request.headers is None else checked_headers(request.headers)
        found = await self._failures.get(integration, failure_id)
        if found is None:
            raise FailureNotFound(
                f"failure {failure_id!r} of {integration!r} does not exist",
                details={"integration": integration, "failure_id": failure_id},
            )
        failure = await self._failures.restore(found.failure)
        if failure.origin is FailureOrigin.PICKUP:
            raise NothingToResend("a pickup failure holds no message to edit: it records a source that kept failing")
        before, before_type = await self._original_body(failure)
        content_type = request.content_type or failure.content_type
        envelope = Envelope(
            id=edited_id(failure.message_id),
            integration=failure.integration,
            sender=failure.sender,
            receiver=failure.receiver,
            correlation_id=failure.correlation_id or failure.message_id,
            content_type=content_type,
            headers=failure.headers if headers is None else headers,
            received_at=failure.received_at or failure.failed_at,
            resend_count=failure.resend_count + 1,
            **body_fields(body, content_type),
        )
        # The audit entry first: nothing is sent that the trail does not know.
        details = edit_details(
            failure, envelope, before=before, before_type=before_type, after=body, after_type=content_type
        )
        await self._audit.record(
            actor, AuditAction.FAILURE_EDIT_RETRY, integration=integration, target=failure_id, details=details
        )
        parked = await self._enqueue(envelope)
        # As a retry does: once the copy is on its way, the failure and its content go.
        if await self._failures.remove(found.failure, version=found.version):
            await self._payloads.delete_many(self._failures.content_refs(found.failure))
        return EditedRetry(failure_id=failure_id, message_id=envelope.id, parked=parked)

    def _body(self, request: EditRetryRequest) -> bytes:
        if request.body_b64 is not None:
            try:
                body = base64.b64decode(request.body_b64, validate=True)
            except (binascii.Error, ValueError):
                raise RequestValidationError(
                    "invalid body: body_b64 is not valid base64",
                    [{"field": "body_b64", "message": "is not valid base64"}],
                ) from None
        else:
            body = (request.body_text or "").encode("utf-8")
        if len(body) > self._max_bytes:
            field = "body_b64" if request.body_b64 is not None else "body_text"
            raise PayloadTooLarge(
                f"the edited message is {len(body)} bytes; the limit is {self._max_bytes}",
                details={"field": field, "limit_bytes": self._max_bytes, "size_bytes": len(body)},
            )
        return body

    async def _original_body(self, failure: Failure) -> tuple[bytes | None, str | None]:
        if not failure.body_ref:
            return None, failure.content_type
        payload = await self._payloads.get(failure.body_ref)
        if payload is None:
            return None, failure.content_type
        stored = None if payload.content_type == STORED_WITHOUT_TYPE else payload.content_type
        return payload.data, failure.content_type or stored

    async def _enqueue(self, envelope: Envelope) -> bool:
        _, text = await pack(envelope, self._payloads)
        try:
            await self._inbound.send(text)
        except StorageUnavailable:
            if self._parker is None:
                raise
            await self._parker.park_envelope(envelope, "edit-retry could not enqueue to inbound")
            return True
        return False


def edited_id(message_id: str) -> str:
    """`<original>.edit.<8 hex>`, within the envelope id's 128 characters."""
    return f"{message_id[:110]}.edit.{secrets.token_hex(4)}"


def checked_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers an edited message carries, by ingest's rules: X- names, not ours or the platform's, valid
    values, at most MAX_HEADERS of MAX_HEADER_BYTES together. 422 naming `headers.<name>`, 431 over the caps."""
    problems = []
    for name, value in headers.items():
        lowered = name.lower()
        if not re.fullmatch(HEADER_NAME_PATTERN, name) or not lowered.startswith("x-"):
            problems.append({"field": f"headers.{name[:100]}", "message": "must be an X- header name (RFC 9110 token)"})
        elif lowered.startswith(_RESERVED_PREFIXES) or lowered in ("x-sender", "x-correlation-id", "x-message-id"):
            problems.append(
                {"field": f"headers.{name[:100]}", "message": "is Rebound's or the platform's, not a message header"}
            )
        elif not isinstance(value, str) or not re.fullmatch(HEADER_VALUE_PATTERN, value):
            problems.append({"field": f"headers.{name[:100]}", "message": "must be text without control characters"})
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise RequestValidationError(f"invalid body: {summary}", problems)
    size = sum(len(name.encode()) + len(value.encode()) for name, value in headers.items())
    if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        raise HeadersTooLarge(
            f"the headers are {len(headers)} of {size} bytes; a message carries at most {MAX_HEADERS} headers "
            f"of {MAX_HEADER_BYTES} bytes together",
            details={"field": "headers", "count": len(headers), "size_bytes": size},
        )
    return {name.lower(): value for name, value in headers.items()}


def _digest(data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {"size_bytes": None, "sha256": None}
    return {"size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def text_diff(
    before: bytes | None,
    before_type: str | None,
    after: bytes,
    after_type: str | None,
    *,
    max_json_chars: int = MAX_DIFF_CHARS,
) -> str | None:
    """A unified diff of two text bodies, cut to MAX_DIFF_LINES lines and `max_json_chars` as a JSON string;
    None when either is not text (binary bodies are told apart by their hashes alone)."""
    if before is None:
        return None
    old, new = render_content(before, before_type), render_content(after, after_type)
    if old.encoding != "text" or new.encoding != "text":
        return None
    lines = difflib.unified_diff(old.data.splitlines(), new.data.splitlines(), "before", "after", lineterm="", n=1)
    cut = "… (diff cut)"
    budget = max_json_chars - len(json.dumps(cut))
    kept: list[str] = []
    size = 2  # the JSON string's quotes
    for index, line in enumerate(lines):
        cost = len(json.dumps(line)) - 2 + 2  # escaped, plus the newline as `\n`
        if index >= MAX_DIFF_LINES or size + cost > budget:
            kept.append(cut)
            break
        kept.append(line)
        size += cost
    return "\n".join(kept)


def edit_details(
    failure: Failure,
    envelope: Envelope,
    *,
    before: bytes | None,
    before_type: str | None,
    after: bytes,
    after_type: str | None,
) -> dict[str, Any]:
    changed_headers = sorted(
        name
        for name in {*failure.headers, *envelope.headers}
        if failure.headers.get(name) != envelope.headers.get(name)
    )
    details: dict[str, Any] = {
        "message_id": failure.message_id,
        "new_message_id": envelope.id,
        "before": {**_digest(before), "content_type": before_type},
        "after": {**_digest(after), "content_type": after_type},
        # Names only: header values may be credentials.
        "headers_changed": changed_headers,
        "diff": None,
    }
    # What the rest leaves of the trail's bound (with room to spare): past it the trail keeps keys only.
    room = MAX_DETAILS_CHARS - len(json.dumps(details, separators=(",", ":"))) - 64
    details["diff"] = text_diff(before, before_type, after, after_type, max_json_chars=min(MAX_DIFF_CHARS, room))
    return details
