"""Failure queries against Azurite: filters (time, reason, sender, receiver, origin, group), paging,
detail with content, groups, overview and counts — through shared.failures.queries and the handlers."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from blueprints import failures
from shared.failures.models import Failure, FailureFilter, FailureOrigin, FailurePage
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from shared.services import Services, reset_services
from shared.storage.failure_rows import failure_to_row
from tests.support.auth import ADMIN_HEADERS, as_devhost
from tests.support.stores import azure_stores

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
async def app_env(monkeypatch: pytest.MonkeyPatch, storage_env: dict[str, str]) -> AsyncIterator[None]:
    """The handlers build their own Services from the environment: the same Azurite and prefix."""
    for name, value in storage_env.items():
        monkeypatch.setenv(name, value)
    # Called as devhost would call them, for its admin (who may call is tests/unit/blueprints/test_api.py's).
    as_devhost(monkeypatch)
    yield
    await reset_services()


async def record(
    services: Services,
    when: datetime,
    *,
    integration: str = "orders",
    sender: str | None = "webshop",
    receiver: str | None = "erp",
    origin: FailureOrigin = FailureOrigin.ENDPOINT,
    status: int | None = 500,
    reason: str = "HTTP 500 from erp",
    body_ref: str | None = None,
    content_type: str | None = None,
) -> Failure:
    envelope = Envelope(integration=integration, sender=sender, receiver=receiver, content_type=content_type)
    failure = new_failure(
        envelope, origin=origin, reason=reason, now=when, body_ref=body_ref, status_code=status, attempts=4
    )
    await services.stores.failures.add(failure)
    return failure


def request(path: str, params: dict[str, str] | None = None, **route_params: str) -> func.HttpRequest:
    return func.HttpRequest(
        "GET",
        f"http://localhost/api/{path}",
        body=b"",
        params=params or {},
        route_params=route_params,
        headers=ADMIN_HEADERS,
    )


def body_of(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


async def all_pages(
    services: Services, selection: FailureFilter, *, limit: int, scan_budget: int = 5000
) -> list[FailurePage]:
    pages = []
    cursor = None
    for _ in range(100):
        page = await services.failures.page("orders", selection, limit=limit, cursor=cursor, scan_budget=scan_budget)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


# --- one data set for the filters -------------------------------------------------------------


@pytest.fixture
async def dataset(services: Services) -> dict[str, Failure]:
    """Eight failures of `orders` over 70 minutes, and one of `billing` that no `orders` query may return."""
    specs: dict[str, dict[str, Any]] = {
        "a": dict(minutes=0, sender="webshop", receiver="erp", reason="HTTP 500 from erp for order 1001"),
        "b": dict(minutes=10, sender="webshop", receiver="erp", status=404, reason="HTTP 404: order 17 unknown"),
        "c": dict(minutes=20, sender="pos", origin=FailureOrigin.ENGINE, status=503, reason="Engine retry exhausted"),
        "d": dict(minutes=30, sender="pos", receiver="wms", status=400, reason="Rejected: TIMEOUT field missing"),
        "e": dict(minutes=40, receiver="wms", origin=FailureOrigin.INGEST, status=None, reason="Body is not JSON"),
        "f": dict(
            minutes=50,
            sender="crm",
            receiver="wms",
            origin=FailureOrigin.CONFIG,
            status=None,
            reason="Connection setting ERP_QUEUE is not configured",
        ),
        "g": dict(
            minutes=60,
            sender="crm",
            origin=FailureOrigin.CATASTROPHIC,
            status=None,
            reason="Gave up after 3 reinserts: timeout talking to storage",
        ),
        "h": dict(minutes=70, sender="webshop", receiver="erp", reason="HTTP 500 from erp for order 2002"),
    }
    seeded = {}
    for label, spec in specs.items():
        minutes = spec.pop("minutes")
        seeded[label] = await record(services, BASE + timedelta(minutes=minutes), **spec)
    seeded["billing"] = await record(
        services, BASE + timedelta(minutes=25), integration="billing", reason="HTTP 500 from erp for order 1001"
    )
    return seeded


def labels(dataset: dict[str, Failure], items: list[Failure]) -> list[str]:
    by_id = {failure.id: label for label, failure in dataset.items()}
    return [by_id[item.id] for item in items]


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
    services, dataset, filters, expected
):
    # Given the data set and a filter
    selection = FailureFilter.model_validate(filters)

    # When the list is read
    page = await services.failures.page("orders", selection, limit=50)

    # Then exactly the matching `orders` failures come back, newest first, and nothing else is left
    assert labels(dataset, page.items) == list(expected)
    assert page.next_cursor is None


async def test_group_filter_selects_like_failures_of_this_integration_only(services, dataset):
    # Given a, h (same origin, status and reason up to the order number) and billing's twin of a
    group = dataset["a"].group
    assert dataset["h"].group == group == dataset["billing"].group

    # When the list is filtered by that group, alone and with a time range
    alone = await services.failures.page("orders", FailureFilter(group=group))
    ranged = await services.failures.page("orders", FailureFilter(group=group, to=BASE + timedelta(minutes=69)))

    # Then both like-failures of `orders` come back, and billing's never does
    assert labels(dataset, alone.items) == ["h", "a"]
    assert labels(dataset, ranged.items) == ["a"]


async def test_filters_through_the_handler_match_the_query_function(services, dataset):
    # Given query parameters as a browser sends them (the function key `code` included)
    params = {"sender": "webshop", "origin": "endpoint", "from": (BASE + timedelta(minutes=5)).isoformat()}

    # When the list handler answers
    response = await failures.list_failures(
        request("integrations/orders/failures", {**params, "code": "key"}, integration="orders")
    )

    # Then it returns the same failures as JSON, with a null cursor
    body = body_of(response)
    assert response.status_code == 200
    assert [item["id"] for item in body["items"]] == [dataset["h"].id, dataset["b"].id]
    assert body["next_cursor"] is None
    assert body["items"][0]["sender"] == "webshop" and body["items"][0]["origin"] == "endpoint"


# --- paging -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "expected_pages"), [(25, 4), (28, 4)])
async def test_pages_of_seven_cover_everything_once_newest_first(services, total, expected_pages):
    # Given `total` failures one second apart
    seeded = [await record(services, BASE + timedelta(seconds=i)) for i in range(total)]
    newest_first = [f.id for f in sorted(seeded, key=lambda f: f.failed_at, reverse=True)]

    # When the list is read with limit 7 until the cursor runs out
    pages = await all_pages(services, FailureFilter(), limit=7)

    # Then there are 4 pages (an exact multiple of 7 included), all full but the last, no gaps or
    # duplicates, newest first, and the last one says there is nothing more
    assert len(pages) == expected_pages
    assert all(len(page.items) == 7 for page in pages[:-1])
    assert all(page.next_cursor for page in pages[:-1])
    assert pages[-1].next_cursor is None
    assert [item.id for page in pages for item in page.items] == newest_first


async def test_paging_through_the_handler_follows_next_cursor(services):
    # Given 15 failures
    seeded = [await record(services, BASE + timedelta(seconds=i)) for i in range(15)]

    # When the handler is asked page by page with limit=7
    ids: list[str] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        body = body_of(
            await failures.list_failures(request("integrations/orders/failures", params, integration="orders"))
        )
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        cursors.append(cursor)
        if cursor is None:
            break
    else:
        raise AssertionError(f"paging did not end after 10 pages: {len(ids)} items, cursors {cursors[:3]}...")

    # Then three pages cover the 15 failures once, newest first
    assert len(cursors) == 3
    assert ids == sorted(f.id for f in seeded)


# --- time boundaries ----------------------------------------------------------------------------


async def test_time_range_includes_both_ends_and_excludes_one_microsecond_outside(services):
    # Given failures at, and one microsecond either side of, both ends of [start, end]
    start, end = BASE, BASE + timedelta(hours=1)
    before_start = await record(services, start - MICROSECOND)
    at_start = await record(services, start)
    after_start = await record(services, start + MICROSECOND)
    before_end = await record(services, end - MICROSECOND)
    at_end = await record(services, end)
    after_end = await record(services, end + MICROSECOND)

    # When the range is queried directly and through the handler (ISO 8601 with microseconds)
    page = await services.failures.page("orders", FailureFilter(from_=start, to=end))
    handler = body_of(
        await failures.list_failures(
            request(
                "integrations/orders/failures",
                {"from": "2026-03-01T12:00:00.000000Z", "to": "2026-03-01T14:00:00.000000+01:00"},
                integration="orders",
            )
        )
    )

    # Then both ends are in, one microsecond outside is out
    inside = [at_end.id, before_end.id, after_start.id, at_start.id]
    assert [item.id for item in page.items] == inside
    assert [item["id"] for item in handler["items"]] == inside
    assert before_start.id not in inside and after_end.id not in inside


async def test_a_range_of_one_instant_selects_exactly_the_failures_at_that_instant(services):
    # Given two failures at the same microsecond and neighbours one microsecond away
    moment = BASE + timedelta(microseconds=123456)
    twins = [await record(services, moment), await record(services, moment)]
    await record(services, moment - MICROSECOND)
    await record(services, moment + MICROSECOND)

    # When from == to == that instant
    page = await services.failures.page("orders", FailureFilter(from_=moment, to=moment))

    # Then exactly the twins match
    assert sorted(item.id for item in page.items) == sorted(f.id for f in twins)


# --- injection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["x' or PartitionKey ne 'zzz", "x' or '1' eq '1", "x' or RowKey ne '"])
async def test_odata_in_a_filter_value_is_matched_literally_and_never_widens_the_query(services, attack):
    # Given failures of sender "x" in two integrations
    await record(services, BASE, sender="x")
    await record(services, BASE, sender="x", integration="billing")
    await record(services, BASE + timedelta(seconds=1), sender="webshop", integration="billing")

    # When an OData expression is passed as the sender (and as the receiver)
    by_sender = await services.failures.page("orders", FailureFilter(sender=attack))
    by_receiver = await services.failures.page("orders", FailureFilter(receiver=attack))
    counted = await services.stores.failures.count("orders", FailureFilter(sender=attack))
    through_handler = body_of(
        await failures.list_failures(request("integrations/orders/failures", {"sender": attack}, integration="orders"))
    )

    # Then no row matches: not this integration's, not another partition's
    assert by_sender.items == [] and by_receiver.items == [] and counted == 0
    assert through_handler["items"] == []


async def test_a_sender_that_looks_like_odata_is_found_by_its_exact_value(services):
    # Given a failure whose sender literally is an OData expression, and an ordinary one
    odd = await record(services, BASE, sender="x' or '1' eq '1")
    await record(services, BASE + timedelta(seconds=1), sender="x")

    # When filtering by that exact value
    page = await services.failures.page("orders", FailureFilter(sender="x' or '1' eq '1"))

    # Then only that failure is returned
    assert [item.id for item in page.items] == [odd.id]


# --- q with a scan budget -----------------------------------------------------------------------


async def test_q_with_a_small_scan_budget_returns_short_pages_whose_union_is_every_match(services):
    # Given 30 failures, every third of which mentions a timeout in some casing
    spellings = ["Timeout after 30 s", "upstream TIMEOUT", "read timed out (timeout=5)"]
    matches = []
    for i in range(30):
        reason = spellings[(i // 3) % 3] if i % 3 == 0 else f"HTTP 500 for order {i}"
        failure = await record(services, BASE + timedelta(seconds=i), reason=reason)
        if i % 3 == 0:
            matches.append(failure)

    # When listed with q and a scan budget of 8 rows per request
    pages = await all_pages(services, FailureFilter(q="timeout"), limit=5, scan_budget=8)

    # Then the first page is short but continues, and the pages together hold every match once, newest first
    assert len(pages[0].items) < 5 and pages[0].next_cursor is not None
    ids = [item.id for page in pages for item in page.items]
    assert ids == sorted(f.id for f in matches)
    assert pages[-1].next_cursor is None


# --- invalid parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("from", "yesterday"),
        ("to", "2026-13-01T00:00:00Z"),
        ("origin", "martian"),
        ("limit", "0"),
        ("limit", "501"),
        ("limit", "ten"),
        ("cursor", "garbage"),
        ("cursor", base64.urlsafe_b64encode(b'{"after": 5}').decode()),
        ("q", "x" * 201),
    ],
)
async def test_an_invalid_parameter_is_a_400_naming_it(name, value):
    # Given one invalid query parameter
    req = request("integrations/orders/failures", {name: value}, integration="orders")

    # When the list handler answers
    response = await failures.list_failures(req)

    # Then it is a 400 that names the parameter
    error = body_of(response)["error"]
    assert response.status_code == 400
    assert error["code"] == "bad_parameter"
    assert error["details"]["parameter"] == name


async def test_a_reversed_range_is_a_400_naming_to():
    # Given to before from
    params = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}

    # When the list and count handlers answer
    listed = await failures.list_failures(request("integrations/orders/failures", params, integration="orders"))
    counted = await failures.count_failures(request("integrations/orders/failures/count", params, integration="orders"))

    # Then both are 400 naming `to`
    assert (listed.status_code, counted.status_code) == (400, 400)
    assert body_of(listed)["error"]["details"]["parameter"] == "to"
    assert body_of(counted)["error"]["details"]["parameter"] == "to"


# --- detail -------------------------------------------------------------------------------------


async def test_detail_returns_json_content_as_text_that_round_trips(services):
    # Given a failure whose content is a JSON document in the payloads container
    document = {"order": 1001, "lines": [{"sku": "A-1", "qty": 2}], "note": "grüße"}
    data = json.dumps(document).encode()
    await services.stores.payloads.put("orders-msg-1", data, content_type="application/json")
    failure = await record(services, BASE, body_ref="orders-msg-1", content_type="application/json")

    # When the detail is read directly and through the handler
    detail = await services.failures.detail("orders", failure.id)
    response = await failures.get_failure(
        request(f"integrations/orders/failures/{failure.id}", integration="orders", failure_id=failure.id)
    )

    # Then the content is text that parses back to the same document, with the failure's fields
    assert detail.failure == failure
    assert detail.content is not None
    assert (detail.content.encoding, detail.content.content_type) == ("text", "application/json")
    assert json.loads(detail.content.data) == document
    assert detail.content.size_bytes == len(data)
    body = body_of(response)
    assert response.status_code == 200
    assert body["failure"]["id"] == failure.id and body["failure"]["attempts"] == 4
    assert json.loads(body["content"]["data"]) == document


async def test_detail_returns_binary_content_as_base64_that_decodes_byte_identical(services):
    # Given a failure whose content is binary
    data = bytes(range(256)) + b"\x00\xff\xfe"
    await services.stores.payloads.put("orders-msg-2", data, content_type="application/octet-stream")
    failure = await record(services, BASE, body_ref="orders-msg-2", content_type="application/octet-stream")

    # When the detail handler answers
    response = await failures.get_failure(
        request(f"integrations/orders/failures/{failure.id}", integration="orders", failure_id=failure.id)
    )

    # Then the content is base64 with its content type and decodes to the same bytes
    content = body_of(response)["content"]
    assert content["encoding"] == "base64"
    assert content["content_type"] == "application/octet-stream"
    assert base64.b64decode(content["data"]) == data
    assert content["size_bytes"] == len(data)


async def test_detail_of_an_absent_failure_is_404(services, dataset):
    # Given an id that does not exist in `orders` (one from billing included)
    for failure_id in ["0000000000000000-000000000000", dataset["billing"].id]:
        # When the detail handler is asked for it
        response = await failures.get_failure(
            request(f"integrations/orders/failures/{failure_id}", integration="orders", failure_id=failure_id)
        )

        # Then it is a 404 failure_not_found
        assert response.status_code == 404
        assert body_of(response)["error"]["code"] == "failure_not_found"


# --- groups, overview, counts -------------------------------------------------------------------


async def test_like_failures_share_a_group_with_the_right_count(services):
    # Given three endpoint 500s that differ only by order number and request id
    like = [
        await record(
            services, BASE + timedelta(minutes=i), reason=f"Order {n} rejected by erp (request {uuid.uuid4()})"
        )
        for i, n in enumerate([1001, 2002, 30303])
    ]
    # and the same text with another status, another origin, and two ingest failures
    other_status = await record(services, BASE, status=503, reason="Order 1 rejected by erp (request 7f0c)")
    other_origin = await record(
        services, BASE, origin=FailureOrigin.ENGINE, reason=f"Order 1 rejected by erp (request {uuid.uuid4()})"
    )
    for minute in (5, 6):
        await record(services, BASE + timedelta(minutes=minute), origin=FailureOrigin.INGEST, status=None, reason="Bad")

    # When the groups are read directly and through the handler
    groups = await services.stores.failures.groups("orders")
    response = await failures.failure_groups(request("integrations/orders/failure-groups", integration="orders"))

    # Then the like-failures are one group of 3, largest first, with their time span
    assert len({f.group for f in like}) == 1
    assert [g.count for g in groups] == [3, 2, 1, 1]
    top = groups[0]
    assert (top.group, top.origin, top.status_code) == (like[0].group, FailureOrigin.ENDPOINT, 500)
    assert (top.first_failed_at, top.last_failed_at) == (like[0].failed_at, like[-1].failed_at)
    assert top.sample_reason.startswith("Order ") and "rejected by erp" in top.sample_reason
    assert {other_status.group, other_origin.group}.isdisjoint({like[0].group})
    body = body_of(response)
    assert [(g["group"], g["count"]) for g in body["items"]] == [(g.group, g.count) for g in groups]


async def test_removing_a_failure_uncounts_it_from_its_group(services):
    # Given two like-failures
    first = await record(services, BASE, reason="HTTP 500 for order 1")
    await record(services, BASE + timedelta(seconds=1), reason="HTTP 500 for order 2")

    # When one is removed
    assert await services.stores.failures.remove(first)

    # Then its group counts one
    assert [g.count for g in await services.stores.failures.groups("orders")] == [1]
    assert (await services.stores.failures.summary("orders")).count == 1


async def test_overview_counts_per_integration_and_origin_most_recent_first(services):
    # Given failures in three integrations, the most recent one in billing
    await record(services, BASE, integration="orders")
    await record(services, BASE + timedelta(minutes=10), integration="orders", reason="HTTP 500 for order 2")
    await record(services, BASE + timedelta(minutes=3), integration="orders", origin=FailureOrigin.ENGINE)
    await record(services, BASE + timedelta(minutes=20), integration="billing", origin=FailureOrigin.INGEST)
    await record(services, BASE - timedelta(minutes=5), integration="crm")
    await record(services, BASE + timedelta(minutes=5), integration="crm", origin=FailureOrigin.CONFIG, status=None)

    # When the overview handler answers
    response = await failures.failures_overview(request("failures"))

    # Then each integration has its count, time span and counts by origin, most recent failure first
    items = body_of(response)["items"]
    assert response.status_code == 200
    assert [(i["integration"], i["count"]) for i in items] == [("billing", 1), ("orders", 3), ("crm", 2)]
    orders = items[1]
    assert orders["by_origin"] == {"endpoint": 2, "engine": 1}
    assert datetime.fromisoformat(orders["first_failed_at"]) == BASE
    assert datetime.fromisoformat(orders["last_failed_at"]) == BASE + timedelta(minutes=10)
    assert items[2]["by_origin"] == {"config": 1, "endpoint": 1}


async def test_count_is_right_with_and_without_a_filter(services, dataset):
    # Given the data set (eight `orders` failures, four from webshop)
    async def count(params: dict[str, str]) -> int:
        response = await failures.count_failures(
            request("integrations/orders/failures/count", params, integration="orders")
        )
        assert response.status_code == 200
        return int(body_of(response)["count"])

    # When counted without a filter, with one, and with q
    everything = await count({})
    webshop = await count({"sender": "webshop"})
    timeouts = await count({"q": "TIMEOUT", "from": BASE.isoformat()})

    # Then each count is the number of matching failures
    assert (everything, webshop, timeouts) == (8, 4, 2)
    assert await services.stores.failures.count("orders", FailureFilter(sender="webshop")) == 4


async def test_unfiltered_count_comes_from_the_counters_and_filtered_count_from_the_rows(services):
    # Given three counted failures, and a fourth row written without its counter (a crash in between)
    for second in range(3):
        await record(services, BASE + timedelta(seconds=second))
    stray = new_failure(
        Envelope(integration="orders", sender="webshop"),
        origin=FailureOrigin.ENDPOINT,
        reason="HTTP 500 from erp",
        now=BASE + timedelta(seconds=9),
        body_ref=None,
        status_code=500,
    )
    azure = azure_stores(services)
    await azure.account.tables.table(azure.names.failures).insert(failure_to_row(stray))

    # When counted without a filter and with one that matches every row
    unfiltered = await failures.count_failures(request("integrations/orders/failures/count", integration="orders"))
    filtered = await failures.count_failures(
        request("integrations/orders/failures/count", {"sender": "webshop"}, integration="orders")
    )

    # Then "all" is the counters' answer (no scan) and the filter scans the rows; a rebuild repairs the counters
    assert body_of(unfiltered)["count"] == 3
    assert body_of(filtered)["count"] == 4
    assert (await services.stores.failures.rebuild_summary("orders")).count == 4
