"""Structured event logging: one line per decision, `event key=value ...`, never bodies or secrets.

The fields also travel as `extra={"rebound": {...}}`, so a JSON or OpenTelemetry handler gets
them as attributes rather than having to parse the message. Values come from outside (a
correlation id is whatever a sender put in a header), so a value that could break the line's
shape (spaces, quotes, `=`, control characters, line breaks) is written as a JSON string: one
event is always exactly one line, and nobody can forge a second one.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

#: Values made only of these print as they are; anything else is quoted and escaped.
_PLAIN = re.compile(r"^[A-Za-z0-9._:/@+\-]*$")


def render_value(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if text and _PLAIN.match(text):
        return text
    return json.dumps(text, ensure_ascii=True)


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any
) -> None:
    if not logger.isEnabledFor(level):
        return
    present = {key: value for key, value in fields.items() if value is not None}
    rendered = " ".join(f"{key}={render_value(value)}" for key, value in present.items())
    logger.log(level, "%s %s", event, rendered, exc_info=exc_info, extra={"rebound": {"event": event, **present}})
