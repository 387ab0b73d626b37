"""Ids that sort newest first: failures and jobs are listed newest first by their id alone.

An id is the inverted time in microseconds (16 digits) and a unique suffix (12 hex digits), so
sorting ids ascending lists the newest first, and the ids of one instant share a prefix that
time ranges can be bounded by.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

#: Failure and job ids, as `newest_first_id` builds them: inverted time, then 12 hex digits.
RECORD_ID_PATTERN = r"^[0-9]{16}-[0-9a-f]{12}$"
RecordId = Annotated[str, Field(pattern=RECORD_ID_PATTERN)]

# Ids sort ascending; inverting the time makes the newest come first.
_INVERT_BASE_US = 10**16


def newest_first_id(at: datetime, unique: str | None = None) -> str:
    micros = int(at.timestamp() * 1_000_000)
    return f"{_INVERT_BASE_US - micros:016d}-{unique or uuid.uuid4().hex[:12]}"


def id_prefix_at(moment: datetime) -> str:
    """The id prefix of records made at exactly `moment` (for bounding a time range by ids).

    Prefixes are 16 digits from 1970 until 2286; a bound outside that span is clamped to the first
    or last prefix, so `from=1900-...` matches everything and `to=9999-...` does too, instead of
    producing a 17-digit or negative prefix that sorts in the wrong place.
    """
    inverted = _INVERT_BASE_US - int(moment.timestamp() * 1_000_000)
    return f"{min(max(inverted, 0), _INVERT_BASE_US - 1):016d}"


def time_of_id(record_id: str) -> datetime:
    micros = _INVERT_BASE_US - int(record_id[:16])
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
