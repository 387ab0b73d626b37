"""Layer 1, endpoint retry, against a scripted sender and a fake clock (no waiting)."""

from __future__ import annotations

import random

from shared.config.models import ErrorAction, ErrorRule
from shared.delivery.adapters.base import Delivery
from shared.delivery.endpoint_retry import deliver_with_endpoint_retry
from shared.delivery.retry import EndpointRetryPolicy, Verdict
from shared.errors import PermanentDeliveryError, TransientDeliveryError
from tests.twins.clock import FakeTime
from tests.twins.senders import ScriptedSender, ok, status

DELIVERY = Delivery(message_id="m1", integration="orders", body=b"{}")


async def run(sender: ScriptedSender, time: FakeTime, policy: EndpointRetryPolicy | None = None, rules=()):
    return await deliver_with_endpoint_retry(
        sender,
        DELIVERY,
        rules=list(rules),
        policy=policy or EndpointRetryPolicy(max_attempts=4, base_delay_s=2, window_s=60),
        engine_attempt=1,
        rng=random.Random(0),
        sleep=time.sleep,
        now=time.now,
        monotonic=time.monotonic,
    )


async def test_success_after_two_failures_takes_three_attempts_with_growing_pauses():
    time = FakeTime()
    sender = ScriptedSender([status(503), status(502), ok()])

    result = await run(sender, time)

    assert result.verdict is Verdict.SUCCESS
    assert [a.endpoint_attempt for a in result.attempts] == [1, 2, 3]
    assert len(time.sleeps) == 2 and time.sleeps[0] < time.sleeps[1]


async def test_bad_request_is_tried_once():
    time = FakeTime()
    sender = ScriptedSender([status(400, detail="missing field 'sku'")])

    result = await run(sender, time)

    assert result.verdict is Verdict.PERMANENT
    assert len(sender.sent) == 1
    assert result.reason == "HTTP 400: missing field 'sku'"
    assert result.status_code == 400


async def test_persistent_503_uses_every_endpoint_attempt_inside_the_window():
    time = FakeTime()
    sender = ScriptedSender([status(503)])

    result = await run(sender, time)

    assert result.verdict is Verdict.TRANSIENT
    assert len(sender.sent) == 4
    assert time.elapsed_s <= 60


async def test_429_retry_after_is_honoured():
    time = FakeTime()
    sender = ScriptedSender([status(429, retry_after_s=7), ok()])

    result = await run(sender, time)

    assert result.verdict is Verdict.SUCCESS
    assert time.sleeps == [7]


async def test_throttling_that_outlasts_the_window_ends_as_throttled():
    time = FakeTime()
    sender = ScriptedSender([status(429, retry_after_s=300)])

    result = await run(sender, time)

    assert result.verdict is Verdict.THROTTLED
    assert len(sender.sent) == 1
    assert result.retry_after_s == 300


async def test_transport_errors_are_transient_and_retried():
    time = FakeTime()
    sender = ScriptedSender([TransientDeliveryError("ConnectError: connection refused"), ok()])

    result = await run(sender, time)

    assert result.verdict is Verdict.SUCCESS
    assert result.attempts[0].outcome == "ConnectError: connection refused"


async def test_permanent_adapter_error_stops_at_once():
    time = FakeTime()
    sender = ScriptedSender([PermanentDeliveryError("queue does not exist")])

    result = await run(sender, time)

    assert result.verdict is Verdict.PERMANENT
    assert len(sender.sent) == 1


async def test_redirect_rule_returns_at_once_for_the_fallback():
    time = FakeTime()
    sender = ScriptedSender([status(503)])
    rules = [ErrorRule(status_min=503, status_max=503, action=ErrorAction.REDIRECT)]

    result = await run(sender, time, rules=rules)

    assert result.verdict is Verdict.REDIRECT
    assert len(sender.sent) == 1


async def test_slow_attempts_count_against_the_window():
    # Given a receiver that takes 25 s per attempt and fails
    time = FakeTime()

    class Slow(ScriptedSender):
        async def send(self, delivery):
            time.advance(25)
            return await super().send(delivery)

    sender = Slow([status(503)])

    # When endpoint retry runs with a 60 s window
    result = await run(sender, time, EndpointRetryPolicy(max_attempts=10, base_delay_s=1, window_s=60))

    # Then it stops before a third attempt would cross the window
    assert len(sender.sent) == 2
    assert result.verdict is Verdict.TRANSIENT
