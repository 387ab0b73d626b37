"""Issue 19's operator tools through devhost: find by id, prefix and content, suggestions, edit and retry,
send elsewhere, mute, export; failures made by a real receiver, jobs run by devhost's queue trigger."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, running_app, unique_prefix
from tests.e2e.portal_support import Message, seed_failures
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver

pytestmark = pytest.mark.xdist_group("operator-tools")


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix(), JOB_PAGE_SIZE="5", JOB_RATE_LIMIT_PER_S="50")) as host:
        yield host


async def items(http: httpx.AsyncClient, integration: str, **params: str) -> list[dict]:
    response = await http.get(f"/integrations/{integration}/failures", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def error_names(response: httpx.Response) -> str:
    details = response.json()["error"]["details"]
    return details.get("parameter") or details.get("field") or details["fields"][0]["field"]


async def test_an_order_is_found_by_correlation_id_sender_prefix_and_content(http, receiver):
    # Given failures from two shops and a warehouse, one with a known correlation id and order number
    await seed_failures(
        http, receiver, "find",
        [
            Message({"order": "PO-4711"}, sender="Shop-EU", correlation_id="corr-4711"),
            Message({"order": "PO-1"}, sender="shop-us"),
            Message({"order": "PO-2"}, sender="warehouse"),
        ],
    )  # fmt: skip

    # When it is looked up by correlation id (the search box's `ref`), and its message id is read
    [found] = await items(http, "find", ref="corr-4711")
    # Then the message id finds it too, as do the list, the count and the content search
    assert [f["id"] for f in await items(http, "find", message_id=found["message_id"])] == [found["id"]]
    count = await http.get("/integrations/find/failures/count", params={"correlation_id": "corr-4711"})
    assert count.json() == {"count": 1}
    by_content = await http.get("/integrations/find/failures", params={"body_contains": "po-4711"})
    assert [f["id"] for f in by_content.json()["items"]] == [found["id"]]
    assert by_content.json()["stopped_early"] is False
    # And a lowercase prefix finds both shops
    assert sorted(f["sender"] for f in await items(http, "find", sender="shop")) == ["Shop-EU", "shop-us"]
    # And the suggestions know every sender
    facets = (await http.get("/integrations/find/failures/facets")).json()
    assert facets["senders"] == ["Shop-EU", "shop-us", "warehouse"] and facets["complete"] is True
    # And the content search is refused where it would read every body (a count), naming the parameter
    refused = await http.get("/integrations/find/failures/count", params={"body_contains": "x"})
    assert refused.status_code == 400 and error_names(refused) == "body_contains"


async def test_edit_and_retry_sends_the_corrected_body_and_the_trail_keeps_the_diff(http, receiver):
    # Given a failure the receiver refused, and a receiver that now takes what it is sent
    await seed_failures(http, receiver, "edit", [Message({"qty": -1}, correlation_id="c-edit")])
    [failure] = await items(http, "edit")
    receiver.script = [Answer(200)]

    # When the body is corrected and sent again
    answer = await http.post(
        f"/integrations/edit/failures/{failure['id']}/edit-retry",
        json={"body_text": '{"qty": 1}', "headers": {"X-Batch": "7"}},
    )

    # Then it is accepted under a new message id, delivered with the new body, and the failure is gone
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["message_id"].startswith(failure["message_id"] + ".edit.")

    async def delivered() -> bool:
        return any(r.headers.get("idempotency-key") == accepted["message_id"] for r in receiver.requests)

    await until(delivered, True)
    [request] = [r for r in receiver.requests if r.headers.get("idempotency-key") == accepted["message_id"]]
    assert request.body == b'{"qty": 1}' and request.headers.get("x-batch") == "7"
    assert await items(http, "edit") == []
    # And the trail has the sizes, hashes and diff
    trail = (await http.get("/audit", params={"action": "failure.edit_retry", "integration": "edit"})).json()
    [entry] = trail["items"]
    assert entry["target"] == failure["id"] and entry["details"]["after"]["size_bytes"] == 10
    assert '+{"qty": 1}' in entry["details"]["diff"]


async def test_edit_and_retry_refusals_name_the_field(http, receiver):
    await seed_failures(http, receiver, "editbad", [Message({"n": 1})])
    [failure] = await items(http, "editbad")
    path = f"/integrations/editbad/failures/{failure['id']}/edit-retry"
    cases = [
        ({"body_text": "{}", "body_b64": "e30="}, 422, "body"),
        ({"body_b64": "%%%"}, 422, "body_b64"),
        ({"body_text": "{}", "headers": {"Host": "evil"}}, 422, "headers.Host"),
        ({"body_text": "{}", "content_type": ""}, 422, "content_type"),
    ]
    for body, status, field in cases:
        answer = await http.post(path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert error_names(answer) == field, answer.text
    # And the failure is still there
    assert len(await items(http, "editbad")) == 1


async def test_a_job_sends_the_selection_elsewhere_once_and_shows_the_target(http, receiver):
    # Given three failures and an archive receiver that takes everything
    await seed_failures(http, receiver, "elsewhere", [Message({"n": n}) for n in range(3)])
    archive = Receiver([Answer(200)])
    await archive.start()
    try:
        target = {"kind": "http", "url": archive.url + "/archive"}

        # When a job sends them there
        started = await http.post(
            "/integrations/elsewhere/jobs", json={"action": "retry", "selection": {"all": True}, "target": target}
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]

        async def state() -> str:
            return str((await http.get(f"/integrations/elsewhere/jobs/{job_id}")).json()["state"])

        await until(state, "completed")

        # Then the archive got each message once, the failures are gone, and the job names its target
        job = (await http.get(f"/integrations/elsewhere/jobs/{job_id}")).json()
        assert len(archive.requests) == 3
        assert {r.path for r in archive.requests} == {"/in/archive"}
        assert await items(http, "elsewhere") == []
        job = (await http.get(f"/integrations/elsewhere/jobs/{job_id}")).json()
        assert job["target"]["url"] == target["url"] and job["succeeded"] == 3
        trail = (await http.get("/audit", params={"action": "job.start", "integration": "elsewhere"})).json()
        assert trail["items"][0]["details"]["target"]["url"] == target["url"]
    finally:
        await archive.stop()
    # And a target on a delete job is refused, naming the field
    refused = await http.post(
        "/integrations/elsewhere/jobs", json={"action": "delete", "selection": {"all": True}, "target": target}
    )
    assert refused.status_code == 422 and error_names(refused) == "body"


async def test_a_muted_group_leaves_the_overview_and_is_listed_with_the_muted_filter(http, receiver):
    # Given two failures of one kind
    await seed_failures(http, receiver, "mute", [Message({"n": n}) for n in range(2)])
    [group] = (await http.get("/integrations/mute/failure-groups")).json()["items"]

    # When the group is muted
    muted = await http.post(f"/integrations/mute/failure-groups/{group['group']}/mute", json={"reason": "known"})
    assert muted.status_code == 200, muted.text

    # Then the overview counts none of them, and the groups panel lists it as muted
    overview = {item["integration"]: item for item in (await http.get("/failures")).json()["items"]}
    assert overview["mute"]["count"] == 0
    listed = (await http.get("/integrations/mute/failure-groups", params={"muted": "true"})).json()["items"]
    assert [g["group"] for g in listed] == [group["group"]] and listed[0]["muted"]["reason"] == "known"
    assert (await http.get("/integrations/mute/failure-groups", params={"muted": "false"})).json()["items"] == []
    # And a past `until` and an unknown group are refused, naming what is wrong
    past = await http.post(
        f"/integrations/mute/failure-groups/{group['group']}/mute", json={"reason": "x", "until": "2020-01-01T00:00Z"}
    )
    assert past.status_code == 422 and error_names(past) == "until"
    unknown = await http.post("/integrations/mute/failure-groups/ffffffffffffffff/mute", json={"reason": "x"})
    assert unknown.status_code == 404 and error_names(unknown) == "group"

    # When unmuted
    unmuted = await http.post(f"/integrations/mute/failure-groups/{group['group']}/unmute")
    assert unmuted.json() == {"group": group["group"], "unmuted": True}

    # Then the overview counts them again
    overview = {item["integration"]: item for item in (await http.get("/failures")).json()["items"]}
    assert overview["mute"]["count"] == 2


async def test_export_gives_csv_and_ndjson_with_content(http, receiver):
    # Given three failures
    await seed_failures(http, receiver, "export", [Message({"n": n}, sender="shop") for n in range(3)])

    # When exported as CSV, filtered by sender prefix
    answer = await http.get("/integrations/export/failures/export", params={"format": "csv", "sender": "SH"})

    # Then it is a CSV attachment of the three, not truncated
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 3 and answer.headers["x-export-truncated"] == "false"

    # When exported as NDJSON with content
    answer = await http.get("/integrations/export/failures/export", params={"format": "ndjson", "include": "content"})
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert sorted(json.loads(line["content"]["data"])["n"] for line in lines) == [0, 1, 2]

    # And a bad format or `include` on CSV is a 400 naming it
    bad = await http.get("/integrations/export/failures/export", params={"format": "xlsx"})
    assert bad.status_code == 400 and error_names(bad) == "format"
    bad = await http.get("/integrations/export/failures/export", params={"include": "content"})
    assert bad.status_code == 400 and error_names(bad) == "include"
