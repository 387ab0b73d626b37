"""Structured event logging: one line per decision, `event key=value ...`, never bodies or secrets.

The fields also travel as `extra={"rebound": {...}}`, so a JSON or OpenTelemetry handler gets
them as attributes rather than having to parse the message.
"""

from __future__ import annotations

import logging
from typing import Any


def log_event(logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    if not logger.isEnabledFor(level):
        return
    present = {key: value for key, value in fields.items() if value is not None}
    rendered = " ".join(f"{key}={value}" for key, value in present.items())
    logger.log(level, "%s %s", event, rendered, extra={"rebound": {"event": event, **present}})
