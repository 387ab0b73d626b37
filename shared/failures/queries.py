"""Reading failures: the overview, the filtered and paged list, counts, groups, one failure with its content."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ValidationError

from shared.errors import BadParameter, FailureNotFound
from shared.failures.models import (
    Failure,
    FailureContent,
    FailureDetail,
    FailureFilter,
    FailureGroup,
    FailurePage,
    FailureSummary,
)
from shared.failures.mutes import GroupMutes
from shared.failures.ports import DEFAULT_SCAN_BUDGET, FailureStore
from shared.messages.ports import STORED_WITHOUT_TYPE, PayloadStore
from shared.messages.wire import is_textual
from shared.tokens import Cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The failure filters as query parameters (FailureFilter's fields, `from` by its alias).
FILTER_PARAMETERS = (
    "from", "to", "q", "sender", "receiver", "origin", "group", "message_id", "correlation_id", "ref",
)  # fmt: skip
#: Paging parameters of the failure list.
PAGE_PARAMETERS = ("limit", "cursor")
#: The content search of the failure list and export (not a job's selection: it reads every body it checks).
CONTENT_PARAMETER = "body_contains"
#: Failures whose content one `body_contains` request reads at most (a blob read each; ~500 take about
#: a second on Azurite); the page then says `stopped_early` and its cursor goes on from there.
BODY_SCAN_MAX_ROWS = 500
#: Bodies larger than this are not searched (read in full to search; a text body is rarely this big).
BODY_SCAN_MAX_BYTES = 1024 * 1024
#: Failures a content scan examines per store page, and blobs it reads at once.
_BODY_SCAN_CHUNK = 25
#: Failures the facets read (newest first) for their known senders and receivers.
FACET_SCAN_ROWS = 1000
#: Values per facet at most.
MAX_FACET_VALUES = 50


class Facets(BaseModel):
    """Known senders and receivers of an integration: its config's, and those of its newest failures."""

    senders: list[str]
    receivers: list[str]
    scanned: int
    complete: bool


@dataclass(frozen=True)
class ContentSearch:
    """`body_contains`: a case-insensitive text search of the failures' bodies (text content only)."""

    needle: str

    def matches(self, data: bytes, content_type: str | None) -> bool:
        if len(data) > BODY_SCAN_MAX_BYTES:
            return False
        content = render_content(data, content_type)
        return content.encoding == "text" and self.needle.casefold() in content.data.casefold()


def parse_content_search(params: dict[str, str]) -> ContentSearch | None:
    raw = params.get(CONTENT_PARAMETER)
    if raw is None:
        return None
    if not 1 <= len(raw) <= 200:
        raise BadParameter(CONTENT_PARAMETER, "must be 1-200 characters")
    return ContentSearch(raw)


class FailureQueries:
    def __init__(self, failures: FailureStore, payloads: PayloadStore, mutes: GroupMutes | None = None) -> None:
        self._failures = failures
        self._payloads = payloads
        self._mutes = mutes

    async def overview(self, *, now: datetime | None = None) -> list[FailureSummary]:
        """Every integration with failures, most recent failure first; muted groups are not counted."""
        summaries = await self._failures.overview()
        if self._mutes is None or now is None:
            return summaries
        muted = await self._mutes.everywhere(now)
        if not muted:
            return summaries
        counted = []
        for summary in summaries:
            if summary.integration in muted:
                groups = await self._failures.groups(summary.integration)
                summary = summary_of_groups(
                    summary.integration, [g for g in groups if g.group not in muted[summary.integration]]
                )
            counted.append(summary)
        return counted

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

    async def search_content(
        self,
        integration: str,
        selection: FailureFilter,
        search: ContentSearch,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        max_rows: int = BODY_SCAN_MAX_ROWS,
        scan_budget: int = DEFAULT_SCAN_BUDGET,
    ) -> FailurePage:
        """A page of failures matching `selection` whose text body contains `search.needle`.

        Reads the body of every failure it examines, so at most `max_rows` per request: it then stops
        early with a cursor (`stopped_early`), and the next request goes on from there. Binary bodies
        and bodies over BODY_SCAN_MAX_BYTES never match.
        """
        check_limit(limit)
        matched: list[Failure] = []
        scanned = 0
        token = None if cursor is None else Cursor(cursor)
        while True:
            # Never more than the matches still wanted per store page, so no match is dropped past a cursor.
            chunk = min(_BODY_SCAN_CHUNK, limit - len(matched))
            page = await self._failures.page(integration, selection, limit=chunk, cursor=token, scan_budget=scan_budget)
            found = await asyncio.gather(*(self._content_matches(f, search) for f in page.items))
            matched += [failure for failure, hit in zip(page.items, found, strict=True) if hit]
            scanned += len(page.items)
            token = page.next_cursor
            if token is None or len(matched) >= limit:
                return FailurePage(matched, token)
            # The store's own scan (`q`, prefixes) stopping early bounds this request too.
            if scanned >= max_rows or page.stopped_early:
                return FailurePage(matched, token, stopped_early=True)

    async def _content_matches(self, failure: Failure, search: ContentSearch) -> bool:
        if not failure.body_ref:
            return False
        payload = await self._payloads.get(failure.body_ref)
        if payload is None:
            return False
        return search.matches(payload.data, failure.content_type or _said(payload.content_type))

    async def facets(self, integration: str, *, sender: str = "", receiver: str = "") -> Facets:
        """Senders and receivers to suggest: the config's, then those of the newest FACET_SCAN_ROWS failures."""
        senders: dict[str, None] = {sender: None} if sender else {}
        receivers: dict[str, None] = {receiver: None} if receiver else {}
        scanned = 0
        token: Cursor | None = None
        while scanned < FACET_SCAN_ROWS:
            page = await self._failures.page(
                integration, FailureFilter(), limit=min(MAX_LIMIT, FACET_SCAN_ROWS - scanned), cursor=token
            )
            for failure in page.items:
                if failure.sender:
                    senders.setdefault(failure.sender)
                if failure.receiver:
                    receivers.setdefault(failure.receiver)
            scanned += len(page.items)
            token = page.next_cursor
            if token is None:
                break
        return Facets(
            senders=sorted(senders, key=str.casefold)[:MAX_FACET_VALUES],
            receivers=sorted(receivers, key=str.casefold)[:MAX_FACET_VALUES],
            scanned=scanned,
            complete=token is None,
        )

    async def count(self, integration: str, selection: FailureFilter) -> int:
        if selection == FailureFilter():
            # "All" is answered from the counters, without scanning.
            return (await self._failures.summary(integration)).count
        return await self._failures.count(integration, selection)

    async def groups(
        self, integration: str, *, muted: bool | None = None, now: datetime | None = None
    ) -> list[FailureGroup]:
        """Like-failures, largest first, each with its mute when muted; `muted` keeps only those (or the others)."""
        groups = await self._failures.groups(integration)
        mutes = {} if self._mutes is None or now is None else await self._mutes.active(integration, now)
        shown = [group.model_copy(update={"muted": mutes.get(group.group)}) for group in groups]
        if muted is None:
            return shown
        return [group for group in shown if (group.muted is not None) is muted]

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


def summary_of_groups(integration: str, groups: list[FailureGroup]) -> FailureSummary:
    """An integration's summary from (some of) its groups."""
    by_origin: dict[str, int] = {}
    for group in groups:
        by_origin[group.origin.value] = by_origin.get(group.origin.value, 0) + group.count
    firsts = [g.first_failed_at for g in groups if g.first_failed_at is not None]
    lasts = [g.last_failed_at for g in groups if g.last_failed_at is not None]
    return FailureSummary(
        integration=integration,
        count=sum(group.count for group in groups),
        first_failed_at=min(firsts, default=None),
        last_failed_at=max(lasts, default=None),
        by_origin=dict(sorted(by_origin.items())),
    )


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
