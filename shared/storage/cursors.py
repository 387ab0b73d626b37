"""Opaque tokens on Azure: a listing's cursor is base64url JSON around a RowKey; a version is an ETag."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from shared.errors import BadParameter
from shared.ids import RECORD_ID_PATTERN
from shared.tokens import Cursor, Version

#: Our cursors hold a RowKey, well under this; anything longer is not ours.
MAX_CURSOR_CHARS = 2048


def encode_cursor(token: Mapping[str, Any] | None) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(dict(token), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, parameter: str = "cursor") -> dict[str, Any] | None:
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadParameter(parameter, "is not a cursor this API returned")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        token = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadParameter(parameter, "is not a cursor this API returned") from exc
    if not isinstance(token, dict) or not all(isinstance(k, str) for k in token):
        raise BadParameter(parameter, "is not a cursor this API returned")
    return token


def cursor_after(row_key: str) -> Cursor:
    """The cursor of a page that ends at `row_key`: the next page starts after it."""
    return Cursor(encode_cursor({"after": row_key}) or "")


def row_key_after(cursor: Cursor | None) -> str | None:
    """The RowKey a cursor resumes after; `BadParameter("cursor")` for anything `cursor_after` did not make."""
    if cursor is None:
        return None
    token = decode_cursor(cursor)
    after = token.get("after") if token is not None else None
    # The key goes into the query: only the shape the ids have gets that far.
    if not isinstance(after, str) or re.fullmatch(RECORD_ID_PATTERN, after) is None:
        raise BadParameter("cursor", "is not a cursor this API returned")
    return after


def position_key(position: Cursor | None) -> str | None:
    """The RowKey a selection position resumes after (positions are raw RowKeys, kept in job
    checkpoints); `BadParameter("cursor")` for anything else."""
    if position is not None and re.fullmatch(RECORD_ID_PATTERN, position) is None:
        raise BadParameter("cursor", "is not a position this store returned")
    return position


def version_of(row: Mapping[str, Any]) -> Version:
    """The version of a row as read (its ETag)."""
    return Version(str(row["_etag"]))
