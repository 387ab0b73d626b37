"""Value types every capability shares: instants, counts, integration names and the frozen model base.

JSON is snake_case throughout (DESIGN.md section 3). Validation errors carry the field's
location, which `shared.validation` turns into `{"field": "retry.linear_count", ...}`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

#: A failure keeps this many attempt records; older ones are summarised by the count.
MAX_ATTEMPT_HISTORY = 20
#: Reserved integration for messages whose integration cannot be read (cannot be created by users).
UNKNOWN_INTEGRATION = "_unknown"

INTEGRATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ENVELOPE_INTEGRATION_PATTERN = r"^(_unknown|[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
#: What the API takes as an instant (`from`, `to`): an RFC 3339 date-time whose offset may be left out
#: (then it is UTC). The first and last day Python can represent are refused, so every accepted value
#: converts to UTC (a `+14:00` on 0001-01-01 would fall before year 1); leap seconds are not representable.
API_DATETIME_PATTERN = (
    r"^(?!0000-|0001-01-01|9999-12-31)[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _aware(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+01:00 exists only before year 1 in UTC; a ValueError makes it a field error.
        raise ValueError("is outside the range of representable instants") from None


def _api_datetime_text(value: Any) -> Any:
    """A caller's instant must be ISO 8601 text: no unix numbers ("0.5"), no date-only, no space separator."""
    if isinstance(value, datetime):
        return value  # built in code, not sent by a caller
    if not isinstance(value, str) or re.fullmatch(API_DATETIME_PATTERN, value) is None:
        raise ValueError(
            "must be an ISO 8601 date-time such as 2024-05-01T12:00:00Z (offset optional, UTC when absent), "
            "between 0001-01-02 and 9999-12-30"
        )
    # Parsed here (not by pydantic) so strict validation of request bodies takes it too; fromisoformat
    # checks the calendar (no 02-30) and keeps microseconds of a longer fraction (.NET sends 7 digits).
    return datetime.fromisoformat(value.upper())


UtcDatetime = Annotated[datetime, AfterValidator(_aware)]
#: An instant given by a caller (query parameter or request body).
ApiDatetime = Annotated[
    datetime,
    BeforeValidator(_api_datetime_text),
    AfterValidator(_aware),
    Field(json_schema_extra={"pattern": API_DATETIME_PATTERN}),
]
IntegrationId = Annotated[str, Field(pattern=INTEGRATION_ID_PATTERN)]
Count = Annotated[int, Field(ge=0)]


class FrozenModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
