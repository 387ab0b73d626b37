"""The failure handlers on the twins: filters and paging through the query string, 400s naming the
parameter, the detail, groups, overview and count.

What the failure store does under them is the contract suite's (tests/contract/test_failure_*.py).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from blueprints import failures
from shared.failures.models import Failure, FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from tests.twins.stores import MemoryStores
from tests.unit.blueprints.calls import body_of, request

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def record(
    stores: MemoryStores,
    when: datetime,
    *,
    integration: str = "orders",
    sender: str = "webshop",
    origin: FailureOrigin = FailureOrigin.ENDPOINT,
    body_ref: str | None = None,
    content_type: str | None = None,
) -> Failure:
    envelope = Envelope(integration=integration, sender=sender, content_type=content_type)
    failure = new_failure(
        envelope, origin=origin, reason="HTTP 500 from erp", now=when, body_ref=body_ref, status_code=500, attempts=4
    )
    return await stores.failures.add(failure)


def list_request(params: dict[str, str] | None = None) -> object:
    return request("GET", "integrations/orders/failures", params, integration="orders")


async def test_filters_in_the_query_string_select_the_failures_newest_first(services, stores):
    # Given failures from two senders and origins
    webshop = [await record(stores, BASE + timedelta(minutes=m)) for m in (0, 10)]
    await record(stores, BASE + timedelta(minutes=20), sender="pos")
    await record(stores, BASE + timedelta(minutes=30), origin=FailureOrigin.ENGINE)

    # When the list handler is asked with filters as a browser sends them (the function key included)
    params = {"sender": "webshop", "origin": "endpoint", "from": BASE.isoformat(), "code": "key"}
    response = await failures.list_failures(list_request(params))

    # Then it returns exactly those, as JSON, with a null cursor
    body = body_of(response)
    assert response.status_code == 200
    assert [item["id"] for item in body["items"]] == [webshop[1].id, webshop[0].id]
    assert body["next_cursor"] is None and body["items"][0]["origin"] == "endpoint"


async def test_a_time_range_with_offsets_and_microseconds_includes_both_ends(services, stores):
    start, end = BASE, BASE + timedelta(hours=1)
    inside = [await record(stores, moment) for moment in (start, end)]
    await record(stores, end + timedelta(microseconds=1))

    params = {"from": "2026-03-01T12:00:00.000000Z", "to": "2026-03-01T14:00:00.000000+01:00"}
    body = body_of(await failures.list_failures(list_request(params)))

    assert [item["id"] for item in body["items"]] == [inside[1].id, inside[0].id]


async def test_paging_through_the_handler_follows_next_cursor(services, stores):
    seeded = [await record(stores, BASE + timedelta(seconds=i)) for i in range(15)]

    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    for pages in range(1, 11):  # noqa: B007 (the count of pages is the point)
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        body = body_of(await failures.list_failures(list_request(params)))
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    else:
        raise AssertionError(f"paging did not end after 10 pages: {len(ids)} items")

    assert pages == 3
    assert ids == sorted(f.id for f in seeded)


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
async def test_an_invalid_parameter_is_a_400_naming_it(services, name, value):
    response = await failures.list_failures(list_request({name: value}))

    error = body_of(response)["error"]
    assert response.status_code == 400
    assert (error["code"], error["details"]["parameter"]) == ("bad_parameter", name)


async def test_a_reversed_range_is_a_400_naming_to_for_the_list_and_the_count(services):
    params = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}

    listed = await failures.list_failures(list_request(params))
    counted = await failures.count_failures(
        request("GET", "integrations/orders/failures/count", params, integration="orders")
    )

    assert (listed.status_code, counted.status_code) == (400, 400)
    assert body_of(listed)["error"]["details"]["parameter"] == "to" == body_of(counted)["error"]["details"]["parameter"]


async def test_detail_returns_the_failure_with_its_content(services, stores):
    document = {"order": 1001, "note": "grüße"}
    await stores.payloads.put("m-1", json.dumps(document).encode(), content_type="application/json")
    failure = await record(stores, BASE, body_ref="m-1", content_type="application/json")

    response = await failures.get_failure(
        request("GET", f"integrations/orders/failures/{failure.id}", integration="orders", failure_id=failure.id)
    )

    body = body_of(response)
    assert response.status_code == 200
    assert body["failure"]["id"] == failure.id and body["failure"]["attempts"] == 4
    assert json.loads(body["content"]["data"]) == document


async def test_detail_of_an_absent_failure_or_another_integrations_is_404(services, stores):
    billing = await record(stores, BASE, integration="billing")

    for failure_id in ["0000000000000000-000000000000", billing.id]:
        response = await failures.get_failure(
            request("GET", f"integrations/orders/failures/{failure_id}", integration="orders", failure_id=failure_id)
        )

        assert response.status_code == 404
        assert body_of(response)["error"]["code"] == "failure_not_found"


async def test_groups_overview_and_count_answer_from_the_counters(services, stores):
    for minute in range(3):
        await record(stores, BASE + timedelta(minutes=minute))
    await record(stores, BASE, integration="billing", sender="pos")

    groups = body_of(
        await failures.failure_groups(request("GET", "integrations/orders/failure-groups", integration="orders"))
    )
    overview = body_of(await failures.failures_overview(request("GET", "failures")))
    everything = body_of(
        await failures.count_failures(request("GET", "integrations/orders/failures/count", integration="orders"))
    )
    by_pos = body_of(
        await failures.count_failures(
            request("GET", "integrations/orders/failures/count", {"sender": "pos"}, integration="orders")
        )
    )

    assert [g["count"] for g in groups["items"]] == [3]
    assert [(s["integration"], s["count"]) for s in overview["items"]] == [("orders", 3), ("billing", 1)]
    assert (everything["count"], by_pos["count"]) == (3, 0)
