"""The message path end to end: HTTP ingest → devhost queue trigger → real receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.failures.models import FailureOrigin
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.support.receiver import Answer, Receiver
from tests.support.stores import azure_stores, stored_failures


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), MAX_MESSAGE_BYTES="2097152")


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[DevhostProcess]:
    with running_app(env) as host:
        yield host


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def configure(host: DevhostProcess, name: str, receiver: Receiver, **config: object) -> None:
    async with client(host) as http:
        body = {"name": name, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}, **config}
        response = await http.put(f"/integrations/{name}", json=body)
        assert response.status_code in (200, 201), response.text


async def ingest(host: DevhostProcess, name: str, body: bytes, **headers: str) -> str:
    async with client(host) as http:
        response = await http.post(f"/integrations/{name}/messages", content=body, headers=headers)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])


async def wait_for_failures(services: Services, integration: str, count: int = 1, timeout_s: float = 30):
    deadline = time.monotonic() + timeout_s
    while True:
        found = await stored_failures(services.stores.failures, integration)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} failures for {integration}, expected {count}")
        await asyncio.sleep(0.2)


async def settled_counts(host: DevhostProcess, services: Services, integration: str, timeout_s: float = 30):
    """The engine's counters for `integration` once it has delivered, and nothing is left on `inbound`
    (no requeued or redelivered copy pending): the event after which nothing more can arrive."""
    azure = azure_stores(services)
    async with client(host) as http:
        deadline = time.monotonic() + timeout_s
        while True:
            snapshot = (await http.get("/metrics", params={"window_minutes": "5"})).json()
            counts = snapshot["integrations"].get(integration, {}).get("since_start", {})
            pending = await azure.account.queues.depth(azure.names.inbound)
            if counts.get("delivered") and pending == 0:
                return counts
            if time.monotonic() > deadline:
                raise AssertionError(f"{integration} not settled: counters {counts}, {pending} on inbound")
            await asyncio.sleep(0.2)


async def test_ingested_message_reaches_the_receiver_with_its_keys(host, receiver):
    # Given an integration pointing at a real receiver
    await configure(host, "plain", receiver)

    # When a JSON message is posted with sender and correlation id
    message_id = await ingest(
        host,
        "plain",
        b'{"order": 7}',
        **{"Content-Type": "application/json", "X-Sender": "shop", "X-Correlation-Id": "c-7"},
    )

    # Then the receiver gets the exact body with the idempotency key and correlation id
    [request] = await receiver.wait_for(1)
    assert request.body == b'{"order": 7}'
    assert request.headers["idempotency-key"] == message_id
    assert request.headers["x-correlation-id"] == "c-7"
    assert request.headers["content-type"] == "application/json"


async def test_receiver_failing_three_times_then_recovering_gets_the_message_delivered_once(host, receiver, services):
    # Given linear retry 3, 2 endpoint attempts per run, and a receiver failing 3 times
    receiver.script = [Answer(503), Answer(503), Answer(503), Answer(200)]
    await configure(host, "flaky", receiver, retry={"mode": "linear", "linear_count": 3})

    # When one message is ingested
    await ingest(host, "flaky", b"{}")

    # Then once the engine counted it delivered and no copy is left on inbound to arrive later,
    # it took exactly 4 attempts over 2 engine runs (one requeue between them)
    counts = await settled_counts(host, services, "flaky")
    assert [r.body for r in receiver.requests] == [b"{}"] * 4
    assert (counts["received"], counts["engine_requeues"], counts["delivered"]) == (1, 1, 1)


async def test_bad_request_is_one_attempt_and_a_persisted_failure(host, receiver, services):
    receiver.script = [Answer(400, text="sku missing")]
    await configure(host, "strict", receiver)

    message_id = await ingest(host, "strict", b'{"sku": null}', **{"Content-Type": "application/json"})

    [failure] = await wait_for_failures(services, "strict")
    assert len(receiver.requests) == 1
    assert (failure.origin, failure.status_code, failure.message_id) == (FailureOrigin.ENDPOINT, 400, message_id)
    assert failure.reason == "HTTP 400: sku missing"


async def test_backoff_requeues_after_a_delay_and_fails_after_max_retries_with_history(host, receiver, services):
    # Given backoff with 2 retries delayed 1-2 s, against a receiver that always answers 503
    receiver.script = [Answer(503)]
    backoff = {"max_number_of_retries": 2, "requeue_min_delay_seconds": 1, "requeue_max_delay_seconds": 2}
    await configure(host, "backoff", receiver, retry={"mode": "backoff", "backoff": backoff})

    # When one message is ingested
    await ingest(host, "backoff", b"{}")

    # Then 3 runs × 2 attempts happen, each run separated by the scheduled delay, then one failure
    [failure] = await wait_for_failures(services, "backoff", timeout_s=30)
    runs = [receiver.requests[i].at for i in (0, 2, 4)]
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
    # (a lower bound only: load can stretch a gap, never shorten it; the [min, max] delay drawn is
    # pinned in tests/unit/test_retry_math.py)
    assert all(gap >= 1.0 for gap in gaps), gaps
    assert failure.origin is FailureOrigin.ENGINE
    assert failure.attempts == 6 == len(failure.history)


async def test_429_retry_after_is_honoured(host, receiver):
    receiver.script = [Answer(429, headers={"Retry-After": "1"}), Answer(200)]
    await configure(host, "throttled", receiver)

    await ingest(host, "throttled", b"{}")

    first, second = await receiver.wait_for(2)
    assert second.at - first.at >= 1.0


async def test_one_mebibyte_binary_payload_is_delivered_byte_identical(host, receiver):
    await configure(host, "large", receiver)
    body = os.urandom(1024 * 1024)

    await ingest(host, "large", body, **{"Content-Type": "application/octet-stream"})

    [request] = await receiver.wait_for(1, timeout_s=30)
    assert request.body == body


async def test_malformed_queue_message_becomes_an_ingest_failure(host, services):
    azure = azure_stores(services)
    await azure.account.queues.send(azure.names.inbound, "<<not an envelope>>")

    failures = await wait_for_failures(services, "_unknown")

    assert any(f.origin is FailureOrigin.INGEST for f in failures)


async def test_unknown_integration_is_404_and_oversized_body_is_413(host, receiver):
    await configure(host, "limits", receiver)
    async with client(host) as http:
        unknown = await http.post("/integrations/nobody/messages", content=b"x")
        too_large = await http.post("/integrations/limits/messages", content=b"x" * (2 * 1024 * 1024 + 1))

    assert unknown.status_code == 404
    assert too_large.status_code == 413
    assert json.loads(too_large.text)["error"]["details"]["limit_bytes"] == 2 * 1024 * 1024


async def test_portal_routes_need_a_sign_in_and_the_key_alone_does_not_open_them(host):
    async with client(host) as http:
        anonymous = await http.get("/integrations", headers={"x-functions-key": "", "Authorization": ""})
        key_only = await http.get("/integrations", headers={"Authorization": ""})
        health = await http.get("/health", headers={"x-functions-key": "", "Authorization": ""})

    assert (anonymous.status_code, key_only.status_code) == (401, 401)
    assert key_only.json()["error"]["code"] == "unauthenticated"
    assert health.status_code == 200


async def test_metrics_show_what_the_engine_did_for_an_integration(host, receiver):
    receiver.script = [Answer(503), Answer(200)]
    await configure(host, "metered", receiver)

    await ingest(host, "metered", b"{}")
    await receiver.wait_for(2)

    async with client(host) as http:
        deadline = time.monotonic() + 10
        while True:
            snapshot = (await http.get("/metrics", params={"window_minutes": "5"})).json()
            counts = snapshot["integrations"].get("metered", {}).get("since_start", {})
            if counts.get("delivered") == 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        bad = await http.get("/metrics", params={"window_minutes": "0"})

    assert counts["received"] == 1 and counts["delivered"] == 1 and counts["endpoint_retries"] == 1
    assert snapshot["integrations"]["metered"]["window"]["delivered"] == 1
    assert snapshot["window_minutes"] == 5
    assert bad.status_code == 400
