"""Alert rules in `alertrules` (the rule and its evaluation state), alerts that fired in `alerts`.

`alertrules`: PK = "rule", RK = rule id; `Rule` and `State` as JSON. Replacing a rule merges `Rule`
only (its state stays); the evaluator's state writes merge `State` only, conditional on the ETag, so
of two instances evaluating at once one wins and the other learns it lost.
`alerts`: PK = "alert", RK = the alert id (inverted time: newest first), the alert as JSON and a few
columns for Storage Explorer. Alerts are few (one per rule per incident), so one partition suffices.
"""

from __future__ import annotations

from shared.alerts.models import Alert, AlertRule, RuleState
from shared.alerts.ports import StoredRule
from shared.errors import ConcurrencyConflict
from shared.storage.cursors import version_of
from shared.storage.tables import Entity, Table
from shared.tokens import Version

_RULES = "rule"
_ALERTS = "alert"
_MAX_CONFLICTS = 8


class TableAlertRules:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def get(self, rule_id: str) -> StoredRule | None:
        row = await self._table.get(_RULES, rule_id)
        return None if row is None else _stored(row)

    async def put(self, rule: AlertRule) -> bool:
        for _ in range(_MAX_CONFLICTS):
            row = await self._table.get(_RULES, rule.id)
            try:
                if row is None:
                    await self._table.insert(
                        {"PartitionKey": _RULES, "RowKey": rule.id, "Rule": rule.model_dump_json(),
                         "State": RuleState().model_dump_json(), "Kind": rule.kind.value}
                    )  # fmt: skip
                    return True
                await self._table.update(
                    {
                        "PartitionKey": _RULES,
                        "RowKey": rule.id,
                        "Rule": rule.model_dump_json(),
                        "Kind": rule.kind.value,
                    },
                    etag=version_of(row),
                    merge=True,
                )
                return False
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"alert rule {rule.id!r}: too much contention")

    async def delete(self, rule_id: str) -> bool:
        row = await self._table.get(_RULES, rule_id)
        if row is None:
            return False
        await self._table.delete(_RULES, rule_id)
        return True

    async def list(self) -> list[StoredRule]:
        return [_stored(row) async for row in self._table.query("PartitionKey eq @pk", {"pk": _RULES})]

    async def save_state(self, rule_id: str, state: RuleState, *, version: Version) -> Version:
        row = {"PartitionKey": _RULES, "RowKey": rule_id, "State": state.model_dump_json()}
        return Version(await self._table.update(row, etag=version, merge=True))


def _stored(row: Entity) -> StoredRule:
    return StoredRule(
        AlertRule.model_validate_json(row["Rule"]), RuleState.model_validate_json(row["State"]), version_of(row)
    )


class TableAlertLog:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def add(self, alert: Alert) -> None:
        await self._table.insert(_alert_row(alert))

    async def get(self, alert_id: str) -> Alert | None:
        row = await self._table.get(_ALERTS, alert_id)
        return None if row is None else Alert.model_validate_json(row["Alert"])

    async def update(self, alert: Alert) -> None:
        await self._table.upsert(_alert_row(alert))

    async def recent(self, *, limit: int) -> list[Alert]:
        page = await self._table.query_page("PartitionKey eq @pk", {"pk": _ALERTS}, page_size=limit)
        return [Alert.model_validate_json(row["Alert"]) for row in page.items[:limit]]


def _alert_row(alert: Alert) -> Entity:
    return {
        "PartitionKey": _ALERTS,
        "RowKey": alert.id,
        "Alert": alert.model_dump_json(),
        "RuleId": alert.rule_id,
        "Kind": alert.kind.value,
        "State": alert.state,
    }
