"""Reading failures: the filtered, paged list; counts for a selection; one failure with its content.

Time filters are RowKey ranges (the key is inverted time), the other filters are OData
comparisons passed as parameters, never formatted into the query. `q` (reason contains,
case-insensitive) has no server-side operator in Table storage, so it is applied while
streaming pages; a scan budget bounds the work of one request, and the cursor then resumes
where the scan stopped.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.errors import BadParameter, FailureNotFound
from shared.failures.models import Failure, FailureContent, FailureDetail, FailureFilter, FailurePage
from shared.ids import RECORD_ID_PATTERN, id_prefix_at
from shared.messages.wire import is_textual
from shared.storage.failure_rows import failure_from_row
from shared.storage.failure_table import FailureStore
from shared.storage.payload_blobs import PayloadStore
from shared.storage.tables import decode_cursor, encode_cursor
from shared.tokens import Cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The failure filters as query parameters (FailureFilter's fields, `from` by its alias).
FILTER_PARAMETERS = ("from", "to", "q", "sender", "receiver", "origin", "group")
#: Paging parameters of the failure list.
PAGE_PARAMETERS = ("limit", "cursor")
#: Rows one list request may examine when `q` filters on our side.
DEFAULT_SCAN_BUDGET = 5000
_SERVER_PAGE = 500
#: Service page when `q` filters on our side (most rows are read and dropped).
_Q_SCAN_PAGE = 1000
#: Concurrent point reads of the rows a `q` scan matched.
_READ_CONCURRENCY = 16


@dataclass(frozen=True)
class FailureQuery:
    """A filter turned into one parameterised Table query over an integration's partition."""

    text: str
    parameters: dict[str, Any]
    q: str | None


def build_query(
    integration: str,
    selection: FailureFilter,
    *,
    after_row_key: str | None = None,
    not_after: datetime | None = None,
) -> FailureQuery:
    """`not_after` caps the time range too (a job excludes failures newer than itself)."""
    clauses = ["PartitionKey eq @pk"]
    parameters: dict[str, Any] = {"pk": integration}
    if selection.from_ is not None:
        # failed_at >= from  ⇔  inverted key <= inverted(from); '.' sorts right after the '-' separator.
        clauses.append("RowKey lt @from_key")
        parameters["from_key"] = id_prefix_at(selection.from_) + "."
    upper = min((t for t in (selection.to, not_after) if t is not None), default=None)
    if upper is not None:
        clauses.append("RowKey ge @to_key")
        parameters["to_key"] = id_prefix_at(upper)
    if after_row_key is not None:
        clauses.append("RowKey gt @after")
        parameters["after"] = after_row_key
    for field, prop in (("sender", "Sender"), ("receiver", "Receiver"), ("group", "Group")):
        value = getattr(selection, field)
        if value is not None:
            clauses.append(f"{prop} eq @{field}")
            parameters[field] = value
    if selection.origin is not None:
        clauses.append("Origin eq @origin")
        parameters["origin"] = selection.origin.value
    return FailureQuery(
        text=" and ".join(clauses), parameters=parameters, q=selection.q.casefold() if selection.q else None
    )


def _matches(query: FailureQuery, row: dict[str, Any]) -> bool:
    return query.q is None or query.q in str(row.get("Reason", "")).casefold()


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def cursor_after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    token = decode_cursor(cursor)
    after = token.get("after") if token is not None else None
    # The key goes into the query: only the shape failure_row_key makes gets that far.
    if not isinstance(after, str) or re.fullmatch(RECORD_ID_PATTERN, after) is None:
        raise BadParameter("cursor", "is not a cursor this API returned")
    return after


async def list_failures(
    store: FailureStore,
    integration: str,
    selection: FailureFilter,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    scan_budget: int = DEFAULT_SCAN_BUDGET,
) -> FailurePage:
    """One page, newest first. `next_cursor` is null only when nothing more can match.

    With `q`, a page may hold fewer than `limit` items and still have a cursor: the scan
    budget ran out first, and the next request continues from there.
    """
    check_limit(limit)
    query = build_query(integration, selection, after_row_key=cursor_after(cursor))
    # With `q` most rows are read only to be dropped: scan just the keys and reasons (a fraction
    # of a full row to transfer and parse), then read the few matches in full.
    scanning = query.q is not None
    rows, next_cursor = await _matching_rows(
        store,
        query,
        limit=limit,
        scan_budget=scan_budget,
        page_size=_Q_SCAN_PAGE if scanning else max(min(_SERVER_PAGE, limit * 2), 50),
        select=["RowKey", "Reason"] if scanning else None,
    )
    if not scanning:
        return FailurePage([failure_from_row(row) for row in rows], next_cursor)
    return FailurePage(await _read_in_full(store, integration, [str(row["RowKey"]) for row in rows]), next_cursor)


async def _matching_rows(
    store: FailureStore, query: FailureQuery, *, limit: int, scan_budget: int, page_size: int, select: list[str] | None
) -> tuple[list[dict[str, Any]], Cursor | None]:
    matched: list[dict[str, Any]] = []
    scanned = 0
    continuation: dict[str, Any] | None = None
    while True:
        page = await store.table.query_page(
            query.text, query.parameters, page_size=page_size, continuation=continuation, select=select
        )
        for index, row in enumerate(page.items):
            scanned += 1
            if _matches(query, row):
                matched.append(row)
            rest_of_page = index + 1 < len(page.items)
            if len(matched) == limit:
                more = rest_of_page or page.continuation is not None
                return matched, _cursor(str(row["RowKey"])) if more else None
            if scanned >= scan_budget and (rest_of_page or page.continuation is not None):
                return matched, _cursor(str(row["RowKey"]))
        if page.continuation is None:
            return matched, None
        continuation = page.continuation


async def _read_in_full(store: FailureStore, integration: str, row_keys: list[str]) -> list[Failure]:
    """Point reads, a few at a time; a failure removed meanwhile is simply not listed."""
    gate = asyncio.Semaphore(_READ_CONCURRENCY)

    async def read(row_key: str) -> Failure | None:
        async with gate:
            found = await store.get(integration, row_key)
        return None if found is None else found[0]

    return [failure for failure in await asyncio.gather(*(read(key) for key in row_keys)) if failure is not None]


def _cursor(after_row_key: str) -> Cursor:
    return Cursor(encode_cursor({"after": after_row_key}) or "")


async def iter_selected(
    store: FailureStore,
    integration: str,
    selection: FailureFilter,
    *,
    after_row_key: str | None = None,
    not_after: datetime | None = None,
    select: list[str] | None = None,
    page_size: int = 1000,
) -> AsyncGenerator[dict[str, Any], None]:
    """Stream the matching rows (page by page, never the whole partition in memory).

    `page_size` is the service page; with `q` most rows are read and dropped here, so callers
    that want only a few matches still ask for large pages then.
    """
    query = build_query(integration, selection, after_row_key=after_row_key, not_after=not_after)
    needed = None if select is None else sorted({*select, "RowKey", "Reason"})
    size = page_size if query.q is None else max(page_size, _Q_SCAN_PAGE)
    async for row in store.table.query(query.text, query.parameters, page_size=size, select=needed):
        if _matches(query, row):
            yield row


async def count_failures(
    store: FailureStore, integration: str, selection: FailureFilter, *, not_after: datetime | None = None
) -> int:
    total = 0
    async for _ in iter_selected(store, integration, selection, not_after=not_after, select=["RowKey"]):
        total += 1
    return total


async def failure_detail(
    store: FailureStore, payloads: PayloadStore, integration: str, failure_id: str
) -> FailureDetail:
    found = await store.get(integration, failure_id)
    if found is None:
        raise FailureNotFound(
            f"failure {failure_id!r} of {integration!r} does not exist",
            details={"integration": integration, "failure_id": failure_id},
        )
    failure, _ = found
    content = None
    if failure.body_ref:
        blob = await payloads.get(failure.body_ref)
        if blob is not None:
            content = render_content(blob.data, failure.content_type or blob.content_type)
    return FailureDetail(failure=failure, content=content)


def render_content(data: bytes, content_type: str | None) -> FailureContent:
    """Text stays text (the portal pretty-prints JSON and XML); anything else is base64."""
    if is_textual(content_type) or content_type is None:
        try:
            text = data.decode("utf-8")
            return FailureContent(content_type=content_type, encoding="text", data=text, size_bytes=len(data))
        except UnicodeDecodeError:
            pass
    encoded = base64.b64encode(data).decode("ascii")
    return FailureContent(content_type=content_type, encoding="base64", data=encoded, size_bytes=len(data))


def parse_filter(params: dict[str, str]) -> FailureFilter:
    """Query-string filters → FailureFilter; a bad value, an empty one included, is a 400 naming the parameter."""
    values = {key: value for key, value in params.items() if key in FILTER_PARAMETERS}
    try:
        return FailureFilter.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        parameter = str(first["loc"][0]) if first["loc"] else "filter"
        raise BadParameter(parameter, first["msg"].removeprefix("Value error, ")) from exc
