"""`make run` as a developer meets it: the sample's settings (AUTH_MODE=dev) give a working demo.

The launcher seeds the demo as the sample's admin through devhost's Easy Auth, the portal learns
where to sign in, each dev user is who the sample says, and the sender's key opens both ingest
routes and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from devtools.azurite import PROJECT_DIR, AzuriteProcess
from devtools.launcher import DEMO_INTEGRATION, Access, seed
from devtools.process import DevhostProcess
from tests.e2e.app_host import running_app, unique_prefix
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("make_run")]


def sample_settings() -> dict[str, str]:
    values = json.loads((PROJECT_DIR / "local.settings.sample.json").read_text())["Values"]
    return {str(name): str(value) for name, value in values.items()}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(200)])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="module")
def settings(azurite: AzuriteProcess) -> dict[str, str]:
    # The sample as copied to local.settings.json, on this test's Azurite and prefix.
    return {
        **sample_settings(),
        "AzureWebJobsStorage": azurite.connection_string,
        "RecoveryStorage": azurite.connection_string,
        "REBOUND_PREFIX": unique_prefix(),
    }


@pytest.fixture(scope="module")
def host(settings: dict[str, str], receiver: Receiver) -> Iterator[DevhostProcess]:
    with running_app(settings) as host:
        demo = {**DEMO_INTEGRATION, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 10}}
        seed(host.base_url, Access.of(settings), demo)
        yield host


async def call(host: DevhostProcess, method: str, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=host.base_url, timeout=30, trust_env=False) as http:
        return await http.request(method, path, headers=headers)


async def test_the_sample_runs_in_dev_mode_and_the_portal_learns_where_to_sign_in(host, settings):
    # When the page asks how to sign in
    config = await call(host, "GET", "/portal/config")

    # Then
    assert settings["AUTH_MODE"] == "dev"
    assert config.json() == {"auth_mode": "dev", "sign_in": "/.auth/login/dev", "sign_out": "/.auth/logout"}


@pytest.mark.parametrize(
    ("user", "roles"),
    [("admin", ["Rebound.Admin"]), ("operator", ["Rebound.Operator"]), ("reader", ["Rebound.Reader"])],
)
async def test_each_sample_user_is_signed_in_with_its_role_and_sees_the_seeded_demo(host, user, roles):
    # When the user asks who it is, and for the integrations
    me = await call(host, "GET", "/me", Authorization=f"Bearer dev:{user}")
    listed = await call(host, "GET", "/integrations", Authorization=f"Bearer dev:{user}")

    # Then
    assert me.json() == {"name": user, "id": user, "auth": "dev", "roles": roles}
    assert [config["id"] for config in listed.json()["items"]] == ["demo"]


async def test_the_demo_was_seeded_by_the_sample_admin_as_the_audit_trail_says(host):
    # When a reader reads the trail
    trail = (await call(host, "GET", "/audit?integration=demo", Authorization="Bearer dev:reader")).json()["items"]

    # Then the demo's config is the admin's
    assert [(entry["action"], entry["actor"]["name"]) for entry in trail] == [("config.put", "admin")]


async def test_the_senders_key_opens_both_ingest_routes_and_nothing_else(host, settings):
    # Given the sender's key the sample defines
    sender_key = json.loads(settings["DEVHOST_FUNCTION_KEYS"])["ingest"]

    # When a sender posts with it, and tries it elsewhere
    senders_route = await call(host, "POST", "/ingest/demo", **{"x-functions-key": sender_key})
    designs_route = await call(host, "POST", "/integrations/demo/messages", **{"x-functions-key": sender_key})
    elsewhere = await call(host, "GET", "/integrations", **{"x-functions-key": sender_key})

    # Then both ingest routes take it; the API does not
    assert (senders_route.status_code, designs_route.status_code) == (202, 202)
    assert elsewhere.status_code == 401
