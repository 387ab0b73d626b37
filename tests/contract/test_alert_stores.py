"""AlertRules and AlertLog contract: a rule keeps its state when replaced, state writes are conditional, the
log lists newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.alerts.models import Alert, AlertKind, AlertRule, NoticeStatus, RuleState
from shared.errors import ConcurrencyConflict
from shared.ids import newest_first_id
from tests.contract.backends import Backend

BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rule(rule_id: str = "orders", **fields: object) -> AlertRule:
    return AlertRule.model_validate(
        {
            "id": rule_id,
            "kind": "failure_count",
            "channel": {"kind": "webhook", "url": "https://hooks.example/x"},
            **fields,
        }
    )


async def test_a_rule_is_created_then_replaced_and_keeps_its_state(backend: Backend):
    rules = backend.stores.alert_rules
    assert await rules.put(rule(threshold=3)) is True
    stored = await rules.get("orders")
    assert stored is not None and stored.state == RuleState()
    await rules.save_state("orders", RuleState(firing=True, last_fired_at=BASE), version=stored.version)

    assert await rules.put(rule(threshold=5)) is False

    again = await rules.get("orders")
    assert again is not None and again.rule.threshold == 5
    assert again.state == RuleState(firing=True, last_fired_at=BASE)


async def test_of_two_state_writes_with_the_same_version_only_the_first_wins(backend: Backend):
    rules = backend.stores.alert_rules
    await rules.put(rule())
    stored = await rules.get("orders")
    assert stored is not None

    await rules.save_state("orders", RuleState(last_count=1), version=stored.version)
    with pytest.raises(ConcurrencyConflict):
        await rules.save_state("orders", RuleState(last_count=2), version=stored.version)


async def test_a_state_write_after_the_rule_changed_is_a_conflict(backend: Backend):
    rules = backend.stores.alert_rules
    await rules.put(rule())
    stored = await rules.get("orders")
    assert stored is not None
    await rules.put(rule(threshold=9))

    with pytest.raises(ConcurrencyConflict):
        await rules.save_state("orders", RuleState(firing=True), version=stored.version)


async def test_rules_are_listed_and_deleted(backend: Backend):
    rules = backend.stores.alert_rules
    await rules.put(rule("a"))
    await rules.put(rule("b", kind=AlertKind.CIRCUIT_OPEN))

    assert sorted(stored.rule.id for stored in await rules.list()) == ["a", "b"]
    assert await rules.delete("a") is True
    assert await rules.delete("a") is False
    assert [stored.rule.id for stored in await rules.list()] == ["b"]


def alert(at: datetime, **fields: object) -> Alert:
    return Alert.model_validate(
        {"id": newest_first_id(at), "rule_id": "orders", "kind": "failure_count", "integration": "orders",
         "channel": "webhook", "fired_at": at, "count": 3, "threshold": 3, "window_minutes": 5, **fields}
    )  # fmt: skip


async def test_the_alert_log_lists_newest_first_and_keeps_updates(backend: Backend):
    log = backend.stores.alert_log
    older, newer = alert(BASE), alert(BASE + timedelta(minutes=1))
    await log.add(older)
    await log.add(newer)

    await log.update(
        older.model_copy(update={"resolved_at": BASE + timedelta(minutes=2), "fired_notice": NoticeStatus.SENT})
    )

    listed = await log.recent(limit=10)
    assert [a.id for a in listed] == [newer.id, older.id]
    assert listed[1].state == "resolved" and listed[1].fired_notice is NoticeStatus.SENT
    assert await log.recent(limit=1) == [newer]
    assert await log.get(older.id) == listed[1]
    assert await log.get(newest_first_id(BASE - timedelta(days=1))) is None
