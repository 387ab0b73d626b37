"""Reading failures: the overview, the filtered and paged list, counts, groups, one failure with its content."""

from __future__ import annotations

import base64

from pydantic import ValidationError

from shared.errors import BadParameter, FailureNotFound
from shared.failures.models import (
    FailureContent,
    FailureDetail,
    FailureFilter,
    FailureGroup,
    FailurePage,
    FailureSummary,
)
from shared.failures.ports import DEFAULT_SCAN_BUDGET, FailureStore
from shared.messages.ports import STORED_WITHOUT_TYPE, PayloadStore
from shared.messages.wire import is_textual
from shared.tokens import Cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The failure filters as query parameters (FailureFilter's fields, `from` by its alias).
FILTER_PARAMETERS = ("from", "to", "q", "sender", "receiver", "origin", "group")
#: Paging parameters of the failure list.
PAGE_PARAMETERS = ("limit", "cursor")


class FailureQueries:
    def __init__(self, failures: FailureStore, payloads: PayloadStore) -> None:
        self._failures = failures
        self._payloads = payloads

    async def overview(self) -> list[FailureSummary]:
        """Every integration with failures, most recent failure first."""
        return await self._failures.overview()

    async def page(
        self,
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
        # The caller's cursor is whatever a page returned before; the store refuses one it did not issue.
        token = None if cursor is None else Cursor(cursor)
        return await self._failures.page(integration, selection, limit=limit, cursor=token, scan_budget=scan_budget)

    async def count(self, integration: str, selection: FailureFilter) -> int:
        if selection == FailureFilter():
            # "All" is answered from the counters, without scanning.
            return (await self._failures.summary(integration)).count
        return await self._failures.count(integration, selection)

    async def groups(self, integration: str) -> list[FailureGroup]:
        return await self._failures.groups(integration)

    async def detail(self, integration: str, failure_id: str) -> FailureDetail:
        found = await self._failures.get(integration, failure_id)
        if found is None:
            raise FailureNotFound(
                f"failure {failure_id!r} of {integration!r} does not exist",
                details={"integration": integration, "failure_id": failure_id},
            )
        failure = found.failure
        content = None
        if failure.body_ref:
            payload = await self._payloads.get(failure.body_ref)
            if payload is not None:
                content = render_content(payload.data, failure.content_type or _said(payload.content_type))
        return FailureDetail(failure=failure, content=content)


def _said(stored: str | None) -> str | None:
    """The content type a payload was stored with, or None when it is only the store's default: a
    message that came without one is shown as text when it decodes, not as base64 of its text."""
    return None if stored == STORED_WITHOUT_TYPE else stored


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


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
