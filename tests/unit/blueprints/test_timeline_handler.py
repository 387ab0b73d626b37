"""The timeline handler on the twins: a page of events, 404 `no_timeline`, 400s naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blueprints import timeline
from shared.timeline.models import TimelineEvent, TimelineItem
from tests.twins.stores import MemoryStores
from tests.unit.blueprints.calls import body_of, request

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def timeline_request(message_id: str, params: dict[str, str] | None = None) -> object:
    return request(
        "GET",
        f"integrations/orders/messages/{message_id}/timeline",
        params,
        integration="orders",
        message_id=message_id,
    )


async def seed(stores: MemoryStores, message_id: str, count: int) -> None:
    items = [
        TimelineItem(at=BASE + timedelta(seconds=n), event=TimelineEvent.ATTEMPT, key=f"2.attempt.1.{n}")
        for n in range(count)
    ]
    await stores.timeline.append("orders", message_id, items)


async def test_the_timeline_pages_oldest_first_with_a_cursor(services, stores):
    # Given
    await seed(stores, "m-1", 3)

    # When
    first = await timeline.message_timeline(timeline_request("m-1", {"limit": "2"}))
    rest = await timeline.message_timeline(timeline_request("m-1", {"cursor": body_of(first)["next_cursor"]}))

    # Then
    assert first.status_code == 200 and rest.status_code == 200
    page = body_of(first)
    assert (page["integration"], page["message_id"], len(page["items"])) == ("orders", "m-1", 2)
    assert set(page["items"][0]) == {"at", "event", "instance", "details"}
    assert len(body_of(rest)["items"]) == 1 and body_of(rest)["next_cursor"] is None


async def test_a_message_without_a_timeline_is_404_no_timeline(services):
    response = await timeline.message_timeline(timeline_request("m-2"))

    assert response.status_code == 404
    error = body_of(response)["error"]
    assert error["code"] == "no_timeline" and error["details"] == {"integration": "orders", "message_id": "m-2"}


async def test_a_bad_message_id_limit_or_parameter_is_a_400_naming_it(services, stores):
    await seed(stores, "m-1", 1)

    answers = {
        "message_id": await timeline.message_timeline(timeline_request("m/1")),
        "limit": await timeline.message_timeline(timeline_request("m-1", {"limit": "0"})),
        "cursor": await timeline.message_timeline(timeline_request("m-1", {"cursor": "nonsense"})),
        "q": await timeline.message_timeline(timeline_request("m-1", {"q": "x"})),
    }

    for parameter, response in answers.items():
        assert response.status_code == 400, parameter
        assert body_of(response)["error"]["details"]["parameter"] == parameter
