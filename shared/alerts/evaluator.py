"""Evaluating alert rules: fire once when a condition starts to hold, tell when it clears, never twice at once.

An alert is an incident: it fires when the rule's condition holds and the rule is not already firing
(and its cooldown since the last firing is over: a flapping condition alerts at most once per
cooldown), and it resolves when the condition no longer holds, with a "resolved" notice. Of several
instances evaluating at once only one wins the rule's conditional state write, and only the winner
records and sends. Notices are sent after the state is saved: a crash in between leaves the alert
`pending`, and the timer sends pending and failed notices again (up to `MAX_SEND_ATTEMPTS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.alerts.channels import AlertChannels, Notification
from shared.alerts.conditions import AlertSources
from shared.alerts.models import (
    Alert,
    AlertKind,
    AlertRule,
    Measurement,
    Notice,
    NoticeStatus,
    holds,
    in_cooldown,
)
from shared.alerts.ports import AlertLog, AlertRules, StoredRule
from shared.errors import ConcurrencyConflict, NotFound
from shared.ids import newest_first_id
from shared.logs import log_event
from shared.values import utc_now

logger = logging.getLogger("rebound.alerts")

MAX_SEND_ATTEMPTS = 5
#: A notice still `pending` this long after its alert was recorded was lost with its instance: send it again.
PENDING_GRACE = timedelta(minutes=2)
#: Alerts the timer looks through for notices to send again.
RECENT_ALERTS = 100


@dataclass
class EvaluationReport:
    evaluated: int = 0
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    resent: int = 0


class AlertEvaluator:
    def __init__(
        self,
        *,
        rules: AlertRules,
        log: AlertLog,
        sources: AlertSources,
        channels: AlertChannels,
        portal_url: Callable[[str | None], str | None],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._rules = rules
        self._log = log
        self._sources = sources
        self._channels = channels
        self._portal_url = portal_url
        self._clock = clock

    async def evaluate_all(self) -> EvaluationReport:
        """The timer: every enabled rule, then the notices that did not go out."""
        report = await self._evaluate([stored for stored in await self._rules.list() if stored.rule.enabled])
        report.resent = await self.resend_notices()
        return report

    async def evaluate_event(self, kind: AlertKind, integration: str | None) -> EvaluationReport:
        """An event: the enabled rules that watch this kind and integration."""
        matching = [
            stored
            for stored in await self._rules.list()
            if stored.rule.enabled
            and stored.rule.kind is kind
            and (stored.rule.integration is None or stored.rule.integration == integration)
        ]
        return await self._evaluate(matching)

    async def _evaluate(self, rules: list[StoredRule]) -> EvaluationReport:
        report = EvaluationReport()
        for stored in rules:
            report.evaluated += 1
            try:
                outcome = await self._evaluate_one(stored)
            except ConcurrencyConflict:
                continue  # another instance decided this rule at the same moment
            if outcome == Notice.FIRED:
                report.fired.append(stored.rule.id)
            elif outcome == Notice.RESOLVED:
                report.resolved.append(stored.rule.id)
        return report

    async def _evaluate_one(self, stored: StoredRule) -> Notice | None:
        rule, state = stored.rule, stored.state
        now = self._clock()
        measurement = await self._sources.measure(rule, now)
        if holds(rule, measurement) and not state.firing and not in_cooldown(rule, state, now):
            alert = self._new_alert(rule, measurement, now)
            firing = state.model_copy(
                update={"firing": True, "last_fired_at": now, "last_alert_id": alert.id,
                        "last_count": measurement.count, "last_evaluated_at": now}
            )  # fmt: skip
            await self._rules.save_state(rule.id, firing, version=stored.version)
            await self._log.add(alert)
            log_event(
                logger, "alert.fired", level=logging.WARNING, rule=rule.id, kind=rule.kind.value,
                integration=rule.integration, count=measurement.count,
            )  # fmt: skip
            await self._notify(rule, alert, Notice.FIRED)
            return Notice.FIRED
        if not holds(rule, measurement) and state.firing:
            cleared = state.model_copy(
                update={"firing": False, "last_resolved_at": now, "last_count": measurement.count,
                        "last_evaluated_at": now}
            )  # fmt: skip
            await self._rules.save_state(rule.id, cleared, version=stored.version)
            log_event(logger, "alert.resolved", rule=rule.id, kind=rule.kind.value, integration=rule.integration)
            fired = await self._log.get(state.last_alert_id) if state.last_alert_id else None
            if fired is not None:
                resolved = fired.model_copy(update={"resolved_at": now, "resolved_notice": NoticeStatus.PENDING})
                await self._log.update(resolved)
                await self._notify(rule, resolved, Notice.RESOLVED)
            return Notice.RESOLVED
        return None

    def _new_alert(self, rule: AlertRule, measurement: Measurement, now: datetime, *, test: bool = False) -> Alert:
        return Alert(
            id=newest_first_id(now),
            rule_id=rule.id,
            kind=rule.kind,
            integration=rule.integration,
            channel=rule.channel.kind,
            fired_at=now,
            count=measurement.count,
            threshold=rule.threshold,
            window_minutes=rule.window_minutes if rule.kind.windowed else None,
            samples=measurement.samples,
            test=test,
        )

    async def _notify(self, rule: AlertRule, alert: Alert, notice: Notice) -> Alert:
        url = self._portal_url(alert.integration)
        error = await self._channels.send(Notification(notice, rule, alert, url))
        status = NoticeStatus.SENT if error is None else NoticeStatus.FAILED
        field_name = "resolved_notice" if notice is Notice.RESOLVED else "fired_notice"
        alert = alert.model_copy(
            update={field_name: status, "send_attempts": alert.send_attempts + 1, "last_error": error}
        )
        await self._log.update(alert)
        return alert

    async def resend_notices(self) -> int:
        """Send again the notices that failed (or were lost with their instance), up to MAX_SEND_ATTEMPTS each."""
        now = self._clock()
        rules = {stored.rule.id: stored.rule for stored in await self._rules.list()}
        resent = 0
        for alert in await self._log.recent(limit=RECENT_ALERTS):
            rule = rules.get(alert.rule_id)
            if rule is None or alert.test or alert.send_attempts >= MAX_SEND_ATTEMPTS:
                continue
            for notice, status in ((Notice.FIRED, alert.fired_notice), (Notice.RESOLVED, alert.resolved_notice)):
                stale = status is NoticeStatus.PENDING and now - alert.fired_at > PENDING_GRACE
                if status is NoticeStatus.FAILED or stale:
                    alert = await self._notify(rule, alert, notice)
                    resent += 1
        return resent

    async def send_test(self, rule_id: str) -> Alert:
        """Send a test notice through the rule's channel now (no condition behind it); recorded as a test alert."""
        stored = await self._rules.get(rule_id)
        if stored is None:
            raise NotFound(f"alert rule {rule_id!r} does not exist", details={"rule_id": rule_id})
        now = self._clock()
        measurement = await self._sources.measure(stored.rule, now)
        alert = self._new_alert(stored.rule, measurement, now, test=True)
        await self._log.add(alert)
        return await self._notify(stored.rule, alert, Notice.TEST)
