"""The portal's control and alert parts in Chromium: Pause with a reason and Resume on the integration page, the
rate limit and breaker in Settings, the Alerts page (a rule, "Send test alert", the history)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.e2e.portal_support import ConsoleWatch, browser_page, launch_chromium, screenshots
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("control_portal")]


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix(), CONTROL_REFRESH_S="0.5")) as host:
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, host: DevhostProcess) -> AsyncIterator[Page]:
    # Signed in as the dev admin (the host runs AUTH_MODE=dev, as `make run` does).
    async with browser_page(browser, ConsoleWatch(), host, "admin") as page:
        yield page


@pytest_asyncio.fixture(loop_scope="module")
async def reader_page(browser: Browser, host: DevhostProcess) -> AsyncIterator[Page]:
    async with browser_page(browser, ConsoleWatch(), host, "reader") as page:
        yield page


async def test_an_operator_pauses_with_a_reason_sees_messages_held_and_resumes(page, http, receiver, host):
    # Given an integration
    body = {"name": "shop", "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}}
    assert (await http.put("/integrations/shop", json=body)).status_code in (200, 201)
    await page.goto(f"{host.base_url}/portal#/integrations/shop")
    panel = page.get_by_test_id("control-panel")
    await expect(panel.get_by_test_id("control-state")).to_have_text("running")

    # When the operator pauses it, giving a reason
    await panel.get_by_test_id("pause").click()
    await page.get_by_test_id("pause-reason-input").fill("receiver maintenance until 14:00")
    await page.get_by_test_id("confirm-pause").click()

    # Then the panel says paused, why, and counts what arrives as held
    await expect(panel.get_by_test_id("control-state")).to_have_text("paused")
    await expect(panel.get_by_test_id("pause-reason")).to_have_text("receiver maintenance until 14:00")
    for n in range(3):
        assert (await http.post("/integrations/shop/messages", content=f"m{n}".encode())).status_code == 202
    await expect(panel.get_by_test_id("control-held")).to_have_text("3")
    assert receiver.requests == []
    await screenshots(page, "control-paused", full_page=False)

    # When the operator resumes
    await panel.get_by_test_id("resume").click()

    # Then the held messages go out in the order they arrived, and the panel says running
    await receiver.wait_for(3, timeout_s=30)
    assert [r.body for r in receiver.requests] == [b"m0", b"m1", b"m2"]
    await expect(panel.get_by_test_id("control-state")).to_have_text("running", timeout=30_000)


async def test_the_rate_limit_and_breaker_are_set_in_settings(page, http, receiver, host):
    body = {"name": "paced", "endpoint": {"kind": "http", "url": receiver.url}}
    assert (await http.put("/integrations/paced", json=body)).status_code in (200, 201)
    await page.goto(f"{host.base_url}/portal#/integrations/paced/settings")
    form = page.get_by_test_id("control-form")

    await form.get_by_test_id("rate-limit").fill("2.5")
    await form.get_by_test_id("breaker-enabled").check()
    await form.get_by_role("button", name="Save delivery control").click()

    await expect(form.get_by_role("status")).to_have_text("Saved.")
    config = (await http.get("/integrations/paced")).json()
    assert config["rate_limit"] == {"per_second": 2.5}
    assert config["circuit_breaker"]["enabled"] is True and config["circuit_breaker"]["failure_threshold"] == 20


async def test_an_admin_adds_a_rule_sends_a_test_alert_and_sees_it_in_the_history(page, http, host):
    hook = Receiver([Answer(200)])
    await hook.start()
    try:
        await page.goto(f"{host.base_url}/portal#/alerts")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
        form = page.get_by_test_id("rule-form")

        # When an admin adds a webhook rule and sends a test alert
        await form.get_by_test_id("rule-id").fill("ops-hook")
        await form.get_by_test_id("rule-url").fill(hook.url)
        await form.get_by_role("button", name="Save rule").click()
        row = page.get_by_test_id("rules-table").locator("tr[data-rule='ops-hook']")
        await expect(row).to_be_visible()
        await row.get_by_test_id("send-test").click()

        # Then the webhook got a test notice, and the history lists it as sent
        [request] = await hook.wait_for(1, timeout_s=30)
        payload = json.loads(request.body)
        assert (payload["rule"]["id"], payload["notice"], payload["test"]) == ("ops-hook", "test", True)
        history = page.get_by_test_id("history-table")
        await expect(history).to_contain_text("ops-hook")
        await expect(history).to_contain_text("test: sent")
        rules = (await http.get("/alert-rules")).json()["items"]
        assert await until(lambda: _rule_ids(http), ["ops-hook"])
        assert rules[0]["rule"]["channel"]["url"] == hook.url
        await screenshots(page, "alerts-page")
    finally:
        await hook.stop()


async def _rule_ids(http: httpx.AsyncClient) -> list[str]:
    return [view["rule"]["id"] for view in (await http.get("/alert-rules")).json()["items"]]


async def test_a_reader_sees_the_delivery_state_and_the_alerts_but_no_controls(reader_page, http, receiver, host):
    body = {"name": "watched", "endpoint": {"kind": "http", "url": receiver.url}}
    assert (await http.put("/integrations/watched", json=body)).status_code in (200, 201)

    await reader_page.goto(f"{host.base_url}/portal#/integrations/watched")
    panel = reader_page.get_by_test_id("control-panel")
    await expect(panel.get_by_test_id("control-state")).to_have_text("running")
    await expect(panel.get_by_test_id("pause")).to_have_count(0)

    await reader_page.goto(f"{host.base_url}/portal#/alerts")
    await expect(reader_page.get_by_role("heading", level=1)).to_have_text("Alerts")
    await expect(reader_page.get_by_test_id("rule-form")).to_be_hidden()
