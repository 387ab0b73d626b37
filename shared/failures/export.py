"""Exporting failures as CSV or NDJSON, page by page.

The Functions Python HTTP binding (`azure.functions.HttpResponse`) takes a whole body, and devhost
serves what the binding gives it, so the export cannot stream to the client: it reads the selection
page by page (never more than one page of failures in hand besides the text built so far) and stops at
`EXPORT_MAX_ROWS` rows or `EXPORT_MAX_BYTES` of text (with `body_contains`, once a content scan used its
budget), then says so (`truncated`, and the cursor the next request continues from). Streaming proper
needs the HTTP streams extension (azurefunctions-extensions-http-fastapi), which devhost does not run.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from enum import StrEnum

from shared.failures.models import Failure, FailureFilter, FailurePage
from shared.failures.queries import ContentSearch, FailureQueries, render_content
from shared.messages.ports import PayloadStore

#: Rows one export request returns at most.
EXPORT_MAX_ROWS = 5000
#: Text one export request builds at most (content included); the page that crosses it is the last.
EXPORT_MAX_BYTES = 16 * 1024 * 1024
#: Failures read per page.
_PAGE = 200

CSV_COLUMNS = (
    "id", "failed_at", "integration", "message_id", "correlation_id", "sender", "receiver", "origin",
    "status_code", "group", "reason", "attempts", "resend_count", "content_type",
)  # fmt: skip
#: A spreadsheet runs a cell that starts with one of these as a formula: such cells get a leading `'`.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return "text/csv" if self is ExportFormat.CSV else "application/x-ndjson"


@dataclass(frozen=True)
class Export:
    text: str
    rows: int
    #: More rows match: continue with this cursor.
    next_cursor: str | None
    #: Stopped at EXPORT_MAX_ROWS or EXPORT_MAX_BYTES (or a content scan's budget) with rows left.
    truncated: bool


class FailureExport:
    def __init__(self, queries: FailureQueries, payloads: PayloadStore) -> None:
        self._queries = queries
        self._payloads = payloads

    async def export(
        self,
        integration: str,
        selection: FailureFilter,
        *,
        format: ExportFormat,
        include_content: bool = False,
        search: ContentSearch | None = None,
        cursor: str | None = None,
        max_rows: int = EXPORT_MAX_ROWS,
        max_bytes: int = EXPORT_MAX_BYTES,
    ) -> Export:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n") if format is ExportFormat.CSV else None
        if writer is not None:
            writer.writerow(CSV_COLUMNS)
        rows = 0
        token = cursor
        while True:
            limit = min(_PAGE, max_rows - rows)
            page = await self._page(integration, selection, search, limit, token)
            for failure in page.items:
                if writer is not None:
                    writer.writerow(csv_row(failure))
                else:
                    out.write(await self._ndjson_line(failure, include_content))
            rows += len(page.items)
            token = page.next_cursor
            if token is None:
                return Export(out.getvalue(), rows, None, truncated=False)
            if page.stopped_early or rows >= max_rows or out.tell() >= max_bytes:
                return Export(out.getvalue(), rows, token, truncated=True)

    async def _page(
        self, integration: str, selection: FailureFilter, search: ContentSearch | None, limit: int, cursor: str | None
    ) -> FailurePage:
        if search is not None:
            return await self._queries.search_content(integration, selection, search, limit=limit, cursor=cursor)
        return await self._queries.page(integration, selection, limit=limit, cursor=cursor)

    async def _ndjson_line(self, failure: Failure, include_content: bool) -> str:
        data = failure.model_dump(mode="json")
        if include_content:
            content = None
            if failure.body_ref:
                payload = await self._payloads.get(failure.body_ref)
                if payload is not None:
                    content = render_content(payload.data, failure.content_type).model_dump(mode="json")
            data["content"] = content
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(failure: Failure) -> list[str]:
    data = failure.model_dump(mode="json")
    return [_cell(data.get(column)) for column in CSV_COLUMNS]
