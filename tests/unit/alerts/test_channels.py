"""Alert channels at their boundaries: the webhook's JSON and signature, the Teams card, ACS email through a
fake SDK client, retries; and the rule checks made at PUT."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.alerts.channels import (
    ADAPTIVE_CARD,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AcsEmail,
    AlertChannels,
    Notification,
    verify_signature,
)
from shared.alerts.models import Alert, AlertKind, AlertRule, AlertSample, Notice
from shared.alerts.service import AlertRulesService
from shared.audit.models import Actor
from shared.audit.service import AuditTrail
from shared.egress import EgressPolicy
from shared.errors import RequestValidationError
from tests.twins.alerts import MemoryAlertLog, MemoryAlertRules
from tests.twins.audit import MemoryAuditStore

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def notification(channel: dict[str, Any], notice: Notice = Notice.FIRED) -> Notification:
    rule = AlertRule.model_validate(
        {"id": "orders-failing", "kind": "failure_count", "integration": "orders", "threshold": 3, "channel": channel}
    )
    alert = Alert(
        id="1",
        rule_id=rule.id,
        kind=AlertKind.FAILURE_COUNT,
        integration="orders",
        channel=rule.channel.kind,
        fired_at=AT,
        count=4,
        threshold=3,
        window_minutes=5,
        samples=[AlertSample(integration="orders", at=AT, summary="HTTP 503: down", failure_id="f1", message_id="m1")],
    )
    return Notification(notice, rule, alert, "https://rebound.example/api/portal#/integrations/orders")


class Recorder:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)])


def channels(recorder: Recorder, *, secrets: dict[str, str] | None = None, email: Any = None) -> AlertChannels:
    async def no_sleep(seconds: float) -> None:
        return None

    return AlertChannels(
        http=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
        email=email,
        secret=(secrets or {}).get,
        sleep=no_sleep,
        clock=lambda: 1_800_000_000.0,
    )


async def test_a_webhook_gets_the_rule_count_window_samples_and_link_signed_with_the_secret():
    recorder = Recorder([200])
    sender = channels(recorder, secrets={"ALERT_HOOK_SECRET": "s3cret"})

    error = await sender.send(
        notification({"kind": "webhook", "url": "https://hooks.example/in", "secret_setting": "ALERT_HOOK_SECRET"})
    )

    assert error is None
    [request] = recorder.requests
    body = request.content
    payload = json.loads(body)
    assert payload["rule"]["id"] == "orders-failing" and payload["count"] == 4 and payload["window_minutes"] == 5
    assert payload["samples"] == [
        {"integration": "orders", "at": "2026-11-23T12:00:00Z", "summary": "HTTP 503: down", "failure_id": "f1",
         "message_id": "m1"}
    ]  # fmt: skip
    assert payload["portal_url"].startswith("https://rebound.example/")
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    assert timestamp == "1800000000"
    assert verify_signature("s3cret", timestamp, body, signature)
    assert not verify_signature("other", timestamp, body, signature)


async def test_a_webhook_without_a_secret_is_not_signed():
    recorder = Recorder([204])
    assert await channels(recorder).send(notification({"kind": "webhook", "url": "https://hooks.example/in"})) is None
    assert SIGNATURE_HEADER not in recorder.requests[0].headers


async def test_a_secret_setting_that_is_not_allowed_sends_nothing():
    recorder = Recorder([200])
    channel = {"kind": "webhook", "url": "https://hooks.example/in", "secret_setting": "NOT_LISTED"}

    error = await channels(recorder).send(notification(channel))

    assert error is not None and "NOT_LISTED" in error
    assert recorder.requests == []


async def test_teams_gets_an_adaptive_card_with_the_facts_and_a_link():
    recorder = Recorder([202])

    await channels(recorder).send(notification({"kind": "teams", "url": "https://prod.workflows.example/x?sig=abc"}))

    message = json.loads(recorder.requests[0].content)
    [attachment] = message["attachments"]
    card = attachment["content"]
    assert (message["type"], attachment["contentType"], card["type"], card["version"]) == (
        "message", ADAPTIVE_CARD, "AdaptiveCard", "1.4"
    )  # fmt: skip
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert facts["Integration"] == "orders" and facts["Count"] == "4 (threshold 3)"
    assert card["actions"][0]["url"].startswith("https://rebound.example/")


async def test_a_failing_receiver_is_tried_three_times_and_the_error_kept():
    recorder = Recorder([503, 503, 503])

    error = await channels(recorder).send(notification({"kind": "webhook", "url": "https://hooks.example/in"}))

    assert len(recorder.requests) == 3
    assert error is not None and "HTTP 503" in error


async def test_a_receiver_that_recovers_on_the_second_try_gets_the_notice():
    recorder = Recorder([500, 200])
    assert await channels(recorder).send(notification({"kind": "webhook", "url": "https://hooks.example/in"})) is None
    assert len(recorder.requests) == 2


class FakePoller:
    def __init__(self, result: dict[str, Any]) -> None:
        self._result = result

    async def result(self) -> dict[str, Any]:
        return self._result


class FakeEmailClient:
    """The azure-communication-email aio client's boundary: `begin_send(message)` → a poller."""

    def __init__(self, status: str = "Succeeded") -> None:
        self.status = status
        self.messages: list[dict[str, Any]] = []
        self.closed = False

    async def begin_send(self, message: dict[str, Any], **kwargs: Any) -> FakePoller:
        self.messages.append(message)
        return FakePoller({"id": "op-1", "status": self.status, "error": None})

    async def close(self) -> None:
        self.closed = True


async def test_email_through_acs_sends_the_message_shape_the_sdk_takes():
    client = FakeEmailClient()
    sender = channels(Recorder([200]), email=AcsEmail(client, sender="DoNotReply@x.azurecomm.net"))

    error = await sender.send(notification({"kind": "email", "to": ["ops@example.com", "oncall@example.com"]}))

    assert error is None
    [message] = client.messages
    assert message["senderAddress"] == "DoNotReply@x.azurecomm.net"
    assert message["recipients"] == {"to": [{"address": "ops@example.com"}, {"address": "oncall@example.com"}]}
    assert message["content"]["subject"].startswith("[Rebound] Alert: 4 failures (orders)")
    assert "HTTP 503: down" in message["content"]["plainText"]


async def test_an_acs_send_that_does_not_succeed_is_a_failed_notice():
    sender = channels(Recorder([200]), email=AcsEmail(FakeEmailClient("Failed"), sender="a@b.azurecomm.net"))
    error = await sender.send(notification({"kind": "email", "to": ["ops@example.com"]}))
    assert error is not None and "failed" in error


ADMIN = Actor(name="admin", id="admin", auth="dev")


def service(*, allow_private: bool = False, email: bool = True) -> AlertRulesService:
    policy = EgressPolicy(allow_private=allow_private, secret_settings=frozenset({"ALERT_HOOK_SECRET"}))

    async def not_sent(rule_id: str) -> Alert:
        raise AssertionError("no test alert in these tests")

    return AlertRulesService(
        MemoryAlertRules(),
        MemoryAlertLog(),
        egress=policy,
        email_enabled=email,
        audit=AuditTrail(MemoryAuditStore(), retention_days=365),
        send_test=not_sent,
    )


@pytest.mark.parametrize(
    ("channel", "field"),
    [
        ({"kind": "webhook", "url": "http://169.254.169.254/latest"}, "channel.url"),
        ({"kind": "teams", "url": "https://10.0.0.5/hook"}, "channel.url"),
        ({"kind": "webhook", "url": "https://hooks.example/in", "secret_setting": "AzureWebJobsStorage"},
         "channel.secret_setting"),
        ({"kind": "email", "to": ["not an address"]}, "channel.to[0]"),
    ],
)  # fmt: skip
async def test_a_rule_whose_channel_breaks_the_endpoint_rules_is_refused(channel, field):
    with pytest.raises(RequestValidationError) as refused:
        await service().put("r", {"kind": "failure_count", "channel": channel}, actor=ADMIN)
    assert field in [error["field"] for error in refused.value.details["fields"]]


async def test_an_email_rule_is_refused_while_email_is_off():
    with pytest.raises(RequestValidationError, match="ALERT_EMAIL_BACKEND"):
        await service(email=False).put(
            "r", {"kind": "failure_count", "channel": {"kind": "email", "to": ["a@b.io"]}}, actor=ADMIN
        )


async def test_a_teams_url_is_shown_masked_and_a_masked_url_sent_back_keeps_the_stored_one():
    rules = service()
    url = "https://prod.workflows.example/workflows/1/triggers/manual/paths/invoke?api-version=1&sig=SECRET"
    created, _ = await rules.put(
        "teams", {"kind": "circuit_open", "channel": {"kind": "teams", "url": url}}, actor=ADMIN
    )
    shown = str(created.rule.channel.url)  # type: ignore[union-attr]
    assert "SECRET" not in shown

    await rules.put(
        "teams", {"kind": "circuit_open", "threshold": 2, "channel": {"kind": "teams", "url": shown}}, actor=ADMIN
    )

    stored = await rules._rules.get("teams")
    assert stored is not None and str(stored.rule.channel.url) == url  # type: ignore[union-attr]
    assert stored.rule.threshold == 2
