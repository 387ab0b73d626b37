"""What alerts need from storage: the rules with their state, and the log of alerts that fired.

On Azure: `TableAlertRules` and `TableAlertLog` (shared/storage/alert_tables.py, tables `alertrules`
and `alerts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.alerts.models import Alert, AlertRule, RuleState
from shared.tokens import Version


@dataclass(frozen=True)
class StoredRule:
    rule: AlertRule
    state: RuleState
    version: Version


class AlertRules(Protocol):
    async def get(self, rule_id: str) -> StoredRule | None: ...

    async def put(self, rule: AlertRule) -> bool:
        """Create or replace the rule, keeping its state; True when it did not exist before."""
        ...

    async def delete(self, rule_id: str) -> bool:
        """True when the rule existed."""
        ...

    async def list(self) -> list[StoredRule]: ...

    async def save_state(self, rule_id: str, state: RuleState, *, version: Version) -> Version:
        """Replace the state if the rule is unchanged since read; `ConcurrencyConflict` otherwise (or when gone)."""
        ...


class AlertLog(Protocol):
    async def add(self, alert: Alert) -> None: ...

    async def get(self, alert_id: str) -> Alert | None: ...

    async def update(self, alert: Alert) -> None:
        """Replace the stored alert (its notices went out, it resolved)."""
        ...

    async def recent(self, *, limit: int) -> list[Alert]:
        """The newest alerts first."""
        ...
