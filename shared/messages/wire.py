"""Envelopes on the wire: parse what arrives on `inbound`, pack what we enqueue (claim check)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from pydantic import ValidationError

from shared.messages.models import Envelope
from shared.messages.ports import PayloadStore
from shared.validation import field_errors
from shared.values import INTEGRATION_ID_PATTERN

#: Above this serialized size the body moves to a blob (queue messages are capped at 64 KiB
#: and base64 grows them by a third).
MAX_INLINE_ENVELOPE_BYTES = 48 * 1024

_TEXTUAL = ("text/", "application/json", "application/xml", "application/xhtml+xml")


class InvalidEnvelope(ValueError):
    """What arrived cannot be processed as an envelope; `integration` is set when it was readable."""

    def __init__(self, reason: str, integration: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.integration = integration


def is_textual(content_type: str | None) -> bool:
    if not content_type:
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind.startswith(_TEXTUAL) or kind.endswith(("+json", "+xml"))


def body_fields(body: bytes, content_type: str | None) -> dict[str, str]:
    """Text stays readable in the queue and the portal; anything else travels as base64."""
    if is_textual(content_type):
        try:
            return {"body_text": body.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {"body_b64": base64.b64encode(body).decode("ascii")}


def parse_envelope(raw: bytes, *, fallback_id: str) -> Envelope:
    """A full or minimal envelope. A minimal one without `id` takes `fallback_id` (the queue
    message id), so host retries of the same message keep one idempotency key."""
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEnvelope(f"message is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEnvelope(f"message is JSON but not an object ({type(data).__name__})")
    # Only a well-formed id names an integration (which partitions storage); anything else is filed under _unknown.
    claimed = data.get("integration")
    integration = claimed if isinstance(claimed, str) and re.match(INTEGRATION_ID_PATTERN, claimed) else None
    data.setdefault("id", fallback_id)
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{f['field']}: {f['message']}" for f in field_errors(exc)[:5])
        raise InvalidEnvelope(f"message is not a valid envelope: {problems}", integration) from exc


async def pack(envelope: Envelope, payloads: PayloadStore) -> tuple[Envelope, str]:
    """The queue text for `envelope`; a body too big to travel inline goes to a blob first."""
    text = envelope.model_dump_json(exclude_none=True)
    if len(text.encode()) <= MAX_INLINE_ENVELOPE_BYTES:
        return envelope, text
    body = envelope.inline_body()
    assert body is not None, "an envelope with body_ref is always small"
    await payloads.put(envelope.id, body, content_type=envelope.content_type)
    slim = envelope.model_copy(update={"body_text": None, "body_b64": None, "body_ref": envelope.id})
    return slim, slim.model_dump_json(exclude_none=True)


async def load_body(envelope: Envelope, payloads: PayloadStore) -> bytes | None:
    """The body bytes; None when the claim-checked blob is missing."""
    inline = envelope.inline_body()
    if inline is not None:
        return inline
    assert envelope.body_ref is not None
    blob = await payloads.get(envelope.body_ref)
    return None if blob is None else blob.data
