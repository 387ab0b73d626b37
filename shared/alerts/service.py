"""Alert rule use cases behind /api/alert-rules and /api/alerts: validated against the egress policy.

A channel URL often carries its own credential (a Teams Workflows URL has `sig=` in its query), so
reads show it with credential parts masked (shared.sensitive.safe_url); a PUT that sends back the
masked URL keeps the stored one, so a rule read and written back is not broken by its own mask.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import AnyHttpUrl

from shared.alerts.models import Alert, AlertRule, EmailChannel, RuleView, TeamsChannel, WebhookChannel
from shared.alerts.ports import AlertLog, AlertRules
from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.egress import EgressPolicy
from shared.errors import FieldError, NotFound, RequestValidationError
from shared.sensitive import safe_url
from shared.validation import parse_model

MAX_ALERTS = 200


class AlertRuleNotFound(NotFound):
    code = "alert_rule_not_found"

    def __init__(self, rule_id: str) -> None:
        super().__init__(f"alert rule {rule_id!r} does not exist", details={"rule_id": rule_id})


class AlertRulesService:
    def __init__(
        self,
        rules: AlertRules,
        log: AlertLog,
        *,
        egress: EgressPolicy,
        email_enabled: bool,
        audit: AuditTrail,
        send_test: Callable[[str], Awaitable[Alert]],
    ) -> None:
        self._rules = rules
        self._log = log
        self._audit = audit
        self._send_test = send_test
        self._egress = egress
        self._email_enabled = email_enabled

    async def put(self, rule_id: str, body: Any, *, actor: Actor) -> tuple[RuleView, bool]:
        if not isinstance(body, dict):
            raise RequestValidationError(
                "invalid body: expected a JSON object", [{"field": "body", "message": "expected a JSON object"}]
            )
        if "id" in body and body["id"] != rule_id:
            raise RequestValidationError(
                "invalid body: id does not match the route",
                [{"field": "id", "message": f"must equal the rule in the route ({rule_id!r})"}],
            )
        rule = parse_model(AlertRule, {**body, "id": rule_id})
        existing = await self._rules.get(rule_id)
        rule = keep_masked_url(rule, existing.rule if existing else None)
        problems = self._problems(rule)
        if problems:
            summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
            raise RequestValidationError(f"invalid body: {summary}", problems)
        created = await self._rules.put(rule)
        details = {"created": created, "kind": rule.kind.value, "channel": rule.channel.kind}
        await self._audit.record(actor, AuditAction.ALERT_RULE_PUT, integration=rule.integration, target=rule_id,
                                 details=details)  # fmt: skip
        return await self.get(rule_id), created

    async def get(self, rule_id: str) -> RuleView:
        stored = await self._rules.get(rule_id)
        if stored is None:
            raise AlertRuleNotFound(rule_id)
        return RuleView(rule=masked(stored.rule), state=stored.state)

    async def delete(self, rule_id: str, *, actor: Actor) -> None:
        if not await self._rules.delete(rule_id):
            raise AlertRuleNotFound(rule_id)
        await self._audit.record(actor, AuditAction.ALERT_RULE_DELETE, target=rule_id)

    async def test(self, rule_id: str, *, actor: Actor) -> Alert:
        """ "Send test alert": through the rule's channel now; the answer says whether it went out."""
        if await self._rules.get(rule_id) is None:
            raise AlertRuleNotFound(rule_id)
        alert = await self._send_test(rule_id)
        sent = {"notice": alert.fired_notice.value, "error": alert.last_error}
        await self._audit.record(actor, AuditAction.ALERT_RULE_TEST, target=rule_id, details=sent)
        return alert

    async def alerts(self, *, limit: int = MAX_ALERTS) -> list[Alert]:
        return await self._log.recent(limit=limit)

    async def views(self) -> list[RuleView]:
        return [RuleView(rule=masked(stored.rule), state=stored.state) for stored in await self._rules.list()]

    def _problems(self, rule: AlertRule) -> list[FieldError]:
        problems: list[FieldError] = []
        channel = rule.channel
        if isinstance(channel, WebhookChannel | TeamsChannel):
            refused = self._egress.check_url(str(channel.url))
            if refused is not None:
                problems.append({"field": "channel.url", "message": refused})
        if isinstance(channel, WebhookChannel) and channel.secret_setting is not None:
            refused = self._egress.check_setting_reference(channel.secret_setting)
            if refused is not None:
                problems.append({"field": "channel.secret_setting", "message": refused.replace("references", "names")})
        if isinstance(channel, EmailChannel) and not self._email_enabled:
            problems.append({"field": "channel.kind", "message": EMAIL_OFF})
        return problems


EMAIL_OFF = "email alerts are off: set ALERT_EMAIL_BACKEND to smtp or acs"


def keep_masked_url(rule: AlertRule, existing: AlertRule | None) -> AlertRule:
    """A channel URL sent back as GET showed it (credential parts masked) keeps the stored URL."""
    channel, old = rule.channel, existing.channel if existing else None
    if (
        isinstance(channel, WebhookChannel | TeamsChannel)
        and isinstance(old, WebhookChannel | TeamsChannel)
        and str(channel.url) != str(old.url)
        and str(channel.url) == safe_url(str(old.url))
    ):
        return rule.model_copy(update={"channel": channel.model_copy(update={"url": old.url})})
    return rule


def masked(rule: AlertRule) -> AlertRule:
    """The rule as shown: credential parts of a channel URL masked."""
    channel = rule.channel
    if isinstance(channel, WebhookChannel | TeamsChannel):
        shown = safe_url(str(channel.url))
        if shown != str(channel.url):
            return rule.model_copy(update={"channel": channel.model_copy(update={"url": AnyHttpUrl(shown)})})
    return rule
