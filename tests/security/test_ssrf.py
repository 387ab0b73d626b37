"""Finding 2 of issue 13: endpoints cannot reach internal addresses, and receivers cannot inject text.

With a function key, an attacker could point an endpoint at the cloud metadata service or at
anything on the app's network, and read the answer back from the failure reason. Now literal
addresses are refused at PUT; names are judged after resolution on every connection, and the
connection goes to the very address that was judged.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.config.models import IntegrationConfig
from shared.delivery.adapters.egress_network import VettedNetworkBackend, VettedTransport
from shared.egress import EgressPolicy, IPAddress
from shared.failures.models import FailureOrigin
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.security.delivery import field_errors, ingest, put_config, wait_for_failures
from tests.support.receiver import Answer, Receiver

#: The metadata addresses in the spellings attackers use; every one must be refused, always.
METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xA9FEA9FE/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://169.254.169.254./",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fd00:ec2::254]/",
    "http://[FD00:EC2:0:0:0:0:0:254]:80/",
    "http://168.63.129.16/machine?comp=goalstate",
    "http://0xA83F8110/",
    "http://user:pw@169.254.169.254/",
]

#: Literal addresses refused while private endpoints are not allowed.
PRIVATE_URLS = [
    "http://127.0.0.1:7072/orders",
    "http://127.1/",
    "http://0x7f000001/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0/",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.10.10/",
    "http://[fe80::1]/",
    "http://[fd12:3456::1]/",
]


@pytest.fixture(scope="module")
def strict_env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), ALLOW_PRIVATE_ENDPOINTS="false")


@pytest.fixture(scope="module")
def strict_host(strict_env: dict[str, str]) -> Iterator[DevhostProcess]:
    """The app as deployed in Azure: private endpoints refused."""
    with running_app(strict_env) as host:
        yield host


@pytest.fixture(scope="module")
def local_env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), ALLOW_PRIVATE_ENDPOINTS="true")


@pytest.fixture(scope="module")
def local_host(local_env: dict[str, str]) -> Iterator[DevhostProcess]:
    """The app as run locally: private endpoints allowed (the demo receiver is on 127.0.0.1)."""
    with running_app(local_env) as host:
        yield host


@pytest.fixture
async def strict(strict_host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(strict_host) as http:
        yield http


@pytest.fixture
async def local(local_host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(local_host) as http:
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def http_endpoint(url: str) -> dict[str, object]:
    return {"kind": "http", "url": url, "timeout_s": 2}


# --- refused at PUT -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", METADATA_URLS)
async def test_every_spelling_of_a_metadata_address_is_refused_at_put_even_when_private_endpoints_are_allowed(
    local, url
):
    # When an endpoint and a fallback point at a metadata address
    response = await put_config(local, "metadata", http_endpoint(url), fallback_endpoint=http_endpoint(url))

    # Then both are refused by name, as metadata, and nothing is stored
    fields = field_errors(response)
    assert set(fields) == {"endpoint.url", "fallback_endpoint.url"}
    assert "cloud metadata address" in fields["endpoint.url"]
    assert (await local.get("/integrations/metadata")).status_code == 404


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_a_literal_private_address_is_refused_at_put(strict, url):
    response = await put_config(strict, "private", http_endpoint(url))

    fields = field_errors(response)
    assert list(fields) == ["endpoint.url"]
    assert "ALLOW_PRIVATE_ENDPOINTS" in fields["endpoint.url"]


async def test_a_private_fallback_is_refused_at_put_naming_the_fallback(strict):
    response = await put_config(
        strict,
        "private-fallback",
        http_endpoint("https://erp.example/in"),
        fallback_endpoint=http_endpoint("http://10.1.1.1/"),
    )

    assert list(field_errors(response)) == ["fallback_endpoint.url"]


# --- refused at delivery --------------------------------------------------------------------------


async def test_a_name_resolving_to_loopback_is_a_config_failure_and_the_receiver_gets_no_request(strict, receiver):
    # Given an endpoint named `localhost` (a name: PUT cannot judge it) in front of a live receiver
    url = f"http://localhost:{receiver.port}/in"
    assert (await put_config(strict, "by-name", http_endpoint(url))).status_code == 201

    # When a message is ingested
    message_id = await ingest(strict, "by-name")

    # Then it ends as a config failure that says which rule refused it, and no request reached the receiver
    [failure] = await wait_for_failures(strict, "by-name")
    assert failure["origin"] == FailureOrigin.CONFIG.value
    assert failure["message_id"] == message_id
    assert "localhost" in failure["reason"] and "loopback" in failure["reason"]
    assert receiver.requests == []


async def test_the_same_name_is_delivered_when_private_endpoints_are_allowed(local, receiver):
    assert (
        await put_config(local, "by-name-local", http_endpoint(f"http://localhost:{receiver.port}/in"))
    ).status_code == 201

    await ingest(local, "by-name-local")

    [request] = await receiver.wait_for(1)
    assert request.headers["host"] == f"localhost:{receiver.port}"


async def test_a_metadata_url_stored_directly_in_the_table_is_a_config_failure(local, local_env):
    # Given a config written straight to the table, bypassing PUT, pointing at the metadata service
    services = Services(Settings.from_env(local_env))
    try:
        config = {"id": "planted-metadata", "name": "planted", "endpoint": http_endpoint("http://169.254.169.254/")}
        await services.stores.integrations.put(IntegrationConfig.model_validate(config))
    finally:
        await services.close()

    # When a message is ingested
    await ingest(local, "planted-metadata")

    # Then no connection was attempted: it is a config failure naming the rule, not a network error
    [failure] = await wait_for_failures(local, "planted-metadata")
    assert failure["origin"] == FailureOrigin.CONFIG.value
    assert "cloud metadata address" in failure["reason"]


# --- what comes back from a receiver --------------------------------------------------------------


async def test_a_hostile_error_body_becomes_a_short_single_line_reason_without_control_characters(local):
    # Given a receiver answering 400 with 10 KB of text full of terminal escapes, bidi overrides and newlines
    hostile = (
        "\x1b[2J\x1b[31mACCESS GRANTED\x1b[0m\r\nX-Injected: 1\n"
        "\u202eexe.txt\u202c \u2066hidden\u2069 \u200bzero\ufeffwidth \x85\x9b2J\x07" + "A" * 10_000
    )
    receiver = Receiver([Answer(400, text=hostile)])
    await receiver.start()
    try:
        assert (await put_config(local, "hostile", http_endpoint(receiver.url))).status_code == 201
        await ingest(local, "hostile")
        [failure] = await wait_for_failures(local, "hostile")
    finally:
        await receiver.stop()

    # Then the reason keeps a short, visible excerpt and nothing that could rewrite a terminal or a page
    reason = failure["reason"]
    assert "ACCESS GRANTED" in reason
    assert len(reason) <= 300
    assert [ch for ch in reason if unicodedata.category(ch) in ("Cc", "Cf")] == []
    excerpt = reason.split("HTTP 400: ", 1)[1]
    assert len(excerpt) <= 200


# --- the guard itself: the connection goes where the check said -----------------------------------


async def test_the_connection_goes_to_the_checked_address_and_the_host_header_keeps_the_name(receiver):
    # Given a name that only our resolver knows, resolving to the receiver's address
    async def resolver(host: str, port: int) -> list[IPAddress]:
        assert host == "receiver.test"
        return [ipaddress.ip_address("127.0.0.1")]

    policy = EgressPolicy(allow_private=True)
    backend = VettedNetworkBackend(policy, resolver=resolver)
    transport = VettedTransport(policy, limits=httpx.Limits(), backend=backend)

    # When a request is sent to that name through the vetted transport
    async with httpx.AsyncClient(transport=transport, trust_env=False) as http:
        response = await http.post(f"http://receiver.test:{receiver.port}/in", content=b"x")

    # Then it reached the checked address, and the receiver saw the name in Host
    assert response.status_code == 200
    [request] = receiver.requests
    assert request.headers["host"] == f"receiver.test:{receiver.port}"
