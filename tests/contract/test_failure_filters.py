"""FailureStore contract, part 2: every filter, alone and combined, on the list, the count and the selection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.ports import FailureStore
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from tests.contract.failure_data import BASE, END, MICROSECOND, all_pages, record, selected_ids

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
    # Issue 19: sender and receiver are case-insensitive prefixes.
    pytest.param({"sender": "WEB"}, "heba", id="sender-prefix-any-case"),
    pytest.param({"sender": "p"}, "dc", id="sender-one-letter"),
    pytest.param({"receiver": "W", "q": "rejected"}, "d", id="receiver-prefix+q"),
]


async def test_a_failure_is_found_by_its_exact_message_id_correlation_id_or_either(
    failure_store: FailureStore, dataset: dict[str, Failure]
):
    # Given the data set and one failure with a correlation id
    envelope = Envelope(integration="orders", id="order-4711", correlation_id="corr-4711")
    traced = await failure_store.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="HTTP 422", now=BASE, body_ref=None)
    )
    wanted = dataset["d"]
    cases = [
        ({"message_id": wanted.message_id}, wanted.id),
        ({"correlation_id": "corr-4711"}, traced.id),
        ({"ref": "corr-4711"}, traced.id),
        ({"ref": "order-4711"}, traced.id),
        ({"ref": wanted.message_id}, wanted.id),
    ]
    for filters, expected in cases:
        selection = FailureFilter.model_validate(filters)

        # When each is listed, counted and selected
        page = await failure_store.page("orders", selection, limit=50)

        # Then exactly that failure comes back
        assert [f.id for f in page.items] == [expected], filters
        assert await failure_store.count("orders", selection) == 1
        assert await selected_ids(failure_store, selection, not_after=END) == [expected]
    # And a prefix of an id is not an id
    assert (await failure_store.page("orders", FailureFilter(message_id="order-47"), limit=50)).items == []


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
    # And a page cut by the budget says so (issue 19), the last one does not
    assert pages[0].stopped_early and not pages[-1].stopped_early


async def test_a_sender_prefix_scan_is_bounded_by_the_budget_too(failure_store: FailureStore):
    # Given 20 failures, every fourth from "Shop-EU", the others from "erp"
    shops = []
    for i in range(20):
        failure = await record(failure_store, BASE + timedelta(seconds=i), sender="Shop-EU" if i % 4 == 0 else "erp")
        if i % 4 == 0:
            shops.append(failure)

    # When listed by the prefix "shop" with a scan budget of 6
    pages = await all_pages(failure_store, FailureFilter(sender="shop"), limit=5, scan_budget=6)

    # Then the pages stop early and together hold every shop failure once, newest first
    assert pages[0].stopped_early
    assert [item.id for page in pages for item in page.items] == [f.id for f in reversed(shops)]
