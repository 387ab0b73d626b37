"""Reading failures on the twins: the count rule, the detail with its content, limits and cursors."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from shared.errors import BadParameter, FailureNotFound
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import services_on


def failure_at(time: FakeTime, *, sender: str = "webshop", body_ref: str | None = None, **envelope: Any) -> Failure:
    return new_failure(
        Envelope(integration="orders", sender=sender, **envelope),
        origin=FailureOrigin.ENDPOINT, reason="HTTP 500 from erp", now=time.now(), body_ref=body_ref, status_code=500,
    )  # fmt: skip


@pytest.fixture
def services(stores: MemoryStores):
    return services_on(stores)


async def test_an_unfiltered_count_comes_from_the_counters_and_a_filtered_one_from_the_failures(
    services, stores, fake_time
):
    # Given three counted failures, and a fourth stored without its counter (a crash in between)
    for _ in range(3):
        await stores.failures.add(failure_at(fake_time))
        fake_time.advance(1)
    await stores.failures.add_uncounted(failure_at(fake_time))
    scans_before = stores.failures.calls["count"]

    # When counted without a filter and with one that matches every failure
    unfiltered = await services.failures.count("orders", FailureFilter())
    filtered = await services.failures.count("orders", FailureFilter(sender="webshop"))

    # Then "all" is the counters' answer (no scan), the filter scans; a rebuild repairs the counters
    assert (unfiltered, filtered) == (3, 4)
    assert stores.failures.calls["count"] == scans_before + 1
    assert (await stores.failures.rebuild_summary("orders")).count == 4
    assert await services.failures.count("orders", FailureFilter()) == 4


async def test_detail_returns_json_content_as_text_that_round_trips(services, stores, fake_time):
    document = {"order": 1001, "lines": [{"sku": "A-1", "qty": 2}], "note": "grüße"}
    data = json.dumps(document).encode()
    await stores.payloads.put("m-1", data, content_type="application/json")
    failure = await stores.failures.add(failure_at(fake_time, body_ref="m-1", content_type="application/json"))

    detail = await services.failures.detail("orders", failure.id)

    assert detail.failure == failure and detail.content is not None
    assert (detail.content.encoding, detail.content.content_type) == ("text", "application/json")
    assert json.loads(detail.content.data) == document and detail.content.size_bytes == len(data)


async def test_detail_returns_binary_content_as_base64(services, stores, fake_time):
    data = bytes(range(256))
    await stores.payloads.put("m-2", data, content_type="application/octet-stream")
    failure = await stores.failures.add(failure_at(fake_time, body_ref="m-2", content_type="application/octet-stream"))

    detail = await services.failures.detail("orders", failure.id)

    assert detail.content is not None
    assert (detail.content.encoding, detail.content.size_bytes) == ("base64", 256)


async def test_detail_without_content_left_has_none(services, stores, fake_time):
    failure = await stores.failures.add(failure_at(fake_time, body_ref="purged"))

    detail = await services.failures.detail("orders", failure.id)

    assert detail.content is None


async def test_detail_of_an_absent_failure_is_not_found(services):
    with pytest.raises(FailureNotFound):
        await services.failures.detail("orders", "0000000000000000-000000000000")


async def test_detail_shows_credential_headers_masked(services, stores, fake_time):
    failure = await stores.failures.add(failure_at(fake_time, headers={"authorization": "Bearer t"}))

    detail = await services.failures.detail("orders", failure.id)

    assert detail.failure.headers == {"authorization": "***"}


@pytest.mark.parametrize("limit", [0, 501])
async def test_a_limit_out_of_range_is_a_bad_parameter(services, limit):
    with pytest.raises(BadParameter) as caught:
        await services.failures.page("orders", FailureFilter(), limit=limit)

    assert caught.value.parameter == "limit"


async def test_paging_follows_the_cursor_to_the_end(services, stores, fake_time):
    for _ in range(5):
        await stores.failures.add(failure_at(fake_time))
        fake_time.advance(timedelta(seconds=1).total_seconds())

    first = await services.failures.page("orders", FailureFilter(), limit=3)
    second = await services.failures.page("orders", FailureFilter(), limit=3, cursor=first.next_cursor)

    assert (len(first.items), len(second.items), second.next_cursor) == (3, 2, None)


async def test_groups_and_overview_read_the_counters(services, stores, fake_time):
    await stores.failures.add(failure_at(fake_time))

    [group] = await services.failures.groups("orders")
    [summary] = await services.failures.overview()

    assert group.count == 1 and (summary.integration, summary.count) == ("orders", 1)
