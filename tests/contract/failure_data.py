"""Failures to store in the contract tests, and reading them back whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.failures.models import Failure, FailureFilter, FailureOrigin, FailurePage
from shared.failures.ports import FailureStore
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from shared.tokens import Cursor

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
#: Later than any failure here: selecting up to it selects everything.
END = datetime(2100, 1, 1, tzinfo=UTC)


async def record(
    store: FailureStore,
    when: datetime,
    *,
    integration: str = "orders",
    sender: str | None = "webshop",
    receiver: str | None = "erp",
    origin: FailureOrigin = FailureOrigin.ENDPOINT,
    status: int | None = 500,
    reason: str = "HTTP 500 from erp",
    body_ref: str | None = None,
    headers: dict[str, str] | None = None,
) -> Failure:
    envelope = Envelope(integration=integration, sender=sender, receiver=receiver, headers=headers or {})
    failure = new_failure(
        envelope, origin=origin, reason=reason, now=when, body_ref=body_ref, status_code=status, attempts=4
    )
    return await store.add(failure)


async def all_pages(
    store: FailureStore, selection: FailureFilter, *, limit: int, scan_budget: int = 5000
) -> list[FailurePage]:
    pages = []
    cursor: Cursor | None = None
    for _ in range(100):
        page = await store.page("orders", selection, limit=limit, cursor=cursor, scan_budget=scan_budget)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


async def selected_ids(store: FailureStore, selection: FailureFilter, **options: Any) -> list[str]:
    return [item.failure.id async for item in store.select("orders", selection, **options)]
