"""Browser side of the portal e2e tests: Debian's Chromium driven by Playwright, console watching,
screenshots in light and dark, and seeding failures through the real API.

Chromium comes from Debian (`make test` installs it); Playwright's own browser download is never
used. Without the background-networking switches Chromium opens connections of its own that
this machine's closed network refuses, and those show up as errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, ConsoleMessage, Page, Playwright, ViewportSize

from devtools.process import DevhostProcess
from tests.support.polling import until
from tests.support.receiver import Receiver

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
#: The two screens every flow of the portal is tried on: a laptop, and a phone held upright.
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
#: Playwright's wait for a locator or an expect(); generous for a 2-core machine running other tests.
UI_TIMEOUT_MS = 15_000

#: What Chromium itself logs for any fetch answered 4xx/5xx. A test that provokes such an answer on
#: purpose (409, 422) allows exactly that status; anything else logged as an error fails the test.
_NETWORK_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})\b")


#: devhost's Easy Auth session cookie, as /.auth/login/dev sets it (the value names the dev user).
SESSION_COOKIE = "AppServiceAuthSession"


@contextlib.asynccontextmanager
async def browser_page(
    browser: Browser,
    console: ConsoleWatch,
    host: DevhostProcess,
    user: str | None,
    *,
    viewport: ViewportSize = VIEWPORT,
    **context_options: Any,
) -> AsyncIterator[Page]:
    """A fresh browser context, signed in as the dev `user` (None: nobody), watched for console errors.

    `context_options` go to Playwright's new_context (timezone_id, locale, bypass_csp for axe, ...)."""
    context = await browser.new_context(
        viewport=viewport, accept_downloads=True, color_scheme="light", **context_options
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    if user is not None:
        await context.add_cookies([{"name": SESSION_COOKIE, "value": user, "url": host.base_url}])
    page = await context.new_page()
    console.attach(page)
    yield page
    await context.close()
    assert not console.errors, f"the page logged errors: {console.errors}"


async def launch_chromium(playwright: Playwright) -> Browser:
    # A fresh temporary profile per launch (Playwright's default), so nothing leaks between runs.
    return await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@dataclass
class ConsoleWatch:
    """Collects what the page logs as an error, and uncaught exceptions."""

    errors: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = _NETWORK_ERROR.match(message.text)
        if status and int(status.group(1)) in self.allowed_statuses:
            return
        self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def allow_status(self, *statuses: int) -> None:
        self.allowed_statuses.update(statuses)


async def screenshots(page: Page, name: str, *, full_page: bool = True) -> list[Path]:
    """Save `<name>-light.png` and `<name>-dark.png`, then go back to light. A modal dialog is
    shot as the viewport: it does not grow with a full-page shot."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        path = ARTIFACTS / f"{name}-{scheme}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        paths.append(path)
    await page.emulate_media(color_scheme="light")
    return paths


@dataclass(frozen=True)
class Message:
    """One message to ingest: a JSON value, or raw bytes with a content type."""

    body: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    sender: str = "shop"
    correlation_id: str | None = None

    def content(self) -> bytes:
        return self.raw if self.raw is not None else json.dumps(self.body).encode()


async def seed_failures(
    http: httpx.AsyncClient, receiver: Receiver, integration: str, messages: list[Message], **config: Any
) -> None:
    """Configure `integration` to deliver to `receiver` (which answers 400) and wait until every
    message has become a failure."""
    body = {"name": integration, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}, **config}
    response = await http.put(f"/integrations/{integration}", json=body)
    assert response.status_code in (200, 201), response.text

    async def ingest(message: Message) -> None:
        headers = {"Content-Type": message.content_type, "X-Sender": message.sender}
        if message.correlation_id:
            headers["X-Correlation-Id"] = message.correlation_id
        answer = await http.post(f"/integrations/{integration}/messages", content=message.content(), headers=headers)
        assert answer.status_code == 202, answer.text

    await asyncio.gather(*(ingest(message) for message in messages))
    await until(lambda: failure_count(http, integration), len(messages))


async def failure_count(http: httpx.AsyncClient, integration: str, **filters: str) -> int:
    response = await http.get(f"/integrations/{integration}/failures/count", params=filters)
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; the violations, each with its rule id and the nodes at fault.

    axe.min.js is injected as an inline script: the page's Content-Security-Policy forbids those, so the
    context must be made with `bypass_csp=True`."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE_SCRIPT))
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"]
    ]


async def assert_accessible(page: Page, state: str) -> None:
    """No axe violation, and nothing wider than the screen (no sideways scroll of the whole page)."""
    violations = await axe_violations(page)
    assert violations == [], f"axe found violations in the state {state!r}: {violations}"
    widths = await page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways in the state {state!r}: {widths}"
