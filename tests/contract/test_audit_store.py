"""AuditStore contract: the same tests on the twin (`MemoryAuditStore`) and on Azurite (`TableAuditStore`).

Newest first globally and per integration, across month partitions; filters by actor (name or id),
action and time; paging with cursors the store issued (and no other); an entry appended twice kept
once; the retention purge removing only what is older than the cutoff.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.audit.models import Actor, AuditAction, AuditEntry, AuditFilter
from shared.audit.ports import AuditStore
from shared.errors import BadParameter
from shared.ids import newest_first_id

#: Months before the clock of this machine: a listing starts from the current month (and a day ahead).
BASE = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
ADA = Actor(name="Ada Lovelace", id="oid-ada", auth="aad")
BOB = Actor(name="bob", id="bob", auth="dev")


def entry(
    at: datetime,
    action: AuditAction = AuditAction.CONFIG_PUT,
    *,
    actor: Actor = ADA,
    integration: str | None = "orders",
    target: str | None = None,
    details: dict[str, object] | None = None,
) -> AuditEntry:
    return AuditEntry(
        id=newest_first_id(at), at=at, actor=actor, action=action, integration=integration, target=target,
        details=details or {},
    )  # fmt: skip


async def everything(store: AuditStore, selection: AuditFilter | None = None, *, limit: int = 500) -> list[AuditEntry]:
    items: list[AuditEntry] = []
    cursor = None
    for _ in range(100):
        page = await store.page(selection or AuditFilter(), limit=limit, cursor=cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor
    raise AssertionError("the listing never ended")


async def test_an_appended_entry_reads_back_whole_in_the_global_and_its_integrations_trail(audit_store):
    # Given
    written = entry(
        BASE, AuditAction.JOB_START, target="job-1", details={"action": "retry", "total": 3, "selection": {"all": True}}
    )

    # When
    await audit_store.append(written)

    # Then
    assert await everything(audit_store) == [written]
    assert await everything(audit_store, AuditFilter(integration="orders")) == [written]
    assert await everything(audit_store, AuditFilter(integration="billing")) == []


async def test_entries_list_newest_first_across_months_and_integrations(audit_store):
    # Given entries over three months, in two integrations and one about no integration, appended out of order
    moments = [BASE - timedelta(days=70), BASE, BASE - timedelta(days=35), BASE + timedelta(seconds=1)]
    written = [entry(at, integration="orders" if i % 2 else "billing") for i, at in enumerate(moments)]
    replay = entry(BASE - timedelta(days=1), AuditAction.RECOVERY_REPLAY, integration=None, details={"reinserted": 2})
    for item in [*written, replay]:
        await audit_store.append(item)

    # When / Then: globally, newest first
    expected = sorted([*written, replay], key=lambda item: item.at, reverse=True)
    assert [item.id for item in await everything(audit_store)] == [item.id for item in expected]
    # And per integration, only its own, newest first
    orders = [item.id for item in expected if item.integration == "orders"]
    assert [item.id for item in await everything(audit_store, AuditFilter(integration="orders"))] == orders


async def test_a_small_limit_pages_through_every_entry_once_across_months(audit_store):
    # Given 7 entries, some a month apart
    written = [entry(BASE - timedelta(days=12 * i)) for i in range(7)]
    for item in written:
        await audit_store.append(item)

    # When paged two at a time
    listed = await everything(audit_store, limit=2)

    # Then each came once, newest first
    assert [item.id for item in listed] == [item.id for item in written]


async def test_the_filters_pick_by_actor_name_or_id_action_and_time(audit_store):
    # Given
    early = entry(BASE - timedelta(hours=2), AuditAction.JOB_START, actor=BOB)
    middle = entry(BASE - timedelta(hours=1), AuditAction.JOB_CANCEL, actor=ADA)
    late = entry(BASE, AuditAction.JOB_START, actor=ADA)
    for item in (early, middle, late):
        await audit_store.append(item)

    async def ids(**filters: object) -> list[str]:
        return [item.id for item in await everything(audit_store, AuditFilter.model_validate(filters))]

    # Then
    assert await ids(actor="Ada Lovelace") == await ids(actor="oid-ada") == [late.id, middle.id]
    assert await ids(actor="bob") == [early.id]
    assert await ids(actor="ada") == []
    assert await ids(action="job.start") == [late.id, early.id]
    assert await ids(**{"from": BASE - timedelta(hours=1)}) == [late.id, middle.id]
    assert await ids(to=BASE - timedelta(hours=1)) == [middle.id, early.id]
    window = {"from": BASE - timedelta(hours=1, minutes=30), "to": BASE - timedelta(minutes=30)}
    assert await ids(**window, integration="orders", action="job.cancel", actor="oid-ada") == [middle.id]


async def test_a_cursor_the_store_did_not_issue_is_refused(audit_store):
    # Given
    for i in range(3):
        await audit_store.append(entry(BASE - timedelta(minutes=i)))

    # When / Then
    for cursor in ("nonsense", "eyJhZnRlciI6IDF9", "memory-audit:1"):
        with pytest.raises(BadParameter) as refused:
            await audit_store.page(AuditFilter(), limit=1, cursor=cursor)
        assert refused.value.parameter == "cursor"


async def test_an_entry_appended_twice_is_kept_once(audit_store):
    # Given
    written = entry(BASE, AuditAction.JOB_FINISH, target="job-1", details={"state": "completed"})

    # When the same entry is appended again (a retried write)
    await audit_store.append(written)
    await audit_store.append(written)

    # Then
    assert await everything(audit_store) == [written]
    assert await everything(audit_store, AuditFilter(integration="orders")) == [written]


async def test_the_purge_removes_only_entries_older_than_the_cutoff_in_every_trail(audit_store):
    # Given entries of three months, the cutoff in the middle one
    old = [entry(BASE - timedelta(days=60)), entry(BASE - timedelta(days=31), integration=None)]
    kept = [entry(BASE - timedelta(days=29)), entry(BASE)]
    for item in [*old, *kept]:
        await audit_store.append(item)

    # When
    removed = await audit_store.purge_before(BASE - timedelta(days=30), limit=100)

    # Then
    assert removed == 2
    assert [item.id for item in await everything(audit_store)] == [item.id for item in reversed(kept)]
    assert [item.id for item in await everything(audit_store, AuditFilter(integration="orders"))] == [
        item.id for item in reversed(kept)
    ]


async def test_a_trail_over_years_lists_whole_even_when_a_page_stops_early(audit_store):
    # Given entries a month apart over three years, and a filter only the oldest matches
    written = [entry(BASE - timedelta(days=31 * i), actor=BOB if i == 35 else ADA) for i in range(36)]
    for item in written:
        await audit_store.append(item)

    # When listed whole, and by that filter (a page may stop early, with a cursor to go on from)
    listed = await everything(audit_store)
    bobs = await everything(audit_store, AuditFilter(actor="bob"))

    # Then every entry comes once, newest first, and the filter finds the oldest
    assert [item.id for item in listed] == [item.id for item in written]
    assert [item.id for item in bobs] == [written[-1].id]
