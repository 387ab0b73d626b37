"""The message timeline and a retry job's settle counters end to end: devhost runs the engine and the job, a real
receiver fails and then takes the messages (issues 17 and 19)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, running_app, unique_prefix
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    env = app_env(azurite, unique_prefix(), JOB_PAGE_SIZE="3", JOB_RATE_LIMIT_PER_S="20")
    with running_app(env) as host:
        yield host


async def configure(http: httpx.AsyncClient, receiver: Receiver, integration: str) -> None:
    config = {"name": integration, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}}
    assert (await http.put(f"/integrations/{integration}", json=config)).status_code in (200, 201)


async def send(http: httpx.AsyncClient, integration: str, number: int) -> str:
    response = await http.post(f"/integrations/{integration}/messages", json={"n": number})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def count(http: httpx.AsyncClient, integration: str) -> int:
    response = await http.get(f"/integrations/{integration}/failures", params={"limit": "500"})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def job(http: httpx.AsyncClient, integration: str, job_id: str) -> dict:
    response = await http.get(f"/integrations/{integration}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def events(http: httpx.AsyncClient, integration: str, message_id: str) -> list[str]:
    response = await http.get(f"/integrations/{integration}/messages/{message_id}/timeline")
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    return [item["event"] for item in response.json()["items"]]


async def test_fail_then_retry_job_then_delivery_shows_on_the_timeline_and_the_job(http, receiver):
    # Given two messages the receiver refused for good
    await configure(http, receiver, "tl-retry")
    ids = [await send(http, "tl-retry", number) for number in range(2)]
    await until(lambda: count(http, "tl-retry"), 2)
    # (the timeline is written just after the failure: it may lag the failure list by a moment)
    await until(functools.partial(events, http, "tl-retry", ids[0]), ["received", "attempt", "failed"])

    # When the receiver is fixed and a retry job resends them
    receiver.script = [Answer(200)]
    started = await http.post("/integrations/tl-retry/jobs", json={"action": "retry", "selection": {"all": True}})
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    # Then the job reports both phases: resent, then delivered once the engine took them
    async def settled() -> tuple[object, ...]:
        current = await job(http, "tl-retry", job_id)
        return current["resent"], current["delivered"], current["failed_again"], current["pending"]

    await until(settled, (2, 2, 0, 0))
    # And each message's timeline goes on from its failure: resent by the job, then delivered
    story = ["received", "attempt", "failed", "resent", "attempt", "delivered"]
    for message_id in ids:
        await until(functools.partial(events, http, "tl-retry", message_id), story)
    response = await http.get(f"/integrations/tl-retry/messages/{ids[0]}/timeline")
    items = response.json()["items"]
    assert items[3]["details"]["job_id"] == job_id and items[3]["details"]["actor"] == "admin"
    assert items[2]["details"]["status_code"] == 400 and items[5]["details"]["status_code"] == 200
    assert all(item["instance"] for item in items[1:])


async def test_a_retry_whose_messages_fail_again_reports_failed_again_not_success(http, receiver):
    # Given three failures, and a receiver still refusing
    await configure(http, receiver, "tl-again")
    for number in range(3):
        await send(http, "tl-again", number)
    await until(lambda: count(http, "tl-again"), 3)

    # When a retry job resends them
    started = await http.post("/integrations/tl-again/jobs", json={"action": "retry", "selection": {"all": True}})
    job_id = started.json()["id"]

    # Then every resent message is counted as failed again
    async def settled() -> tuple[object, ...]:
        current = await job(http, "tl-again", job_id)
        return current["state"], current["resent"], current["delivered"], current["failed_again"], current["pending"]

    await until(settled, ("completed", 3, 0, 3, 0))
    listed = (await http.get("/integrations/tl-again/jobs")).json()["items"]
    assert [(item["id"], item["failed_again"]) for item in listed] == [(job_id, 3)]


async def test_a_message_delivered_at_the_first_try_has_no_timeline(http, receiver):
    # Given a receiver that takes everything
    receiver.script = [Answer(200)]
    await configure(http, receiver, "tl-clean")

    # When a message is delivered at its first attempt
    before = len(receiver.requests)
    message_id = await send(http, "tl-clean", 1)
    await until(lambda: _arrived(receiver, before), 1)

    # Then its timeline is a 404 `no_timeline`
    response = await http.get(f"/integrations/tl-clean/messages/{message_id}/timeline")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_timeline"


async def _arrived(receiver: Receiver, before: int) -> int:
    return len(receiver.requests) - before
