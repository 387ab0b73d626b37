"""Twins for alerts: the rules with their state and the log of alerts (the twins of `TableAlertRules`
and `TableAlertLog`)."""

from __future__ import annotations

import itertools

from shared.alerts.models import Alert, AlertRule, RuleState
from shared.alerts.ports import StoredRule
from shared.errors import ConcurrencyConflict
from shared.tokens import Version
from tests.twins.faults import Twin


class MemoryAlertRules(Twin):
    """Implements `shared.alerts.ports.AlertRules`: a version per write, `ConcurrencyConflict` on a stale one."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, tuple[str, str, str]] = {}
        self._versions = itertools.count(1)

    async def get(self, rule_id: str) -> StoredRule | None:
        async with self.call("get"):
            return self._stored(rule_id)

    async def put(self, rule: AlertRule) -> bool:
        async with self.call("put"):
            row = self._rows.get(rule.id)
            state = row[1] if row else RuleState().model_dump_json()
            self._rows[rule.id] = (rule.model_dump_json(), state, str(next(self._versions)))
            return row is None

    async def delete(self, rule_id: str) -> bool:
        async with self.call("delete"):
            return self._rows.pop(rule_id, None) is not None

    async def list(self) -> list[StoredRule]:
        async with self.call("list"):
            return [stored for rule_id in sorted(self._rows) if (stored := self._stored(rule_id))]

    async def save_state(self, rule_id: str, state: RuleState, *, version: Version) -> Version:
        async with self.call("save_state"):
            row = self._rows.get(rule_id)
            if row is None or row[2] != version:
                raise ConcurrencyConflict(f"alertrules: {rule_id} changed")
            new_version = str(next(self._versions))
            self._rows[rule_id] = (row[0], state.model_dump_json(), new_version)
            return Version(new_version)

    def _stored(self, rule_id: str) -> StoredRule | None:
        row = self._rows.get(rule_id)
        if row is None:
            return None
        return StoredRule(AlertRule.model_validate_json(row[0]), RuleState.model_validate_json(row[1]), Version(row[2]))


class MemoryAlertLog(Twin):
    """Implements `shared.alerts.ports.AlertLog`."""

    def __init__(self) -> None:
        super().__init__()
        self._alerts: dict[str, str] = {}

    async def add(self, alert: Alert) -> None:
        async with self.call("add"):
            if alert.id in self._alerts:
                raise ConcurrencyConflict(f"alerts: {alert.id} exists")
            self._alerts[alert.id] = alert.model_dump_json()

    async def get(self, alert_id: str) -> Alert | None:
        async with self.call("get"):
            text = self._alerts.get(alert_id)
            return None if text is None else Alert.model_validate_json(text)

    async def update(self, alert: Alert) -> None:
        async with self.call("update"):
            self._alerts[alert.id] = alert.model_dump_json()

    async def recent(self, *, limit: int) -> list[Alert]:
        async with self.call("recent"):
            return [Alert.model_validate_json(self._alerts[key]) for key in sorted(self._alerts)[:limit]]
