"""Alerts through real processes: every kind fires once per cooldown to a local webhook, a real SMTP server and a
Teams-shaped endpoint, and resolves."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from shared.messages.models import Envelope
from shared.services import Services
from shared.settings import Settings
from shared.storage.names import poison_queue
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver
from tests.support.smtp_server import SmtpServer
from tests.support.stores import azure_stores

pytestmark = [pytest.mark.xdist_group("alerts_e2e"), pytest.mark.timeout(300)]

KINDS = ("failure_count", "catastrophic", "circuit_open", "job_failed", "recovery_backlog", "pickup_failing")
CHANNELS = ("webhook", "teams", "email")
SECRET = "hook-s3cret"


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess, smtp: SmtpServer) -> dict[str, str]:
    return app_env(
        azurite,
        unique_prefix(),
        ALERT_SCHEDULE="*/2 * * * * *",
        ALERT_EMAIL_BACKEND="smtp",
        ALERT_EMAIL_SENDER="rebound@test.example",
        ALERT_SMTP_HOST="127.0.0.1",
        ALERT_SMTP_PORT=str(smtp.port),
        PORTAL_URL="http://rebound.test/api/portal",
        ENDPOINT_SECRET_SETTINGS="ALERT_HOOK_SECRET",
        ALERT_HOOK_SECRET=SECRET,
        CONTROL_REFRESH_S="1",
        CONTROL_SCHEDULE="* * * * * *",
        ENDPOINT_RETRY_MAX_ATTEMPTS="1",
        RECOVERY_MAX_REINSERTS="0",
        RECOVERY_SCHEDULE="0 0 0 1 1 *",
        PICKUP_SCHEDULE="* * * * * *",
        MIN_PICKUP_INTERVAL_S="1",
        PICKUP_MAX_CONSECUTIVE_FAILURES="1",
    )


@pytest.fixture(scope="module")
def host(env: dict[str, str]) -> Iterator[DevhostProcess]:
    with running_app(env) as host:
        yield host


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


async def started(*receivers: Receiver) -> list[Receiver]:
    for receiver in receivers:
        await receiver.start()
    return list(receivers)


class Notices:
    """Every notice the three channels got, as (rule id, "fired" | "resolved")."""

    def __init__(self, hook: Receiver, teams: Receiver, smtp: SmtpServer) -> None:
        self.hook, self.teams, self.smtp = hook, teams, smtp

    def all(self) -> list[tuple[str, str]]:
        notices = [(json.loads(r.body)["rule"]["id"], json.loads(r.body)["notice"]) for r in self.hook.requests]
        for request in self.teams.requests:
            title = json.loads(request.body)["attachments"][0]["content"]["body"][0]["text"]
            notices.append((title.rsplit("rule ", 1)[1], "resolved" if "] Resolved:" in title else "fired"))
        for mail in self.smtp.mails:
            notices.append(
                (mail.subject.rsplit("rule ", 1)[1], "resolved" if "] Resolved:" in mail.subject else "fired")
            )
        return notices

    async def of(self, notice: str) -> set[str]:
        return {rule for rule, kind in self.all() if kind == notice}


async def test_each_alert_kind_fires_once_per_cooldown_on_every_channel_and_resolves(host, services, smtp):
    hook, teams, refusing, failing, upstream = await started(
        Receiver([Answer(200)]), Receiver([Answer(202)]), Receiver([Answer(400)]), Receiver([Answer(503)]),
        Receiver([Answer(404)]),
    )  # fmt: skip
    notices = Notices(hook, teams, smtp)
    everything = {f"{kind}-{channel}" for kind in KINDS for channel in CHANNELS}
    try:
        async with client(host) as http:
            # Given the integrations each kind watches, and a rule per kind and channel (cooldown 60 min)
            await _put(http, "/integrations/refused", {"name": "refused", "endpoint": _http(refusing)})
            await _put(
                http, "/integrations/tripping",
                {"name": "tripping", "endpoint": _http(failing),
                 "circuit_breaker": {"failure_threshold": 1, "window_minutes": 5, "cooldown_seconds": 3600}},
            )  # fmt: skip
            polling_source = {"kind": "http_poll", "url": upstream.url, "interval_seconds": 1}
            await _put(
                http, "/integrations/polling",
                {"name": "polling", "endpoint": _http(refusing), "source": polling_source},
            )  # fmt: skip
            for kind in KINDS:
                integration = {"failure_count": "refused", "job_failed": "polling"}.get(kind)
                for channel in CHANNELS:
                    await _put(
                        http, f"/alert-rules/{kind}-{channel}",
                        {"kind": kind, "integration": integration, "threshold": 1, "window_minutes": 1,
                         "cooldown_minutes": 60, "channel": _channel(channel, hook, teams)},
                    )  # fmt: skip

            # When each condition comes about: a refused message, a tripped breaker, a failing pickup source,
            # a retry job whose item cannot be resent, a poisoned message (then swept into a catastrophic failure)
            assert (await http.post("/integrations/refused/messages", content=b"no")).status_code == 202
            assert (await http.post("/integrations/tripping/messages", content=b"down")).status_code == 202
            azure = azure_stores(services)
            lost = Envelope(integration="lost", body_text="lost")
            await azure.account.queues.send(poison_queue(azure.names.inbound), lost.model_dump_json())
            await until(lambda: _count(http, "polling"), True, timeout_s=60)
            job = await http.post("/integrations/polling/jobs", json={"action": "retry", "selection": {"all": True}})
            assert job.status_code == 202, job.text
            fired_first = {f"{kind}-{channel}" for kind in KINDS if kind != "catastrophic" for channel in CHANNELS}
            await until(lambda: _superset(notices.of("fired"), fired_first), True, timeout_s=90)
            assert (await http.post("/recovery/replay")).status_code == 200

            # Then every rule fired, on its channel
            await until(lambda: notices.of("fired"), everything, timeout_s=90)

            # When the conditions go on (another refused message) for a while
            assert (await http.post("/integrations/refused/messages", content=b"again")).status_code == 202
            await until(lambda: _count(http, "refused", at_least=2), True, timeout_s=30)

            # Then no rule fired twice within its cooldown
            fired = [rule for rule, notice in notices.all() if notice == "fired"]
            assert sorted(fired) == sorted(everything)

            # When each condition clears: failures deleted, the receiver back and the integration resumed,
            # the source removed, the backlog swept (above), the failed job out of its 1-minute window
            for integration in ("refused", "lost"):
                deleted = await http.post(
                    f"/integrations/{integration}/jobs", json={"action": "delete", "selection": {"all": True}}
                )
                assert deleted.status_code == 202, deleted.text
            failing.script = [Answer(200)]
            assert (await http.post("/integrations/tripping/resume")).status_code == 200
            await _put(http, "/integrations/polling", {"name": "polling", "endpoint": _http(refusing)})

            # Then every rule sent one resolved notice
            await until(lambda: notices.of("resolved"), everything, timeout_s=150)
            resolved = [rule for rule, notice in notices.all() if notice == "resolved"]
            assert sorted(resolved) == sorted(everything)

            # And the webhook's notice was signed, carried the count, the window and samples without bodies,
            # and linked to the portal; the alert log shows each alert resolved with both notices sent
            [signed] = [r for r in hook.requests if json.loads(r.body)["rule"]["id"] == "failure_count-webhook"][:1]
            assert verify_signature(SECRET, signed.headers[TIMESTAMP_HEADER.lower()], signed.body,
                                    signed.headers[SIGNATURE_HEADER.lower()])  # fmt: skip
            payload = json.loads(signed.body)
            assert (payload["integration"], payload["count"], payload["window_minutes"]) == ("refused", 1, 1)
            assert payload["portal_url"] == "http://rebound.test/api/portal#/integrations/refused"
            assert "no" not in [s.get("body") for s in payload["samples"]] and payload["samples"][0]["message_id"]
            assert all(m.recipients == ["ops@example.com"] for m in smtp.mails)
            alerts = (await http.get("/alerts", params={"limit": "100"})).json()["items"]
            assert {a["rule_id"] for a in alerts} == everything
            assert all(
                (a["state"], a["fired_notice"], a["resolved_notice"]) == ("resolved", "sent", "sent") for a in alerts
            )
    finally:
        for receiver in (hook, teams, refusing, failing, upstream):
            await receiver.stop()


def _http(receiver: Receiver) -> dict[str, object]:
    return {"kind": "http", "url": receiver.url, "timeout_s": 5}


def _channel(kind: str, hook: Receiver, teams: Receiver) -> dict[str, object]:
    if kind == "webhook":
        return {"kind": "webhook", "url": hook.url, "secret_setting": "ALERT_HOOK_SECRET"}
    if kind == "teams":
        # The shape of a Workflows URL: the signature travels in the query.
        return {"kind": "teams", "url": f"{teams.url}?api-version=2016-06-01&sig=workflow-signature"}
    return {"kind": "email", "to": ["ops@example.com"]}


async def _put(http: httpx.AsyncClient, path: str, body: dict[str, object]) -> None:
    response = await http.put(path, json=body)
    assert response.status_code in (200, 201), response.text


async def _count(http: httpx.AsyncClient, integration: str, *, at_least: int = 1) -> bool:
    response = await http.get(f"/integrations/{integration}/failures/count")
    return bool(response.status_code == 200 and response.json()["count"] >= at_least)


async def _superset(have: object, wanted: set[str]) -> bool:
    return set(await have) >= wanted  # type: ignore[misc]
