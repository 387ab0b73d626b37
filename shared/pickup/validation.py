"""What a source must also satisfy at PUT, beyond its model: the settings' floor, the egress policy, our own names."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.egress import EgressPolicy
from shared.errors import FieldError
from shared.pickup.models import BlobSource, HttpPollSource, ServiceBusSource, SftpSource, Source, StorageQueueSource


@dataclass(frozen=True)
class SourceRules:
    #: MIN_PICKUP_INTERVAL_S.
    min_interval_s: int
    #: (kind, connection setting, queue/container/entity) Rebound itself uses: a source that drained one of
    #: them would take the engine's own messages or payloads.
    own: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)


def source_problems(source: Source | None, egress: EgressPolicy, rules: SourceRules) -> list[FieldError]:
    """Field errors (`source.<field>`) for everything the model alone cannot judge."""
    if source is None:
        return []
    problems: list[FieldError] = []
    if source.interval_seconds < rules.min_interval_s:
        problems.append(
            {
                "field": "source.interval_seconds",
                "message": f"must be at least {rules.min_interval_s} (MIN_PICKUP_INTERVAL_S)",
            }
        )
    if isinstance(source, SftpSource):
        problems += _sftp_problems(source, egress)
    elif isinstance(source, HttpPollSource):
        url_problem = egress.check_url(str(source.url))
        if url_problem is not None:
            problems.append({"field": "source.url", "message": url_problem})
        for header, problem in egress.check_header_references(source.headers):
            problems.append({"field": f"source.headers.{header}", "message": problem})
    own = _own_name(source)
    if own is not None and own in rules.own:
        where = {"blob": "container", "storage_queue": "queue", "service_bus": "entity"}[own[0]]
        problems.append(
            {"field": f"source.{where}", "message": f"is one of Rebound's own on {own[1]}; pick up from elsewhere"}
        )
    return problems


def _sftp_problems(source: SftpSource, egress: EgressPolicy) -> list[FieldError]:
    problems: list[FieldError] = []
    host_problem = egress.check_url(f"sftp://{source.host}" if ":" not in source.host else f"sftp://[{source.host}]")
    if host_problem is not None:
        problems.append({"field": "source.host", "message": host_problem})
    # The password goes to a host the config names: like a header secret, only allowlisted settings may.
    for name in ("password_setting", "private_key_setting"):
        setting = getattr(source, name)
        if setting is not None:
            refused = egress.check_setting_reference(setting)
            if refused is not None:
                problems.append({"field": f"source.{name}", "message": refused.replace("references", "names")})
    return problems


def _own_name(source: Source) -> tuple[str, str, str] | None:
    if isinstance(source, BlobSource):
        return ("blob", source.connection, source.container)
    if isinstance(source, StorageQueueSource):
        return ("storage_queue", source.connection, source.queue)
    if isinstance(source, ServiceBusSource):
        return ("service_bus", source.connection, source.entity)
    return None
