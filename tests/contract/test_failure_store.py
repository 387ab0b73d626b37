"""FailureStore contract, part 1: storing, reading back, filtering, paging and selecting failures."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import BadParameter, ConcurrencyConflict
from shared.failures.models import Failure, FailureFilter, FailureOrigin, FailurePage
from shared.failures.ports import FailureStore
from shared.failures.records import new_failure
from shared.messages.models import AttemptRecord, Envelope
from shared.tokens import Cursor
from tests.contract.backends import Backend, azure_differs

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


# --- add and get --------------------------------------------------------------------------------


async def test_a_failure_reads_back_with_every_field_and_a_missing_one_is_none(failure_store: FailureStore):
    # Given a failure with every field set
    envelope = Envelope(
        integration="orders",
        sender="webshop",
        receiver="erp",
        correlation_id="c-1",
        content_type="application/json",
        headers={"x-trace": "t-1"},
        received_at=BASE - timedelta(seconds=5),
        delay_actions=1,
        resend_count=2,
        recovery_count=3,
    )
    attempt = AttemptRecord(at=BASE, engine_attempt=1, endpoint_attempt=2, target="https://erp/in", outcome="503")
    failure = new_failure(
        envelope, origin=FailureOrigin.ENGINE, reason="gave up", now=BASE, body_ref="m-1",
        status_code=503, attempts=7, history=[attempt],
    )  # fmt: skip

    # When it is added and read back
    stored = await failure_store.add(failure)
    found = await failure_store.get("orders", failure.id)

    # Then it is the same failure, with a version; another id or integration finds nothing
    assert stored == failure
    assert found is not None and found.failure == failure and found.version
    assert await failure_store.get("orders", "0000000000000000-000000000000") is None
    assert await failure_store.get("billing", failure.id) is None


async def test_has_any_says_whether_an_integration_has_failures(failure_store: FailureStore):
    failure = await record(failure_store, BASE)

    assert await failure_store.has_any("orders") is True
    assert await failure_store.has_any("billing") is False
    assert await failure_store.remove(failure) is True
    assert await failure_store.has_any("orders") is False


async def test_adding_a_failure_that_is_stored_already_is_a_conflict_and_counts_nothing_more(
    failure_store: FailureStore,
):
    failure = await record(failure_store, BASE)

    with pytest.raises(ConcurrencyConflict):
        await failure_store.add(failure)

    assert (await failure_store.summary("orders")).count == 1
    assert await failure_store.count("orders", FailureFilter()) == 1


async def test_a_header_too_long_for_the_store_reads_back_restorable_to_its_whole_value(failure_store: FailureStore):
    # Given a failure whose message carried a 40 KB header (more than a Table property holds)
    long_value = "v" * 40_000
    stored = await record(failure_store, BASE, headers={"x-long": long_value})

    # When it is read back and restored for a resend
    found = await failure_store.get("orders", stored.id)
    assert found is not None
    restored = await failure_store.restore(found.failure)

    # Then whatever the store shows, the resend gets the whole value
    assert restored.headers == {"x-long": long_value}


async def test_ping_answers(failure_store: FailureStore):
    await failure_store.ping()


# --- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "expected_pages"), [(25, 4), (28, 4)])
async def test_pages_of_seven_cover_everything_once_newest_first(failure_store: FailureStore, total, expected_pages):
    # Given `total` failures one second apart
    seeded = [await record(failure_store, BASE + timedelta(seconds=i)) for i in range(total)]

    # When the list is read with limit 7 until the cursor runs out
    pages = await all_pages(failure_store, FailureFilter(), limit=7)

    # Then every page but the last is full and continues, and together they hold each failure once, newest first
    assert len(pages) == expected_pages
    assert all(len(page.items) == 7 and page.next_cursor for page in pages[:-1])
    assert pages[-1].next_cursor is None
    assert [item.id for page in pages for item in page.items] == [f.id for f in reversed(seeded)]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.urlsafe_b64encode(b'{"after": 5}').decode(),
        base64.urlsafe_b64encode(json.dumps({"after": "x' or RowKey ne '"}).encode()).decode(),
        "memory-page:x' or '1' eq '1",
        "c" * 3000,
    ],
    ids=["garbage", "number", "odata", "memory-shaped", "long"],
)
async def test_a_cursor_the_store_did_not_issue_is_a_bad_parameter(failure_store: FailureStore, cursor: str):
    await record(failure_store, BASE)

    with pytest.raises(BadParameter) as caught:
        await failure_store.page("orders", FailureFilter(), limit=5, cursor=Cursor(cursor))

    assert caught.value.parameter == "cursor"


async def test_the_other_backends_cursor_is_refused(backend: Backend):
    # Given two failures and a well-formed cursor of the *other* implementation, after the newer one
    store = backend.stores.failures
    older = await record(store, BASE)
    newer = await record(store, BASE + timedelta(seconds=1))
    if backend.name == "memory":
        foreign = base64.urlsafe_b64encode(json.dumps({"after": newer.id}).encode()).decode().rstrip("=")
    else:
        foreign = f"memory-page:{newer.id}"

    # When it is used, then it is refused rather than read as a position
    with pytest.raises(BadParameter):
        await store.page("orders", FailureFilter(), limit=5, cursor=Cursor(foreign))
    assert [f.id for f in (await store.page("orders", FailureFilter(), limit=5)).items] == [newer.id, older.id]


# --- filters ------------------------------------------------------------------------------------


@pytest.fixture
async def dataset(failure_store: FailureStore) -> dict[str, Failure]:
    """Eight failures of `orders` over 70 minutes, and one of `billing` that no `orders` query may return."""
    specs: dict[str, dict[str, Any]] = {
        "a": dict(minutes=0, sender="webshop", receiver="erp", reason="HTTP 500 from erp for order 1001"),
        "b": dict(minutes=10, sender="webshop", receiver="erp", status=404, reason="HTTP 404: order 17 unknown"),
        "c": dict(minutes=20, sender="pos", origin=FailureOrigin.ENGINE, status=503, reason="Engine retry exhausted"),
        "d": dict(minutes=30, sender="pos", receiver="wms", status=400, reason="Rejected: TIMEOUT field missing"),
        "e": dict(minutes=40, receiver="wms", origin=FailureOrigin.INGEST, status=None, reason="Body is not JSON"),
        "f": dict(
            minutes=50, sender="crm", receiver="wms", origin=FailureOrigin.CONFIG, status=None,
            reason="Connection setting ERP_QUEUE is not configured",
        ),
        "g": dict(
            minutes=60, sender="crm", origin=FailureOrigin.CATASTROPHIC, status=None,
            reason="Gave up after 3 reinserts: timeout talking to storage",
        ),
        "h": dict(minutes=70, sender="webshop", receiver="erp", reason="HTTP 500 from erp for order 2002"),
    }  # fmt: skip
    seeded = {}
    for label, spec in specs.items():
        minutes = spec.pop("minutes")
        seeded[label] = await record(failure_store, BASE + timedelta(minutes=minutes), **spec)
    seeded["billing"] = await record(
        failure_store, BASE + timedelta(minutes=25), integration="billing", reason="HTTP 500 from erp for order 1001"
    )
    return seeded


def labels(dataset: dict[str, Failure], items: list[Failure]) -> str:
    by_id = {failure.id: label for label, failure in dataset.items()}
    return "".join(by_id[item.id] for item in items)


FILTER_CASES = [
    pytest.param({"from": BASE + timedelta(minutes=30)}, "hgfed", id="from"),
    pytest.param({"to": BASE + timedelta(minutes=20)}, "cba", id="to"),
    pytest.param({"q": "timeout"}, "gd", id="q-lowercase"),
    pytest.param({"q": "TimeOut"}, "gd", id="q-mixed-case"),
    pytest.param({"sender": "webshop"}, "heba", id="sender"),
    pytest.param({"receiver": "wms"}, "fed", id="receiver"),
    pytest.param({"origin": "endpoint"}, "hdba", id="origin"),
    pytest.param(
        {"sender": "webshop", "receiver": "erp", "origin": "endpoint", "from": BASE + timedelta(minutes=5)},
        "hb",
        id="sender+receiver+origin+from",
    ),
    pytest.param({"q": "http", "to": BASE + timedelta(minutes=15)}, "ba", id="q+to"),
    pytest.param({"sender": "pos", "receiver": "erp"}, "c", id="sender+receiver"),
    pytest.param({"sender": "nobody"}, "", id="no-match"),
]


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES)
async def test_each_filter_alone_and_combined_selects_exactly_its_failures_newest_first(
    failure_store: FailureStore, dataset: dict[str, Failure], filters: dict[str, Any], expected: str
):
    # Given the data set and a filter
    selection = FailureFilter.model_validate(filters)

    # When it is listed, counted and selected
    page = await failure_store.page("orders", selection, limit=50)
    counted = await failure_store.count("orders", selection)
    selected = await selected_ids(failure_store, selection, not_after=END)

    # Then exactly the matching `orders` failures come back, newest first, and nothing more is left
    assert labels(dataset, page.items) == expected
    assert page.next_cursor is None
    assert counted == len(expected)
    assert selected == [item.id for item in page.items]


async def test_group_filter_selects_like_failures_of_this_integration_only(
    failure_store: FailureStore, dataset: dict[str, Failure]
):
    # Given a and h (same origin, status and reason up to the order number), and billing's twin of a
    group = dataset["a"].group
    assert dataset["h"].group == group == dataset["billing"].group

    # When the list is filtered by that group, alone and with a time range
    alone = await failure_store.page("orders", FailureFilter(group=group), limit=50)
    ranged = await failure_store.page("orders", FailureFilter(group=group, to=BASE + timedelta(minutes=69)), limit=50)

    # Then both like-failures of `orders` come back, and billing's never does
    assert labels(dataset, alone.items) == "ha"
    assert labels(dataset, ranged.items) == "a"


async def test_time_range_includes_both_ends_and_excludes_one_microsecond_outside(failure_store: FailureStore):
    # Given failures at, and one microsecond either side of, both ends of [start, end]
    start, end = BASE, BASE + timedelta(hours=1)
    moments = [start - MICROSECOND, start, start + MICROSECOND, end - MICROSECOND, end, end + MICROSECOND]
    before_start, at_start, after_start, before_end, at_end, after_end = [
        await record(failure_store, moment) for moment in moments
    ]
    selection = FailureFilter(from_=start, to=end)

    # When the range is listed, counted and selected
    page = await failure_store.page("orders", selection, limit=50)
    counted = await failure_store.count("orders", selection)
    selected = await selected_ids(failure_store, selection, not_after=END)

    # Then both ends are in and one microsecond outside is out
    inside = [at_end.id, before_end.id, after_start.id, at_start.id]
    assert [item.id for item in page.items] == inside == selected
    assert counted == 4
    assert before_start.id not in inside and after_end.id not in inside


async def test_time_bounds_far_outside_the_ids_span_select_everything_or_nothing(failure_store: FailureStore):
    # Given failures now and then
    seeded = [await record(failure_store, BASE + timedelta(days=d)) for d in (0, 400)]
    every = FailureFilter(from_=datetime(1900, 1, 1, tzinfo=UTC), to=datetime(9999, 12, 31, tzinfo=UTC))
    too_early = FailureFilter(to=datetime(1960, 1, 1, tzinfo=UTC))
    too_late = FailureFilter(from_=datetime(2300, 1, 1, tzinfo=UTC))

    # Then a range from 1900 to 9999 holds them all, one before 1970 or after 2286 holds none
    assert [f.id for f in (await failure_store.page("orders", every, limit=50)).items] == [seeded[1].id, seeded[0].id]
    assert (await failure_store.page("orders", too_early, limit=50)).items == []
    assert (await failure_store.page("orders", too_late, limit=50)).items == []


async def test_a_range_of_one_instant_selects_exactly_the_failures_at_that_instant(failure_store: FailureStore):
    # Given two failures at the same microsecond and neighbours one microsecond away
    moment = BASE + timedelta(microseconds=123456)
    same = [await record(failure_store, moment), await record(failure_store, moment)]
    await record(failure_store, moment - MICROSECOND)
    await record(failure_store, moment + MICROSECOND)

    # When from == to == that instant
    page = await failure_store.page("orders", FailureFilter(from_=moment, to=moment), limit=50)

    # Then exactly those two match
    assert sorted(item.id for item in page.items) == sorted(f.id for f in same)


@pytest.mark.parametrize("attack", ["x' or PartitionKey ne 'zzz", "x' or '1' eq '1", "x' or RowKey ne '"])
async def test_odata_in_a_filter_value_is_matched_literally_and_never_widens_the_query(
    failure_store: FailureStore, attack: str
):
    # Given failures of sender "x" in two integrations
    await record(failure_store, BASE, sender="x")
    await record(failure_store, BASE, sender="x", integration="billing")

    # When an OData expression is passed as the sender, the receiver and the group
    by_sender = await failure_store.page("orders", FailureFilter(sender=attack), limit=50)
    by_receiver = await failure_store.page("orders", FailureFilter(receiver=attack), limit=50)
    counted = await failure_store.count("orders", FailureFilter(sender=attack))

    # Then nothing matches: not this integration's failures, not another's
    assert by_sender.items == [] and by_receiver.items == [] and counted == 0


async def test_a_sender_that_looks_like_odata_is_found_by_its_exact_value(failure_store: FailureStore):
    odd = await record(failure_store, BASE, sender="x' or '1' eq '1")
    await record(failure_store, BASE + timedelta(seconds=1), sender="x")

    page = await failure_store.page("orders", FailureFilter(sender="x' or '1' eq '1"), limit=50)

    assert [item.id for item in page.items] == [odd.id]


async def test_q_with_a_small_scan_budget_returns_short_pages_whose_union_is_every_match(failure_store: FailureStore):
    # Given 30 failures, every third of which mentions a timeout in some casing
    spellings = ["Timeout after 30 s", "upstream TIMEOUT", "read timed out (timeout=5)"]
    matches = []
    for i in range(30):
        reason = spellings[(i // 3) % 3] if i % 3 == 0 else f"HTTP 500 for order {i}"
        failure = await record(failure_store, BASE + timedelta(seconds=i), reason=reason)
        if i % 3 == 0:
            matches.append(failure)

    # When listed with q and a scan budget of 8 failures per request
    pages = await all_pages(failure_store, FailureFilter(q="timeout"), limit=5, scan_budget=8)

    # Then the first page is short but continues, and the pages together hold every match once, newest first
    assert len(pages[0].items) < 5 and pages[0].next_cursor is not None
    assert [item.id for page in pages for item in page.items] == [f.id for f in reversed(matches)]


# --- select and count ---------------------------------------------------------------------------


async def test_select_takes_nothing_newer_than_not_after_and_resumes_after_a_position(failure_store: FailureStore):
    # Given six failures a minute apart
    seeded = [await record(failure_store, BASE + timedelta(minutes=i)) for i in range(6)]
    not_after = BASE + timedelta(minutes=4)

    # When the selection up to minute 4 is read three at a time, resuming after the last position
    first = [item async for item in failure_store.select("orders", FailureFilter(), not_after=not_after, limit=3)]
    rest = [
        item
        async for item in failure_store.select("orders", FailureFilter(), not_after=not_after, after=first[-1].position)
    ]

    # Then minute 5 is left out (minute 4 itself is in), and the two reads cover the rest once, newest first
    assert [item.failure.id for item in first + rest] == [f.id for f in reversed(seeded[:5])]
    assert len(first) == 3 and all(item.version for item in first + rest)


async def test_a_q_selection_read_a_few_at_a_time_resumes_after_its_last_match(failure_store: FailureStore):
    # Given ten failures, every third of which times out
    seeded = [
        await record(failure_store, BASE + timedelta(seconds=i), reason="timeout" if i % 3 == 0 else f"HTTP 500 #{i}")
        for i in range(10)
    ]
    selection = FailureFilter(q="TIMEOUT")

    # When the selection is read two at a time, each read resuming after the previous one's last position
    ids: list[str] = []
    after: Cursor | None = None
    for _ in range(5):
        batch = [item async for item in failure_store.select("orders", selection, not_after=END, after=after, limit=2)]
        ids += [item.failure.id for item in batch]
        if len(batch) < 2:
            break
        after = batch[-1].position

    # Then every match came once, newest first
    assert ids == [f.id for f in reversed(seeded) if f.reason == "timeout"]


async def test_count_with_not_after_leaves_out_newer_failures(failure_store: FailureStore):
    for minute in range(5):
        await record(failure_store, BASE + timedelta(minutes=minute))

    assert await failure_store.count("orders", FailureFilter()) == 5
    assert await failure_store.count("orders", FailureFilter(), not_after=BASE + timedelta(minutes=2)) == 3
    assert await failure_store.count("billing", FailureFilter()) == 0


async def test_paging_goes_on_after_the_failure_a_cursor_ends_at_was_removed(failure_store: FailureStore):
    # Given five failures and a first page of two
    seeded = [await record(failure_store, BASE + timedelta(seconds=i)) for i in range(5)]
    first = await failure_store.page("orders", FailureFilter(), limit=2)
    assert first.next_cursor is not None

    # When the last failure of that page is removed before the next page is read
    assert await failure_store.remove(first.items[-1]) is True
    rest = await failure_store.page("orders", FailureFilter(), limit=5, cursor=first.next_cursor)

    # Then the next page starts right after it
    assert [f.id for f in rest.items] == [f.id for f in reversed(seeded[:3])]


async def test_a_selection_position_the_store_did_not_issue_is_refused(
    request: pytest.FixtureRequest, backend: Backend
):
    azure_differs(
        request,
        backend,
        "select() uses `after` as a raw RowKey bound: a corrupt or foreign position (a job checkpoint) "
        "silently selects nothing, so the job completes having handled nothing",
    )
    store = backend.stores.failures
    await record(store, BASE)

    with pytest.raises(BadParameter):
        [item async for item in store.select("orders", FailureFilter(), not_after=END, after=Cursor("garbage"))]
