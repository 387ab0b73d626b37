"""host.json as typed options, with the defaults and limits of the real Functions host.

devhost reads the app's own host.json (the same file `func start` and Azure read) and
only the parts it implements: `version`, `extensions.http.routePrefix` and
`extensions.queues`. Keys are case-insensitive, as in .NET configuration.
"""

from __future__ import annotations

import json
import logging
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devhost.errors import StartupError

logger = logging.getLogger(__name__)

HOST_FILE = "host.json"

#: Storage queues return at most 32 messages per request, so the host caps batchSize there.
MAX_BATCH_SIZE = 32
#: The host's default batchSize.
DEFAULT_BATCH_SIZE = 16
#: The host's default ceiling for the idle polling back-off (one minute).
DEFAULT_MAX_POLLING_INTERVAL_S = 60.0
#: The host refuses a maxPollingInterval below 100 ms.
MIN_MAX_POLLING_INTERVAL_S = 0.1
#: The host's default number of attempts before a message goes to `<queue>-poison`.
DEFAULT_MAX_DEQUEUE_COUNT = 5
#: The host's default route prefix for HTTP triggers.
DEFAULT_ROUTE_PREFIX = "api"

# .NET TimeSpan "c" format: [-][d.]hh:mm[:ss[.fffffff]], or a bare number of days.
_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{1,2})(?::(?P<seconds>\d{1,2}(?:\.\d+)?))?$"
)
_TIMESPAN_DAYS = re.compile(r"^\d+$")


def parse_timespan_s(text: str) -> float:
    """Seconds in a .NET TimeSpan string such as "00:00:02", "1.00:00:00" or "00:00:00.500"."""
    value = text.strip()
    if _TIMESPAN_DAYS.match(value):
        return int(value) * 86400.0
    match = _TIMESPAN.match(value)
    if not match:
        raise ValueError(f"{text!r} is not a TimeSpan (expected hh:mm:ss, e.g. 00:00:02)")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    seconds = float(match["seconds"] or 0)
    if hours > 23 or minutes > 59 or seconds >= 60:
        raise ValueError(f"{text!r} is not a TimeSpan (hours 0-23, minutes and seconds 0-59)")
    return int(match["days"] or 0) * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds


def _timespan_field(value: Any) -> Any:
    if isinstance(value, str):
        return parse_timespan_s(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # .NET would read a bare number as days; that is never what a host.json author means.
        raise ValueError(f'{value!r} must be a TimeSpan string such as "00:00:02"')
    return value


class MessageEncoding(StrEnum):
    BASE64 = "base64"
    NONE = "none"


class QueuesOptions(BaseModel):
    """`extensions.queues`; fields carry their unit, the aliases are host.json's (lower-cased) keys."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    batch_size: int = Field(DEFAULT_BATCH_SIZE, alias="batchsize", ge=1, le=MAX_BATCH_SIZE)
    #: Filled from batch_size when absent (see `_default_new_batch_threshold`).
    new_batch_threshold: int = Field(alias="newbatchthreshold", ge=0)
    max_polling_interval_s: float = Field(
        DEFAULT_MAX_POLLING_INTERVAL_S, alias="maxpollinginterval", ge=MIN_MAX_POLLING_INTERVAL_S
    )
    visibility_timeout_s: float = Field(0.0, alias="visibilitytimeout", ge=0)
    max_dequeue_count: int = Field(DEFAULT_MAX_DEQUEUE_COUNT, alias="maxdequeuecount", ge=1)
    message_encoding: MessageEncoding = Field(MessageEncoding.BASE64, alias="messageencoding")

    @model_validator(mode="before")
    @classmethod
    def _default_new_batch_threshold(cls, data: Any) -> Any:
        # The host's default is N * batchSize / 2 with N the vCPU count on dedicated plans and
        # 1 on Consumption. devhost takes N = 1: a laptop is one small instance, and the
        # per-function concurrency (batchSize + newBatchThreshold) then matches Consumption.
        if isinstance(data, dict) and data.get("newbatchthreshold") is None:
            batch_size = data.get("batchsize", DEFAULT_BATCH_SIZE)
            if isinstance(batch_size, int):
                return {**data, "newbatchthreshold": batch_size // 2}
        return data

    @field_validator("max_polling_interval_s", "visibility_timeout_s", mode="before")
    @classmethod
    def _parse_timespan(cls, value: Any) -> Any:
        return _timespan_field(value)

    @field_validator("message_encoding", mode="before")
    @classmethod
    def _lower_case_encoding(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def max_concurrency(self) -> int:
        """Invocations one queue function may run at once, as documented for the host."""
        return self.batch_size + self.new_batch_threshold


class HttpOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    route_prefix: str = Field(DEFAULT_ROUTE_PREFIX, alias="routeprefix")

    @field_validator("route_prefix")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")


class HostConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str | None = None
    http: HttpOptions = Field(default_factory=HttpOptions)
    queues: QueuesOptions = Field(default_factory=lambda: QueuesOptions.model_validate({}))

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> HostConfig:
        """Build from a parsed host.json; raises pydantic's ValidationError on bad values."""
        keys = _lower_keys(document)
        extensions = keys.get("extensions") or {}
        return cls.model_validate(
            {
                "version": keys.get("version"),
                "http": extensions.get("http") or {},
                "queues": extensions.get("queues") or {},
            }
        )


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key).lower(): _lower_keys(item) for key, item in value.items()}
    return value


def load_host_config(app_dir: Path) -> HostConfig:
    """Read `<app_dir>/host.json`; the real host needs the file, so a missing one is an error."""
    path = app_dir / HOST_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise StartupError(f"{path} not found: a Functions app needs a host.json") from None
    except (OSError, ValueError) as error:
        raise StartupError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise StartupError(f"{path} must hold a JSON object")
    try:
        config = HostConfig.from_document(document)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise StartupError(f"{path} has invalid values: {problems}") from None
    if config.version != "2.0":
        logger.warning('%s: "version" is %r; the Functions host requires "2.0"', path, config.version)
    return config
