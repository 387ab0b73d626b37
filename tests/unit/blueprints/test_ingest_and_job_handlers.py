"""The ingest and job handlers on the twins: the status codes a caller sees, and what they carry."""

from __future__ import annotations

import json

from blueprints import ingest, jobs
from shared.errors import StorageUnavailable
from shared.failures.models import FailureOrigin
from shared.failures.records import new_failure
from shared.messages.models import Envelope
from tests.twins.stores import MemoryStores
from tests.unit.blueprints.calls import body_of, request
from tests.unit.on_twins import make_config


def post_message(body: bytes = b"{}", headers: dict[str, str] | None = None, integration: str = "orders") -> object:
    return request(
        "POST",
        f"integrations/{integration}/messages",
        body=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        integration=integration,
    )


async def test_a_message_is_accepted_with_202_and_its_ids(services, stores: MemoryStores):
    await stores.integrations.put(make_config())

    response = await ingest.ingest_message(post_message(headers={"X-Message-Id": "m-1", "X-Correlation-Id": "c-1"}))

    assert response.status_code == 202
    assert body_of(response) == {"id": "m-1", "correlation_id": "c-1", "parked": False}
    [queued] = stores.inbound.peek()
    assert Envelope.model_validate_json(queued.text).id == "m-1"


async def test_a_message_parked_because_inbound_is_down_is_still_a_202_that_says_so(services, stores: MemoryStores):
    await stores.integrations.put(make_config())
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"))

    response = await ingest.ingest_message(post_message())

    assert response.status_code == 202 and body_of(response)["parked"] is True


async def test_when_both_flows_are_down_the_answer_is_503_with_retry_after(services, stores: MemoryStores):
    await stores.integrations.put(make_config())
    stores.inbound.arm("send", StorageUnavailable("inbound unreachable"))
    stores.recovery.arm("send", StorageUnavailable("recovery unreachable"))

    response = await ingest.ingest_message(post_message())

    assert response.status_code == 503
    assert response.headers.get("Retry-After")
    assert body_of(response)["error"]["code"] == "storage_unavailable"


async def test_too_large_a_body_is_413_and_too_many_headers_431(services, stores: MemoryStores):
    await stores.integrations.put(make_config())

    too_large = await ingest.ingest_message(post_message(b"x" * 2049))
    too_many = await ingest.ingest_message(post_message(headers={f"X-H{i}": "v" for i in range(40)}))

    assert (too_large.status_code, too_many.status_code) == (413, 431)
    assert stores.inbound.peek() == []


async def test_a_message_for_an_unknown_integration_is_404(services):
    response = await ingest.ingest_message(post_message(integration="ghost"))

    assert response.status_code == 404
    assert body_of(response)["error"]["code"] == "integration_not_found"


async def test_a_job_is_started_with_202_and_a_second_one_is_409_naming_the_first(services, stores: MemoryStores):
    # Given an integration with a failure
    await stores.integrations.put(make_config())
    envelope = Envelope(integration="orders", body_text="x")
    await stores.failures.add(
        new_failure(envelope, origin=FailureOrigin.ENDPOINT, reason="r", now=stores.clock(), body_ref=envelope.id)
    )
    body = json.dumps({"action": "delete", "selection": {"all": True}}).encode()

    # When two jobs are started
    first = await jobs.start_job(request("POST", "integrations/orders/jobs", body=body, integration="orders"))
    second = await jobs.start_job(request("POST", "integrations/orders/jobs", body=body, integration="orders"))

    # Then the first is accepted and queued, the second refused naming it
    started = body_of(first)
    assert first.status_code == 202 and started["state"] == "queued" and started["total"] == 1
    assert second.status_code == 409
    assert body_of(second)["error"]["details"]["active_job_id"] == started["id"]
    assert len(stores.job_pages.peek()) == 1


async def test_a_job_for_an_integration_with_nothing_is_404(services):
    body = json.dumps({"action": "retry", "selection": {"all": True}}).encode()

    response = await jobs.start_job(request("POST", "integrations/nobody/jobs", body=body, integration="nobody"))

    assert response.status_code == 404
