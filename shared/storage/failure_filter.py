"""A failure filter as Table queries over one integration's partition of `failures`.

Time filters are RowKey ranges (the key is the failure id: inverted time, newest first), the
other filters are OData comparisons passed as parameters, never formatted into the query. `q`
(reason contains, case-insensitive) and the sender/receiver prefixes (case-insensitive, issue 19)
have no server-side operator in Table storage, so they are applied while streaming pages; a scan
budget bounds the work of one page request, and the cursor then resumes where the scan stopped.
(A lowercased copy of sender and receiver would let a prefix be a key range, but rows written before
it would hold none and drop out of every such filter; scanning treats every row alike.)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.failures.models import FailureFilter, prefix_matches
from shared.ids import id_prefix_at
from shared.storage.cursors import cursor_after
from shared.storage.tables import Entity, Table
from shared.tokens import Cursor

#: Service page of a plain (no `q`) failure page request, at most.
SERVER_PAGE = 500
#: Service page when `q` filters on our side (most rows are read and dropped).
Q_SCAN_PAGE = 1000
#: Service page when streaming a whole selection (a count, a job's selection).
STREAM_PAGE = 1000


@dataclass(frozen=True)
class FailureQuery:
    """A filter turned into one parameterised Table query over an integration's partition."""

    text: str
    parameters: dict[str, Any]
    q: str | None
    sender: str | None = None
    receiver: str | None = None

    @property
    def scans(self) -> bool:
        """Whether rows are dropped on our side (the scan budget then bounds a page)."""
        return self.q is not None or self.sender is not None or self.receiver is not None

    def matches(self, row: Entity) -> bool:
        return (
            (self.q is None or self.q in str(row.get("Reason", "")).casefold())
            and prefix_matches(row.get("Sender"), self.sender)
            and prefix_matches(row.get("Receiver"), self.receiver)
        )


#: What a scanning query reads of each row to decide whether it matches.
SCANNED_PROPERTIES = ["RowKey", "Reason", "Sender", "Receiver"]


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
    for field, prop in (("group", "Group"), ("message_id", "MessageId"), ("correlation_id", "CorrelationId")):
        value = getattr(selection, field)
        if value is not None:
            clauses.append(f"{prop} eq @{field}")
            parameters[field] = value
    if selection.ref is not None:
        # Spaces inside the parentheses: the SDK's substitution breaks on `@ref)` (DESIGN.md section 10).
        clauses.append("( MessageId eq @ref or CorrelationId eq @ref )")
        parameters["ref"] = selection.ref
    if selection.origin is not None:
        clauses.append("Origin eq @origin")
        parameters["origin"] = selection.origin.value
    return FailureQuery(
        text=" and ".join(clauses),
        parameters=parameters,
        q=selection.q.casefold() if selection.q else None,
        sender=selection.sender,
        receiver=selection.receiver,
    )


async def scan_page(
    table: Table, query: FailureQuery, *, limit: int, scan_budget: int, page_size: int, select: list[str] | None
) -> tuple[list[Entity], Cursor | None, bool]:
    """Up to `limit` matching rows, the cursor after the last row examined when more may match, and whether
    the scan stopped early: once `scan_budget` rows were examined (`q` and prefixes read rows they drop)."""
    matched: list[Entity] = []
    scanned = 0
    continuation: dict[str, Any] | None = None
    while True:
        page = await table.query_page(
            query.text, query.parameters, page_size=page_size, continuation=continuation, select=select
        )
        for index, row in enumerate(page.items):
            scanned += 1
            if query.matches(row):
                matched.append(row)
            rest_of_page = index + 1 < len(page.items)
            if len(matched) == limit:
                more = rest_of_page or page.continuation is not None
                return matched, cursor_after(str(row["RowKey"])) if more else None, False
            if scanned >= scan_budget and (rest_of_page or page.continuation is not None):
                return matched, cursor_after(str(row["RowKey"])), True
        if page.continuation is None:
            return matched, None, False
        continuation = page.continuation


async def stream_matches(
    table: Table, query: FailureQuery, *, page_size: int = STREAM_PAGE, select: list[str] | None = None
) -> AsyncGenerator[Entity, None]:
    """Stream the matching rows (page by page, never the whole partition in memory).

    `page_size` is the service page; with `q` most rows are read and dropped here, so callers
    that want only a few matches still ask for large pages then.
    """
    needed = None if select is None else sorted({*select, *SCANNED_PROPERTIES})
    size = page_size if not query.scans else max(page_size, Q_SCAN_PAGE)
    async for row in table.query(query.text, query.parameters, page_size=size, select=needed):
        if query.matches(row):
            yield row
