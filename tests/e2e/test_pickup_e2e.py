"""Pickup through the real app in devhost: the timer picks a blob up and the engine delivers it; the
portal shows the source and its runs, and "Pick up now" takes what waits at once (Chromium)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from azure.storage.blob.aio import BlobServiceClient, ContainerClient
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.e2e.portal_support import ConsoleWatch, browser_page, launch_chromium, screenshots
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("pickup_e2e")]


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    env = app_env(
        azurite,
        unique_prefix(),
        PICKUP_SCHEDULE="* * * * * *",
        MIN_PICKUP_INTERVAL_S="1",
        Upstream=azurite.connection_string,
    )
    with running_app(env) as host:
        yield host


@pytest_asyncio.fixture(loop_scope="module")
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


@pytest_asyncio.fixture(loop_scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(200)])
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def container(azurite: AzuriteProcess) -> AsyncIterator[ContainerClient]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(f"drop-{uuid.uuid4().hex[:8]}")
    await container.create_container()
    yield container
    await container.delete_container()
    await service.close()


async def configure(http: httpx.AsyncClient, integration: str, receiver: Receiver, source: dict[str, Any]) -> None:
    body = {
        "name": integration,
        "sender": "erp",
        "receiver": "shop",
        "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5},
        "source": source,
    }
    response = await http.put(f"/integrations/{integration}", json=body)
    assert response.status_code in (200, 201), response.text


async def test_a_blob_dropped_upstream_reaches_the_receiver_once_and_leaves_the_container(
    http, receiver, container, host
):
    # Given an integration whose source is a container, looked at every second
    source = {"kind": "blob", "connection": "Upstream", "container": container.container_name, "interval_seconds": 1}
    await configure(http, "picked", receiver, source)

    # When an upstream system drops a file there
    await container.upload_blob("orders/4711.xml", b"<order id='4711'/>")

    # Then the receiver gets it with its name, from the config's sender, under the pickup's idempotency key
    [request] = await receiver.wait_for(1, timeout_s=30)
    assert request.body == b"<order id='4711'/>"
    assert request.headers["x-pickup-name"] == "orders/4711.xml"
    assert request.headers["content-type"].startswith("text/xml")
    assert request.headers["idempotency-key"].startswith("pickup-")
    # And the file is gone from the container, and the status counts it
    assert [b.name async for b in container.list_blobs()] == []
    status = (await http.get("/integrations/picked/pickup")).json()
    assert status["picked_total"] == 1 and status["last_outcome"] == "ok" and status["kind"] == "blob"


async def test_pickup_routes_answer_404_without_a_source_and_202_for_run_now(http, receiver, container):
    body = {"name": "nosource", "endpoint": {"kind": "http", "url": receiver.url}}
    assert (await http.put("/integrations/nosource", json=body)).status_code in (200, 201)
    assert (await http.get("/integrations/nosource/pickup")).json()["error"]["code"] == "source_not_found"
    assert (await http.get("/integrations/missing/pickup")).status_code == 404

    await configure(http, "runnow", receiver, {"kind": "blob", "connection": "Upstream", "container": "drop-none"})
    response = await http.post("/integrations/runnow/pickup/run")

    assert response.status_code == 202 and response.json()["run_requested"] is True


# --- the portal -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, console: ConsoleWatch, host: DevhostProcess) -> AsyncIterator[Page]:
    # Signed in as the dev admin (the host runs AUTH_MODE=dev, as `make run` does).
    async with browser_page(browser, console, host, "admin") as page:
        yield page


async def test_the_integration_page_shows_the_source_and_pick_up_now_takes_what_waits(
    page, http, receiver, container, host
):
    # Given a source looked at once an hour, whose first run has already happened
    source = {"kind": "blob", "connection": "Upstream", "container": container.container_name, "interval_seconds": 3600}
    await configure(http, "hourly", receiver, source)

    async def has_run() -> bool:
        return (await http.get("/integrations/hourly/pickup")).json()["last_run_at"] is not None

    await until(has_run, True)
    await container.upload_blob("late.json", b'{"late": true}')

    # When the user opens the integration's page
    await page.goto(f"{host.base_url}/portal#/integrations/hourly")

    # Then the pickup panel shows where the source reads and that nothing was picked yet
    panel = page.get_by_test_id("pickup-panel")
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text(f"blob Upstream/{container.container_name}/")
    await expect(panel.get_by_test_id("pickup-picked")).to_have_text("0")

    # When the user chooses "Pick up now"
    await panel.get_by_role("button", name="Pick up now").click()

    # Then the run takes the file at once, and the panel says so
    await expect(panel.get_by_test_id("pickup-picked")).to_have_text("1")
    await expect(panel.get_by_test_id("pickup-note")).to_have_text("Done.")
    await expect(panel.get_by_test_id("pickup-outcome")).to_have_text("ok")
    requests = await receiver.wait_for(1, timeout_s=30)
    assert any(r.body == b'{"late": true}' for r in requests)
    await screenshots(page, "pickup-panel", full_page=False)


async def test_an_integration_without_a_source_shows_no_pickup_panel_and_asks_for_none(page, http, receiver, host):
    # (The page fixture fails the test on any console error, such as a 404 from asking anyway.)
    body = {"name": "plain", "endpoint": {"kind": "http", "url": receiver.url}}
    assert (await http.put("/integrations/plain", json=body)).status_code in (200, 201)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if request.url.endswith("/pickup") else None)

    await page.goto(f"{host.base_url}/portal#/integrations/plain")

    await expect(page.get_by_role("heading", level=1)).to_have_text("plain")
    await expect(page.get_by_test_id("groups-panel")).to_be_visible()
    await expect(page.get_by_test_id("pickup-panel")).to_be_hidden()
    assert asked == []
