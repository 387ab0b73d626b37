"""Alert rules on the twins: each kind fires once per incident (at most once per cooldown) and resolves."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import pytest

from shared.alerts.channels import Notification
from shared.alerts.conditions import AlertSources
from shared.alerts.evaluator import AlertEvaluator
from shared.alerts.models import AlertKind, AlertRule, Notice, NoticeStatus
from shared.alerts.signals import AlertSignals, SignallingFailures, parse_signal
from shared.control.models import BreakerPhase, BreakerState, ControlState
from shared.failures.models import FailureOrigin
from shared.jobs.models import Job, JobAction, JobSelection, JobState
from shared.pickup.models import PickupOutcome, PickupState
from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import make_config, seed_failures

WEBHOOK = {"kind": "webhook", "url": "https://hooks.example/rebound"}


@dataclass
class RecordingChannels:
    """Stands in for AlertChannels: records every notice; `failing` makes sends fail."""

    sent: list[Notification] = field(default_factory=list)
    failing: bool = False

    async def send(self, notification: Notification) -> str | None:
        self.sent.append(notification)
        return "HTTP 500" if self.failing else None

    def notices(self) -> list[tuple[str, Notice]]:
        return [(n.rule.id, n.notice) for n in self.sent]


def rule(rule_id: str, kind: AlertKind, **fields: object) -> AlertRule:
    return AlertRule.model_validate({"id": rule_id, "kind": kind, "channel": WEBHOOK, **fields})


def evaluator(stores: MemoryStores, time: FakeTime, channels: RecordingChannels) -> AlertEvaluator:
    sources = AlertSources(
        failures=stores.failures,
        integrations=stores.integrations,
        control_states=stores.control_states,
        jobs=stores.jobs,
        recovery=[stores.recovery, *stores.poison],
        pickups=stores.pickups,
    )
    return AlertEvaluator(
        rules=stores.alert_rules,
        log=stores.alert_log,
        sources=sources,
        channels=channels,  # type: ignore[arg-type]
        portal_url=lambda integration: f"https://rebound.example/api/portal#/integrations/{integration}",
        clock=time.now,
    )


@pytest.fixture
def channels() -> RecordingChannels:
    return RecordingChannels()


async def test_failure_count_fires_once_while_it_holds_and_resolves_when_the_failures_age_out(
    stores, fake_time, channels
):
    # Given a rule: 3 failures of "orders" within 5 minutes
    await stores.alert_rules.put(rule("orders-failing", AlertKind.FAILURE_COUNT, integration="orders", threshold=3))
    alerts = evaluator(stores, fake_time, channels)
    await seed_failures(stores, fake_time, 3)

    # When the timer evaluates twice while the failures are in the window
    first = await alerts.evaluate_all()
    await seed_failures(stores, fake_time, 2)
    second = await alerts.evaluate_all()

    # Then one alert fired, with the count, up to five samples without content, and a portal link
    assert (first.fired, second.fired) == (["orders-failing"], [])
    [notice] = channels.sent
    payload = notice.payload()
    assert (payload["count"], payload["integration"], payload["window_minutes"]) == (3, "orders", 5)
    assert len(payload["samples"]) == 3 and all("body" not in json.dumps(s) for s in payload["samples"])
    assert payload["portal_url"].endswith("#/integrations/orders")

    # When the window moves past every failure
    fake_time.advance(6 * 60)
    await alerts.evaluate_all()

    # Then a resolved notice went out and the alert shows resolved, both notices sent
    assert channels.notices() == [("orders-failing", Notice.FIRED), ("orders-failing", Notice.RESOLVED)]
    [alert] = await stores.alert_log.recent(limit=10)
    assert alert.state == "resolved"
    assert (alert.fired_notice, alert.resolved_notice) == (NoticeStatus.SENT, NoticeStatus.SENT)


async def test_a_condition_that_returns_within_the_cooldown_does_not_alert_again(stores, fake_time, channels):
    await stores.alert_rules.put(
        rule("any", AlertKind.FAILURE_COUNT, threshold=1, window_minutes=1, cooldown_minutes=30)
    )
    alerts = evaluator(stores, fake_time, channels)
    await seed_failures(stores, fake_time, 1)
    await alerts.evaluate_all()
    fake_time.advance(120)
    await alerts.evaluate_all()  # resolved

    # When it fails again ten minutes later, and again after the cooldown
    fake_time.advance(600)
    await seed_failures(stores, fake_time, 1)
    again = await alerts.evaluate_all()
    fake_time.advance(30 * 60)
    await seed_failures(stores, fake_time, 1)
    later = await alerts.evaluate_all()

    # Then only the one after the cooldown alerted
    assert (again.fired, later.fired) == ([], ["any"])


async def test_catastrophic_counts_only_catastrophic_failures(stores, fake_time, channels):
    await stores.alert_rules.put(rule("cat", AlertKind.CATASTROPHIC))
    alerts = evaluator(stores, fake_time, channels)
    await seed_failures(stores, fake_time, 4)
    assert (await alerts.evaluate_all()).fired == []

    await seed_failures(stores, fake_time, 1, origin=FailureOrigin.CATASTROPHIC)

    assert (await alerts.evaluate_all()).fired == ["cat"]


async def test_circuit_open_fires_while_a_breaker_is_open_and_resolves_when_it_closes(stores, fake_time, channels):
    await stores.alert_rules.put(rule("breakers", AlertKind.CIRCUIT_OPEN))
    alerts = evaluator(stores, fake_time, channels)
    open_ = ControlState(breaker=BreakerState(phase=BreakerPhase.OPEN, opened_at=fake_time.now(), failures=5))
    version = await stores.control_states.create("orders", open_)

    assert (await alerts.evaluate_event(AlertKind.CIRCUIT_OPEN, "orders")).fired == ["breakers"]
    await stores.control_states.replace("orders", ControlState(), version=version)
    assert (await alerts.evaluate_all()).resolved == ["breakers"]


async def test_job_failed_counts_jobs_that_ended_failed_or_with_failed_items(stores, fake_time, channels):
    await stores.integrations.put(make_config("orders"))
    await stores.alert_rules.put(rule("jobs", AlertKind.JOB_FAILED, integration="orders"))
    alerts = evaluator(stores, fake_time, channels)
    job = Job(
        integration="orders",
        action=JobAction.RETRY,
        selection=JobSelection(all=True),
        state=JobState.COMPLETED,
        processed=3,
        succeeded=2,
        failed=1,
        created_at=fake_time.now(),
        finished_at=fake_time.now(),
    )
    await stores.jobs.create(job)

    assert (await alerts.evaluate_all()).fired == ["jobs"]
    assert "1 of 3 items failed" in channels.sent[0].alert.samples[0].summary


async def test_recovery_backlog_counts_parked_and_poisoned_messages(stores, fake_time, channels):
    await stores.alert_rules.put(rule("backlog", AlertKind.RECOVERY_BACKLOG, threshold=2))
    alerts = evaluator(stores, fake_time, channels)
    stores.inbound_poison.put("{}")
    assert (await alerts.evaluate_all()).fired == []

    await stores.recovery.send("{}", delay_s=0)

    assert (await alerts.evaluate_all()).fired == ["backlog"]
    assert channels.sent[0].alert.count == 2


async def test_pickup_failing_fires_while_a_sources_last_run_failed_and_resolves_after_a_good_run(
    stores, fake_time, channels
):
    source = {"kind": "http_poll", "url": "https://upstream.example/out", "interval_seconds": 60}
    await stores.integrations.put(make_config("orders", source=source))
    await stores.alert_rules.put(rule("pickup", AlertKind.PICKUP_FAILING))
    alerts = evaluator(stores, fake_time, channels)
    failed = PickupState(last_outcome=PickupOutcome.FAILED, consecutive_failures=0, last_error="connection refused")
    version = await stores.pickups.create("orders", failed)

    assert (await alerts.evaluate_all()).fired == ["pickup"]
    assert "connection refused" in channels.sent[0].alert.samples[0].summary
    await stores.pickups.replace("orders", PickupState(last_outcome=PickupOutcome.OK), version=version)
    assert (await alerts.evaluate_all()).resolved == ["pickup"]


async def test_of_two_instances_evaluating_at_once_only_one_alerts(stores, fake_time, channels):
    await stores.alert_rules.put(rule("any", AlertKind.FAILURE_COUNT))
    await seed_failures(stores, fake_time, 1)
    first, second = evaluator(stores, fake_time, channels), evaluator(stores, fake_time, channels)

    reports = await asyncio.gather(first.evaluate_all(), second.evaluate_all())

    assert sorted(len(r.fired) for r in reports) == [0, 1]
    assert len(channels.sent) == 1


async def test_a_failed_notice_is_marked_and_sent_again_by_the_timer(stores, fake_time, channels):
    await stores.alert_rules.put(rule("any", AlertKind.FAILURE_COUNT))
    await seed_failures(stores, fake_time, 1)
    alerts = evaluator(stores, fake_time, channels)
    channels.failing = True
    await alerts.evaluate_all()
    [alert] = await stores.alert_log.recent(limit=1)
    assert (alert.fired_notice, alert.last_error) == (NoticeStatus.FAILED, "HTTP 500")

    channels.failing = False
    report = await alerts.evaluate_all()

    [alert] = await stores.alert_log.recent(limit=1)
    assert report.resent == 1 and alert.fired_notice is NoticeStatus.SENT


async def test_a_disabled_rule_is_not_evaluated(stores, fake_time, channels):
    await stores.alert_rules.put(rule("off", AlertKind.FAILURE_COUNT, enabled=False))
    await seed_failures(stores, fake_time, 1)

    assert (await evaluator(stores, fake_time, channels).evaluate_all()).evaluated == 0


async def test_send_test_alert_goes_out_at_once_marked_as_a_test(stores, fake_time, channels):
    await stores.alert_rules.put(rule("any", AlertKind.FAILURE_COUNT, threshold=100))

    alert = await evaluator(stores, fake_time, channels).send_test("any")

    assert alert.test and alert.fired_notice is NoticeStatus.SENT
    assert channels.notices() == [("any", Notice.TEST)]
    assert channels.sent[0].payload()["test"] is True


def another_id(failure_id: str, n: int) -> str:
    """The n-th id that differs from `failure_id` in its last hex digit only (never the id itself)."""
    digits = [digit for digit in "0123456789abcdef" if digit != failure_id[-1]]
    return failure_id[:-1] + digits[n]


async def test_a_recorded_failure_signals_the_rules_that_watch_it(stores, fake_time):
    # Given a rule on "orders" and a failure sink that signals
    await stores.alert_rules.put(rule("orders", AlertKind.FAILURE_COUNT, integration="orders"))
    signals = AlertSignals(stores.alert_rules, stores.alert_events, monotonic=fake_time.monotonic)
    [failure] = await seed_failures(stores, fake_time, 1, integration="other")
    sink = SignallingFailures(stores.failures, signals)

    # When a failure of another integration, then two of "orders", are recorded
    await sink.add(failure.model_copy(update={"id": another_id(failure.id, 0)}))
    [mine] = await seed_failures(stores, fake_time, 1)
    await sink.add(mine.model_copy(update={"id": another_id(mine.id, 0)}))
    await sink.add(mine.model_copy(update={"id": another_id(mine.id, 1)}))
    await signals.settle()

    # Then one signal went out for "orders" (the second within the debounce)
    [message] = stores.alert_events.drain()
    assert parse_signal(message.body) == (AlertKind.FAILURE_COUNT, "orders")


def test_a_recovery_backlog_rule_for_one_integration_is_refused():
    with pytest.raises(ValueError, match="whole app"):
        rule("x", AlertKind.RECOVERY_BACKLOG, integration="orders")
