"""Finding 1 of issue 13: app settings must not leave through endpoint headers.

An attacker holding a function key configures `{"X-Storage": "%AzureWebJobsStorage%"}` and waits for
the storage key at their receiver. Only settings ENDPOINT_SECRET_SETTINGS lists may be referenced:
anything else is refused at PUT, and a config that reached the table some other way is a `config`
failure at delivery, with nothing sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.config.models import IntegrationConfig
from shared.failures.models import FailureOrigin
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.security.delivery import field_errors, ingest, put_config, wait_for_failures
from tests.support.receiver import Receiver

TOKEN = "s3cret-receiver-token"


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), ENDPOINT_SECRET_SETTINGS="RECEIVER_TOKEN", RECEIVER_TOKEN=TOKEN)


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[DevhostProcess]:
    with running_app(env) as host:
        yield host


@pytest.fixture
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


def storage_key(env: dict[str, str]) -> str:
    return env["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0]


async def test_a_header_referencing_the_storage_connection_is_refused_at_put_naming_the_header(http, receiver, env):
    # Given a config whose headers reference the storage connection, in the endpoint and the fallback
    endpoint = {"kind": "http", "url": receiver.url, "headers": {"X-Storage": "%AzureWebJobsStorage%"}}
    fallback = {"kind": "http", "url": receiver.url, "headers": {"X-Key": "key=%AzureWebJobsStorage%;"}}

    # When it is PUT
    response = await put_config(http, "leaky", endpoint, fallback_endpoint=fallback)

    # Then it is refused naming both headers, without echoing the setting's value, and nothing is stored
    fields = field_errors(response)
    assert "AzureWebJobsStorage" in fields["endpoint.headers.X-Storage"]
    assert "ENDPOINT_SECRET_SETTINGS" in fields["endpoint.headers.X-Storage"]
    assert "fallback_endpoint.headers.X-Key" in fields
    assert storage_key(env) not in response.text
    assert (await http.get("/integrations/leaky")).status_code == 404


@pytest.mark.parametrize("setting", ["REBOUND_PREFIX", "DEVHOST_FUNCTION_KEY", "RecoveryStorage", "PATH"])
async def test_no_other_app_setting_may_be_referenced(http, receiver, setting):
    endpoint = {"kind": "http", "url": receiver.url, "headers": {"Authorization": f"Bearer %{setting}%"}}

    response = await put_config(http, "other-setting", endpoint)

    assert set(field_errors(response)) == {"endpoint.headers.Authorization"}


async def test_an_allowlisted_setting_is_delivered_in_its_header(http, receiver):
    # Given an Authorization header referencing the one allowlisted setting
    endpoint = {"kind": "http", "url": receiver.url, "headers": {"Authorization": "Bearer %RECEIVER_TOKEN%"}}
    assert (await put_config(http, "allowed", endpoint)).status_code == 201

    # When a message is ingested
    await ingest(http, "allowed")

    # Then the receiver gets the secret's value, resolved at send time
    [request] = await receiver.wait_for(1)
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_reference_stored_directly_in_the_table_is_a_config_failure_and_the_receiver_gets_nothing(
    http, receiver, services, env
):
    # Given a config written straight to the integrations table, bypassing PUT (or saved before the
    # allowlist shrank), whose header references the storage connection
    endpoint = {"kind": "http", "url": receiver.url, "headers": {"X-Storage": "%AzureWebJobsStorage%"}}
    await services.stores.integrations.put(
        IntegrationConfig.model_validate({"id": "planted", "name": "planted", "endpoint": endpoint})
    )

    # When a message is ingested
    message_id = await ingest(http, "planted")

    # Then it ends as one config failure naming the header and the setting, and no request was made
    [failure] = await wait_for_failures(http, "planted")
    assert failure["origin"] == FailureOrigin.CONFIG.value
    assert failure["message_id"] == message_id
    assert "X-Storage" in failure["reason"] and "AzureWebJobsStorage" in failure["reason"]
    assert storage_key(env) not in str(failure)
    assert receiver.requests == []
