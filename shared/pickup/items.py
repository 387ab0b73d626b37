"""A picked item as a message: its envelope, the envelope's id, the content type guessed from its name (pure)."""

from __future__ import annotations

import mimetypes
import re
import uuid
from datetime import datetime
from urllib.parse import quote

from shared.config.fields import HEADER_NAME_PATTERN
from shared.config.models import IntegrationConfig
from shared.messages.models import Envelope
from shared.messages.wire import body_fields
from shared.pickup.models import Source, describe
from shared.pickup.ports import ItemContent, SourceItem

#: The header that carries the file or blob name to the receiver.
NAME_HEADER = "x-pickup-name"
#: The header that says which kind of source the message came from.
SOURCE_HEADER = "x-pickup-source"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Python's built-in table only (no /etc/mime.types), so a name gets the same type on every machine.
_TYPES = mimetypes.MimeTypes(filenames=())
#: Envelope ids of picked items live in their own namespace: the same item always gets the same id.
_NAMESPACE = uuid.UUID("6f1c1a0e-8d1e-4c57-9a55-2b1f9a3b7c10")
#: Headers that arrive with a message travel with it, within what ingest lets through.
_MAX_FORWARDED = 16


def envelope_id(integration: str, source: Source, key: str) -> str:
    """Deterministic: a re-pick of the same item (same version) reaches the receiver with the same Idempotency-Key."""
    return "pickup-" + uuid.uuid5(_NAMESPACE, f"{integration}\n{source.kind}\n{describe(source)}\n{key}").hex


def guess_content_type(name: str | None, data: bytes) -> str:
    """From the file name's extension; for a message without a name, from how its text starts."""
    if name:
        guessed, _ = _TYPES.guess_type(name, strict=True)
        return guessed or DEFAULT_CONTENT_TYPE
    try:
        text = data.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return DEFAULT_CONTENT_TYPE
    if text.startswith(("{", "[")):
        return "application/json"
    if text.startswith("<"):
        return "application/xml"
    return "text/plain; charset=utf-8"


def header_value(name: str) -> str:
    """A name as a header value: control characters (an SFTP file name may hold a line break) percent-encoded."""
    if all(" " <= ch != "\x7f" for ch in name):
        return name
    return quote(name, safe="".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%"))


def envelope_for(
    config: IntegrationConfig, source: Source, item: SourceItem, content: ItemContent, *, now: datetime
) -> Envelope:
    """The item as a message for `inbound`: sender and receiver from the config, the name in a header."""
    message_id = envelope_id(config.id, source, content.key)
    content_type = content.content_type or guess_content_type(item.name, content.data)
    # Only names a receiver's HTTP request can carry: any other would fail every delivery.
    usable = [(k.lower(), v) for k, v in content.headers.items() if re.fullmatch(HEADER_NAME_PATTERN, k)]
    headers = {k if k.startswith("x-") else f"x-{k}": header_value(v) for k, v in usable[:_MAX_FORWARDED]}
    headers[SOURCE_HEADER] = source.kind
    if item.name is not None:
        headers[NAME_HEADER] = header_value(item.name)
    return Envelope(
        id=message_id,
        integration=config.id,
        sender=config.sender or None,
        receiver=config.receiver or None,
        correlation_id=message_id,
        content_type=content_type,
        headers=headers,
        received_at=now,
        **body_fields(content.data, content_type),
    )
