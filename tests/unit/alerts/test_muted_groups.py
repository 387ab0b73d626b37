"""Muted failure groups (issue 19) neither count towards failure alerts nor show as their samples."""

from __future__ import annotations

from shared.alerts.models import AlertKind
from shared.control.models import ControlState
from shared.failures.models import GroupMute
from tests.unit.alerts.test_evaluator import RecordingChannels, evaluator, rule
from tests.unit.failures.test_operator_tools import add_failure
from tests.unit.on_twins import seed_failures


async def test_failures_of_a_muted_group_do_not_fire_a_failure_count_alert(stores, fake_time):
    # Given a rule at 3 failures, and 3 failures of a group that is muted
    channels = RecordingChannels()
    await stores.alert_rules.put(rule("orders-failing", AlertKind.FAILURE_COUNT, integration="orders", threshold=3))
    alerts = evaluator(stores, fake_time, channels)
    failures = await seed_failures(stores, fake_time, 3)
    mute = GroupMute(at=fake_time.now(), by="operator", reason="known")
    await stores.control_states.create("orders", ControlState(muted={failures[0].group: mute}))

    # When the rule is evaluated
    result = await alerts.evaluate_all()

    # Then nothing fires
    assert result.fired == [] and channels.sent == []

    # When two failures of another kind and one more come in
    await add_failure(stores, fake_time, reason="HTTP 422 rejected")
    await add_failure(stores, fake_time, reason="HTTP 422 rejected")
    await add_failure(stores, fake_time, reason="HTTP 400 bad")
    result = await alerts.evaluate_all()

    # Then it fires on those three alone, and no sample is of the muted group
    assert result.fired == ["orders-failing"]
    payload = channels.sent[0].payload()
    assert payload["count"] == 3
    assert all("503" not in sample["summary"] for sample in payload["samples"])
