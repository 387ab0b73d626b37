"""Oversized headers, credentials in failures, and what reaches the log (issue 13, findings 3, 6, 7).

devhost + Azurite as real processes; the receiver is a real aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.failures.models import Failure
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import FUNCTION_KEY, app_env, client, running_app, unique_prefix
from tests.support.receiver import Answer, Receiver
from tests.support.stores import stored_failures

SECRET = "s3cret-api-key-value"


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), ALLOW_PRIVATE_ENDPOINTS="true")


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
    receiver = Receiver([Answer(400, text="refused")])
    await receiver.start()
    yield receiver
    await receiver.stop()


async def configure(host: DevhostProcess, name: str, receiver: Receiver) -> None:
    async with client(host) as http:
        body = {"name": name, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}}
        response = await http.put(f"/integrations/{name}", json=body)
        assert response.status_code in (200, 201), response.text


async def failures_of(services: Services, integration: str, count: int, timeout_s: float = 30) -> list[Failure]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = await stored_failures(services.stores.failures, integration)
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, f"{len(found)} failures for {integration}, expected {count}"
            return found
        await asyncio.sleep(0.2)


def put_on_inbound(env: dict[str, str], envelope: dict[str, object]) -> None:
    """As an upstream system does: straight onto the queue, base64 as host.json's messageEncoding says."""
    inbound = QueueClient.from_connection_string(
        env["AzureWebJobsStorage"], f"{env['REBOUND_PREFIX']}inbound", message_encode_policy=TextBase64EncodePolicy()
    )
    with inbound:
        inbound.send_message(json.dumps(envelope))


def raw_failure_rows(env: dict[str, str], integration: str) -> list[dict[str, object]]:
    table = TableClient.from_connection_string(env["AzureWebJobsStorage"], f"{env['REBOUND_PREFIX']}failures")
    with table:
        return [dict(row) for row in table.query_entities("PartitionKey eq @pk", parameters={"pk": integration})]


# --- finding 3: headers too large ------------------------------------------------------------


async def test_ingest_refuses_forwarded_headers_over_the_cap_with_431_and_enqueues_nothing(host, env, receiver):
    # Given an integration, and a request whose X- headers (3 × 7,000 characters) pass the host's
    # 32 KiB limit but exceed what a message may carry
    await configure(host, "bigheaders", receiver)
    headers = {f"X-Big-{n}": "v" * 7000 for n in range(3)}

    # When it is posted
    async with client(host) as http:
        response = await http.post("/integrations/bigheaders/messages", content=b"{}", headers=headers)

    # Then it is refused with 431 and the error envelope, and nothing waits on inbound
    assert response.status_code == 431
    error = response.json()["error"]
    assert error["code"] == "headers_too_large"
    assert error["details"]["limit_bytes"] == 8 * 1024
    inbound = QueueClient.from_connection_string(env["AzureWebJobsStorage"], f"{env['REBOUND_PREFIX']}inbound")
    with inbound:
        assert inbound.get_queue_properties().approximate_message_count == 0


async def test_host_refuses_request_headers_over_32_kib_with_a_json_431(host):
    # When a request carries 8 × 7,000-character headers (56 KB; Kestrel's limit is 32 KiB)
    async with client(host) as http:
        response = await http.post(
            "/integrations/any/messages", content=b"{}", headers={f"X-Big-{n}": "v" * 7000 for n in range(8)}
        )

    # Then the host answers 431 with a JSON error envelope, before any function runs
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_headers_too_large"


async def test_host_refuses_a_request_line_over_8_kib_with_a_json_414(host):
    async with client(host) as http:
        response = await http.get("/integrations", params={"pad": "x" * 9000})

    assert response.status_code == 414
    assert response.json()["error"]["code"] == "uri_too_long"


async def test_envelope_with_oversized_headers_on_inbound_ends_as_one_recorded_failure(host, env, receiver, services):
    # Given an upstream system that puts an envelope with 6 × 7,000-character headers on inbound
    # directly (no ingest cap on that path), for a receiver that refuses it
    await configure(host, "upstream", receiver)
    headers = {f"x-big-{n}": chr(ord("a") + n) * 7000 for n in range(6)}
    put_on_inbound(env, {"id": "m-oversized", "integration": "upstream", "body_text": "{}", "headers": headers})

    # Then it is attempted once and recorded as exactly one failure whose row fits Table limits
    [failure] = await failures_of(services, "upstream", 1)
    assert len(receiver.requests) == 1
    assert failure.message_id == "m-oversized"
    assert "headers" in failure.overflow
    [row] = raw_failure_rows(env, "upstream")
    assert all(len(value) <= 16_000 for value in row.values() if isinstance(value, str))

    # And a retry sends the whole headers again, from the overflow kept beside the content
    receiver.script = [Answer(200)]
    async with client(host) as http:
        response = await http.post("/integrations/upstream/jobs", json={"action": "retry", "selection": {"all": True}})
        assert response.status_code == 202, response.text
    [_, resent] = await receiver.wait_for(2)
    assert all(resent.headers[name] == value for name, value in headers.items())


# --- finding 7: credentials in failures -------------------------------------------------------


async def test_credential_headers_are_masked_in_the_failure_and_sent_whole_on_retry(host, env, receiver, services):
    # Given a message with an API key and a token among its headers, refused by the receiver
    await configure(host, "creds", receiver)
    async with client(host) as http:
        posted = await http.post(
            "/integrations/creds/messages",
            content=b"{}",
            headers={"X-Api-Key": SECRET, "X-Auth-Token": SECRET + "-t", "X-Order": "7"},
        )
        assert posted.status_code == 202
        [failure] = await failures_of(services, "creds", 1)

        # When the failure is read through the API, and its raw row in the table
        detail = (await http.get(f"/integrations/creds/failures/{failure.id}")).json()

    # Then neither shows the credentials, only that they were there
    assert detail["failure"]["headers"] == {"x-api-key": "***", "x-auth-token": "***", "x-order": "7"}
    assert SECRET not in json.dumps(raw_failure_rows(env, "creds"), default=str)

    # And a retry delivers them whole
    receiver.script = [Answer(200)]
    async with client(host) as http:
        await http.post("/integrations/creds/jobs", json={"action": "retry", "selection": {"all": True}})
    [_, resent] = await receiver.wait_for(2)
    assert (resent.headers["x-api-key"], resent.headers["x-auth-token"]) == (SECRET, SECRET + "-t")


# --- findings 6 and 7: the log ----------------------------------------------------------------


async def test_a_forged_log_line_in_a_correlation_id_stays_on_its_own_line(host, env, receiver, services):
    # Given an envelope whose correlation id tries to start a log line of its own
    await configure(host, "forge", receiver)
    forged = "c-1\n2026-01-01 ERROR rebound forged event=admin.login"
    put_on_inbound(env, {"id": "m-forge", "integration": "forge", "body_text": "{}", "correlation_id": forged})

    # When the engine logs its decisions about it
    await failures_of(services, "forge", 1)

    # Then no log line starts with the forged text; the value is quoted and escaped
    log = host._read_log()
    assert not any(line.startswith("2026-01-01 ERROR rebound forged") for line in log.splitlines())
    assert 'correlation_id="c-1\\n2026-01-01 ERROR rebound forged event=admin.login"' in log


def test_the_function_key_never_reaches_the_log_when_storage_is_down(azurite, tmp_path):
    # Given devhost whose storage account does not answer
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        + azurite.connection_string.split("AccountKey=")[1].split(";")[0]
        + ";QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    # Key mode: the key is what opens the route here, so it is the key that must stay out of the log
    env = app_env(
        azurite, unique_prefix(), AzureWebJobsStorage=dead, RecoveryStorage=dead, STORAGE_TIMEOUT_S="1", AUTH_MODE="key"
    )
    with running_app(env) as host:
        import httpx

        # When the portal API is called with the key in the query and answers 503
        response = httpx.get(f"{host.base_url}/integrations/x?code={FUNCTION_KEY}", timeout=30, trust_env=False)
        assert response.status_code == 503
        log = host._read_log()

    # Then the request was logged, without the key
    assert "/api/integrations/x" in log
    assert FUNCTION_KEY not in log
