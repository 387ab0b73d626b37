"""Integration config use cases behind /api/integrations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.config.models import Endpoint, HttpEndpoint, IntegrationConfig
from shared.config.ports import IntegrationStore
from shared.egress import EgressPolicy
from shared.errors import EntityTooLarge, FieldError, IntegrationNotFound, PayloadTooLarge, RequestValidationError
from shared.pickup.validation import SourceRules, source_problems
from shared.validation import parse_model

#: What GET shows beside a config and PUT ignores: pause and resume have their own routes.
READ_ONLY_FIELDS = ("paused",)


class IntegrationConfigs:
    """Integration config use cases behind /api/integrations: validated against the egress policy, and
    every change recorded in the audit trail as the actor's."""

    def __init__(
        self,
        store: IntegrationStore,
        *,
        egress: EgressPolicy,
        audit: AuditTrail,
        source_rules: SourceRules | None = None,
    ) -> None:
        self._store = store
        self._egress = egress
        self._audit = audit
        self._source_rules = source_rules or SourceRules(min_interval_s=1)

    async def save(self, integration_id: str, body: Any, *, actor: Actor) -> tuple[IntegrationConfig, bool]:
        """Validate and store a config for `integration_id`; returns (config, created).

        The id comes from the route; a body `id` that disagrees is a field error, not a silent rename.
        Endpoints must also pass the egress policy: no literal address it refuses, no reference to an
        app setting outside ENDPOINT_SECRET_SETTINGS; so must a pickup source, which must besides run no
        more often than MIN_PICKUP_INTERVAL_S allows and read none of Rebound's own queues or containers.
        """
        if not isinstance(body, dict):
            raise RequestValidationError(
                "invalid body: expected a JSON object", [{"field": "body", "message": "expected a JSON object"}]
            )
        # Shown by GET beside the config, kept apart from it: a config sent back as read is taken.
        body = {key: value for key, value in body.items() if key not in READ_ONLY_FIELDS}
        if "id" in body and body["id"] != integration_id:
            raise RequestValidationError(
                "invalid body: id does not match the route",
                [{"field": "id", "message": f"must equal the integration in the route ({integration_id!r})"}],
            )
        config = parse_model(IntegrationConfig, {**body, "id": integration_id})
        refused = egress_problems(config, self._egress) + source_problems(
            config.source, self._egress, self._source_rules
        )
        if refused:
            summary = "; ".join(f"{f['field']}: {f['message']}" for f in refused[:5])
            raise RequestValidationError(f"invalid body: {summary}", refused)
        try:
            before: IntegrationConfig | None = await self._store.get(integration_id)
            readable = True
        except ValidationError:
            # A config stored by an older version that this one cannot read: replacing it is the remedy.
            before, readable = None, False
        try:
            created = await self._store.put(config)
        except EntityTooLarge as exc:
            # Checked before any write: the config as stored (defaults filled in, UTF-16 in Table
            # storage) is over one property's 64 KiB. The caller's to shrink, so a 413, not our 500.
            raise PayloadTooLarge(
                "the config is too large to store: it must fit one Table property (64 KiB as UTF-16)",
                details={"field": "body"},
            ) from exc
        details: dict[str, Any] = {"created": created}
        if readable:
            previous = None if before is None else before.model_dump(mode="json")
            details["changed"] = changed_fields(previous, config.model_dump(mode="json"))
        else:
            details["previous_unreadable"] = True
        await self._audit.record(actor, AuditAction.CONFIG_PUT, integration=integration_id, details=details)
        return config, created

    async def get(self, integration_id: str) -> IntegrationConfig:
        config = await self._store.get(integration_id)
        if config is None:
            raise IntegrationNotFound(integration_id)
        return config

    async def delete(self, integration_id: str, *, actor: Actor) -> None:
        if not await self._store.delete(integration_id):
            raise IntegrationNotFound(integration_id)
        await self._audit.record(actor, AuditAction.CONFIG_DELETE, integration=integration_id)

    # Last: inside the class body, `list` names this method from here on.
    async def list(self) -> list[IntegrationConfig]:
        return [config async for config in self._store.list()]


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """The field paths whose value differs (`retry.linear_count`, `endpoint.headers.X-Api-Key`), sorted; for a
    new config, its top-level fields. Names only: values may be credentials (a header's)."""
    if before is None:
        return sorted(key for key in after if key != "id")
    return sorted(_differences(before, after, ""))


def _differences(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[str] = []
        for key in {*old, *new}:
            found += _differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [path] if old != new else []


def egress_problems(config: IntegrationConfig, egress: EgressPolicy) -> list[FieldError]:
    """Field errors for every endpoint destination or header reference the egress policy refuses."""
    problems: list[FieldError] = []
    for where, endpoint in (("endpoint", config.endpoint), ("fallback_endpoint", config.fallback_endpoint)):
        problems += endpoint_problems(where, endpoint, egress)
    return problems


def endpoint_problems(where: str, endpoint: Endpoint | None, egress: EgressPolicy) -> list[FieldError]:
    """Field errors (`<where>.url`, `<where>.headers.<name>`) for what the egress policy refuses of one endpoint."""
    if not isinstance(endpoint, HttpEndpoint):
        return []
    problems: list[FieldError] = []
    url_problem = egress.check_url(str(endpoint.url))
    if url_problem is not None:
        problems.append({"field": f"{where}.url", "message": url_problem})
    for header, problem in egress.check_header_references(endpoint.headers):
        problems.append({"field": f"{where}.headers.{header}", "message": problem})
    return problems
