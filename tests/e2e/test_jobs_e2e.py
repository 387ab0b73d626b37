"""Retry and delete jobs end to end: failures made by a real receiver, jobs run by devhost's queue trigger."""

from __future__ import annotations

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


async def make_failures(http: httpx.AsyncClient, receiver: Receiver, integration: str, senders: list[str]) -> None:
    config = {"name": integration, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}}
    assert (await http.put(f"/integrations/{integration}", json=config)).status_code in (200, 201)
    for number, sender in enumerate(senders):
        response = await http.post(
            f"/integrations/{integration}/messages", json={"n": number}, headers={"X-Sender": sender}
        )
        assert response.status_code == 202
    await until(lambda: count(http, integration), len(senders))


async def count(http: httpx.AsyncClient, integration: str, **params: str) -> int:
    response = await http.get(f"/integrations/{integration}/failures", params={"limit": "500", **params})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def job_state(http: httpx.AsyncClient, integration: str, job_id: str) -> dict:
    response = await http.get(f"/integrations/{integration}/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_retry_job_on_a_filtered_subset_delivers_it_and_removes_those_failures(http, receiver):
    # Given 5 failures from "shop" and 2 from "erp", and a receiver that now accepts
    await make_failures(http, receiver, "retryjob", ["shop"] * 5 + ["erp"] * 2)
    receiver.script = [Answer(200)]
    delivered_before = len(receiver.requests)

    # When a retry job is started for sender=shop
    started = await http.post(
        "/integrations/retryjob/jobs", json={"action": "retry", "selection": {"filter": {"sender": "shop"}}}
    )

    # Then it runs to completed over several pages, the shop messages arrive, and only erp's failures remain
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    await until(lambda: _state(http, "retryjob", job_id), "completed")
    job = await job_state(http, "retryjob", job_id)
    assert (job["total"], job["processed"], job["succeeded"], job["failed"]) == (5, 5, 5, 0)
    assert job["started_at"] and job["finished_at"] and job["rate_per_s"] is not None
    await until(lambda: _delivered(receiver, delivered_before), 5)
    assert await count(http, "retryjob", sender="shop") == 0
    assert await count(http, "retryjob", sender="erp") == 2


async def test_a_retried_message_that_fails_again_comes_back_with_resend_count_plus_one(http, receiver):
    await make_failures(http, receiver, "refail", ["shop"])

    started = await http.post("/integrations/refail/jobs", json={"action": "retry", "selection": {"all": True}})
    await until(lambda: _state(http, "refail", started.json()["id"]), "completed")

    await until(lambda: count(http, "refail"), 1)
    [failure] = (await http.get("/integrations/refail/failures")).json()["items"]
    assert failure["resend_count"] == 1


async def test_select_all_delete_empties_the_integration_and_a_second_job_meanwhile_gets_409(http, receiver):
    await make_failures(http, receiver, "deljob", ["shop"] * 8)

    first = await http.post("/integrations/deljob/jobs", json={"action": "delete", "selection": {"all": True}})
    second = await http.post("/integrations/deljob/jobs", json={"action": "retry", "selection": {"all": True}})

    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["error"]["details"]["active_job_id"] == first.json()["id"]
    await until(lambda: _state(http, "deljob", first.json()["id"]), "completed")
    assert await count(http, "deljob") == 0
    overview = (await http.get("/failures")).json()["items"]
    assert "deljob" not in {item["integration"] for item in overview}
    listed = (await http.get("/integrations/deljob/jobs")).json()["items"]
    assert [job["id"] for job in listed] == [first.json()["id"]]


async def test_bad_job_request_is_422_naming_the_field(http):
    response = await http.post("/integrations/any/jobs", json={"action": "resend", "selection": {"all": True}})

    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "action"


async def _state(http: httpx.AsyncClient, integration: str, job_id: str) -> str:
    return str((await job_state(http, integration, job_id))["state"])


async def _delivered(receiver: Receiver, before: int) -> int:
    return len([r for r in receiver.requests[before:]])
