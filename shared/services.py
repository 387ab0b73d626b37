"""The composition root: settings and a bundle of stores → the services the blueprints call, built once per loop.

Importing the app must never raise (an import error fails worker indexing and no function
loads), so nothing here runs at import time: handlers call `get_services()`. Every service is
built on first use from `self.stores` (the Azure stores unless a test passes others), and the
counters of what this instance did (`metrics`) belong to the Services that counted them.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import cached_property

import httpx

from shared.alerts.channels import AcsEmail, AlertChannels, EmailSender, SmtpEmail
from shared.alerts.conditions import AlertSources
from shared.alerts.evaluator import AlertEvaluator
from shared.alerts.models import AlertKind
from shared.alerts.service import AlertRulesService
from shared.alerts.signals import AlertSignals, SignallingFailures, SignallingJobs, SignallingParking
from shared.audit.service import AuditTrail
from shared.config.cache import ConfigCache
from shared.config.service import IntegrationConfigs
from shared.control.drain import HeldDrainer
from shared.control.gate import DeliveryControl
from shared.control.limiter import RateLimiter
from shared.control.service import IntegrationControl
from shared.delivery.adapters.http import build_http_client
from shared.delivery.adapters.registry import SenderRegistry
from shared.delivery.engine import DeliveryEngine
from shared.delivery.ingest import Ingest
from shared.delivery.retry import EndpointRetryPolicy
from shared.failures.edit import EditRetry
from shared.failures.mutes import GroupMutes
from shared.failures.ports import FailureSink
from shared.failures.queries import FailureQueries
from shared.failures.retention import Retention
from shared.jobs.batches import JobBatches
from shared.jobs.lifecycle import JobLifecycle
from shared.jobs.models import JobLimits
from shared.jobs.pages import JobPages
from shared.jobs.runner import JobRunner
from shared.jobs.settle import JobSettleCounter
from shared.messages.shards import InboundShards
from shared.operability.health import HealthCheck, check_health
from shared.operability.metrics import Metrics
from shared.operability.telemetry import configure_telemetry
from shared.pickup.readers.registry import PickupReaders
from shared.pickup.runner import LEASE_S, PickupLimits, PickupRunner
from shared.pickup.service import PickupService
from shared.pickup.validation import SourceRules
from shared.recovery.parker import Parker
from shared.recovery.ports import Parking
from shared.recovery.sweeper import RecoverySweeper
from shared.settings import RECOVERY_STORAGE_SETTING, STORAGE_SETTING, AlertEmailBackend, RecoveryBackend, Settings
from shared.storage.azure import AzureStores
from shared.storage.clients import build_email_client
from shared.storage.names import StorageNames, poison_queue
from shared.stores import Stores
from shared.timeline.recorder import (
    RecordingFailures,
    RecordingParking,
    RecordingReinserts,
    TimelineObserver,
    TimelineRecorder,
)
from shared.timeline.service import MessageTimelines


class Services:
    def __init__(self, settings: Settings, *, stores: Stores | None = None) -> None:
        self.settings = settings
        self.stores: Stores = stores if stores is not None else AzureStores.build(settings)
        self.metrics = Metrics()
        self.egress = settings.egress_policy()

    @cached_property
    def inbound(self) -> InboundShards:
        """The engine's queues (INBOUND_SHARDS): where ingest, requeues, resends, reinserts and pickups go."""
        return InboundShards(self.stores.inbound_shards)

    @cached_property
    def configs(self) -> ConfigCache:
        """The engine's view of configs: cached briefly, misses included."""
        return ConfigCache(self.stores.integrations)

    @cached_property
    def ingest_configs(self) -> ConfigCache:
        """Ingest's view: a just-created integration is accepted at once."""
        return ConfigCache(self.stores.integrations, cache_misses=False)

    @cached_property
    def senders(self) -> SenderRegistry:
        return SenderRegistry(self.settings, egress=self.egress)

    @cached_property
    def audit(self) -> AuditTrail:
        return AuditTrail(self.stores.audit, retention_days=self.settings.audit_retention_days)

    @cached_property
    def integrations(self) -> IntegrationConfigs:
        return IntegrationConfigs(
            self.stores.integrations, egress=self.egress, audit=self.audit, source_rules=self.source_rules
        )

    @cached_property
    def source_rules(self) -> SourceRules:
        return SourceRules(min_interval_s=self.settings.min_pickup_interval_s, own=own_names(self.settings))

    @cached_property
    def pickup_readers(self) -> PickupReaders:
        return PickupReaders(self.settings, egress=self.egress, lease_s=LEASE_S)

    @cached_property
    def pickup_runner(self) -> PickupRunner:
        settings, stores = self.settings, self.stores
        return PickupRunner(
            configs=stores.integrations,
            states=stores.pickups,
            seen=stores.pickup_seen,
            readers=self.pickup_readers,
            inbound=self.inbound,
            payloads=stores.payloads,
            parker=self.parker,
            failures=self.failure_sink,
            metrics=self.metrics,
            limits=PickupLimits(
                dedup_days=settings.pickup_dedup_days,
                max_consecutive_failures=settings.pickup_max_consecutive_failures,
                max_message_bytes=settings.max_message_bytes,
                max_inbound_depth=settings.max_inbound_depth,
            ),
            endpoint_policy=self.endpoint_policy,
        )

    @cached_property
    def pickup(self) -> PickupService:
        return PickupService(
            integrations=self.stores.integrations, states=self.stores.pickups, runner=self.pickup_runner,
            audit=self.audit,
        )  # fmt: skip

    @cached_property
    def endpoint_policy(self) -> EndpointRetryPolicy:
        settings = self.settings
        return EndpointRetryPolicy(
            max_attempts=settings.endpoint_retry_max_attempts,
            base_delay_s=settings.endpoint_retry_base_delay_s,
            window_s=settings.endpoint_retry_window_s,
        )

    @cached_property
    def ingest(self) -> Ingest:
        stores = self.stores
        return Ingest(
            configs=self.ingest_configs,
            inbound=self.inbound,
            payloads=stores.payloads,
            max_message_bytes=self.settings.max_message_bytes,
            parker=self.parker,
        )

    @cached_property
    def engine(self) -> DeliveryEngine:
        stores = self.stores
        return DeliveryEngine(
            configs=self.configs,
            senders=self.senders,
            inbound=self.inbound,
            payloads=stores.payloads,
            failures=self.failure_sink,
            error_window=stores.error_window,
            endpoint_policy=self.endpoint_policy,
            metrics=self.metrics,
            parker=self.parker,
            gate=self.delivery_control,
            observers=(TimelineObserver(self.timeline_recorder), self.settle_counter),
        )

    @cached_property
    def timeline_recorder(self) -> TimelineRecorder:
        """Where the engine, jobs and recovery record what happened to a troubled message (issue 17)."""
        return TimelineRecorder(self.stores.timeline, instance=self.settings.instance_name())

    @cached_property
    def timelines(self) -> MessageTimelines:
        return MessageTimelines(self.stores.timeline)

    @cached_property
    def settle_counter(self) -> JobSettleCounter:
        """Counts how retry jobs' resent messages settle, in this instance's shard (issue 19)."""
        return JobSettleCounter(self.stores.settle_counts)

    @cached_property
    def delivery_control(self) -> DeliveryControl:
        """The engine's gate: pause, circuit breaker, rate limit (one per instance: its state cache)."""
        stores = self.stores
        return DeliveryControl(
            states=stores.control_states,
            held=stores.held,
            payloads=stores.payloads,
            circuit_window=stores.circuit_window,
            limiter=RateLimiter(stores.rate_slots),
            metrics=self.metrics,
            refresh_s=self.settings.control_refresh_s,
            on_circuit_open=lambda integration: self.alert_signals.raised(AlertKind.CIRCUIT_OPEN, integration),
        )

    @cached_property
    def drainer(self) -> HeldDrainer:
        stores = self.stores
        engine = self.engine
        return HeldDrainer(
            control=self.delivery_control,
            states=stores.control_states,
            held=stores.held,
            requests=stores.drain_requests,
            process=lambda envelope, release: engine.process(envelope, release=release),
            metrics=self.metrics,
            refresh_s=self.settings.control_refresh_s,
        )

    @cached_property
    def control(self) -> IntegrationControl:
        stores = self.stores
        return IntegrationControl(
            integrations=stores.integrations,
            states=stores.control_states,
            held=stores.held,
            control=self.delivery_control,
            drainer=self.drainer,
            circuit_window=stores.circuit_window,
            audit=self.audit,
            refresh_s=self.settings.control_refresh_s,
        )

    @cached_property
    def failures(self) -> FailureQueries:
        return FailureQueries(self.stores.failures, self.stores.payloads, mutes=self.mutes)

    @cached_property
    def mutes(self) -> GroupMutes:
        return GroupMutes(self.stores.control_states, self.stores.failures, audit=self.audit)

    @cached_property
    def edit_retry(self) -> EditRetry:
        stores = self.stores
        return EditRetry(
            failures=stores.failures, payloads=stores.payloads, inbound=stores.inbound, audit=self.audit,
            max_message_bytes=self.settings.max_message_bytes, parker=self.parker,
        )  # fmt: skip

    @cached_property
    def job_pages(self) -> JobPages:
        settings = self.settings
        limits = JobLimits(
            page_size=settings.job_page_size,
            rate_per_s=settings.job_rate_limit_per_s,
            max_inbound_depth=settings.max_inbound_depth,
        )
        return JobPages(self.stores.job_pages, limits=limits)

    @cached_property
    def jobs(self) -> JobLifecycle:
        stores = self.stores
        return JobLifecycle(
            jobs=stores.jobs,
            integrations=stores.integrations,
            failures=stores.failures,
            pages=self.job_pages,
            audit=self.audit,
            settle_counts=stores.settle_counts,
            egress=self.egress,
        )

    @cached_property
    def job_runner(self) -> JobRunner:
        stores = self.stores
        batches = JobBatches(
            failures=stores.failures, payloads=stores.payloads, inbound=self.inbound, parker=self.parker,
            timeline=self.timeline_recorder,
            senders=self.senders,
        )  # fmt: skip
        return JobRunner(
            jobs=SignallingJobs(stores.jobs, self.alert_signals),
            failures=stores.failures,
            pages=self.job_pages,
            batches=batches,
            inbound=self.inbound,
            metrics=self.metrics,
            audit=self.audit,
        )

    @cached_property
    def parker(self) -> Parking:
        parker = Parker(self.stores.recovery, delay_s=self.settings.recovery_park_delay_s, metrics=self.metrics)
        return RecordingParking(SignallingParking(parker, self.alert_signals), self.timeline_recorder)

    @cached_property
    def failure_sink(self) -> FailureSink:
        """Where the engine, pickup and recovery record failures: the store, and a signal to the alerts."""
        return SignallingFailures(self.stores.failures, self.alert_signals)

    # --- alerts ----------------------------------------------------------------------------------

    @cached_property
    def alert_signals(self) -> AlertSignals:
        return AlertSignals(self.stores.alert_rules, self.stores.alert_events)

    @cached_property
    def alert_rules(self) -> AlertRulesService:
        return AlertRulesService(
            self.stores.alert_rules,
            self.stores.alert_log,
            egress=self.egress,
            email_enabled=self.settings.alert_email_backend is not AlertEmailBackend.OFF,
            audit=self.audit,
            send_test=lambda rule_id: self.alert_evaluator.send_test(rule_id),
        )

    @cached_property
    def email(self) -> EmailSender | None:
        settings = self.settings
        match settings.alert_email_backend:
            case AlertEmailBackend.SMTP:
                return SmtpEmail(
                    host=settings.alert_smtp_host, port=settings.alert_smtp_port, sender=settings.alert_email_sender
                )
            case AlertEmailBackend.ACS:
                client = build_email_client(settings.alert_acs_endpoint, client_id=settings.alert_acs_client_id)
                return AcsEmail(client, sender=settings.alert_email_sender)
            case _:
                return None

    @cached_property
    def alert_http(self) -> httpx.AsyncClient:
        """The vetted client for webhook and Teams notices (the egress policy, checked on every connection)."""
        return build_http_client(self.egress)

    @cached_property
    def alert_evaluator(self) -> AlertEvaluator:
        stores, settings = self.stores, self.settings
        sources = AlertSources(
            failures=stores.failures,
            integrations=stores.integrations,
            control_states=stores.control_states,
            jobs=stores.jobs,
            recovery=[stores.recovery, *stores.poison],
            pickups=stores.pickups,
        )
        channels = AlertChannels(http=self.alert_http, email=self.email, secret=self._alert_secret)
        base = settings.portal_base_url()

        def portal_url(integration: str | None) -> str | None:
            if base is None:
                return None
            return f"{base}#/integrations/{integration}" if integration else f"{base}#/alerts"

        return AlertEvaluator(
            rules=stores.alert_rules, log=stores.alert_log, sources=sources, channels=channels, portal_url=portal_url
        )

    def _alert_secret(self, name: str) -> str | None:
        """The value of a webhook's `secret_setting`, only when ENDPOINT_SECRET_SETTINGS lists it."""
        if self.egress.check_setting_reference(name) is not None:
            return None
        return self.settings.app_setting(name)

    @cached_property
    def sweeper(self) -> RecoverySweeper:
        settings, stores = self.settings, self.stores
        return RecoverySweeper(
            flow=stores.recovery,
            poison=stores.poison,
            inbound=RecordingReinserts(self.inbound, self.timeline_recorder),
            retired=stores.retired_shards,
            job_pages=stores.job_pages,
            payloads=stores.payloads,
            failures=RecordingFailures(stores.failures, self.timeline_recorder),
            jobs=self.job_runner,
            state=stores.sweep_state,
            main_flow=stores.main_flow,
            max_reinserts=settings.recovery_max_reinserts,
            batch_size=settings.recovery_batch_size,
            max_inbound_depth=settings.max_inbound_depth,
            metrics=self.metrics,
            audit=self.audit,
        )

    @cached_property
    def retention(self) -> Retention:
        stores = self.stores
        return Retention(
            stores.failures,
            stores.payloads,
            stores.error_window,
            retention_days=self.settings.failure_retention_days,
            timeline=stores.timeline,
        )

    @cached_property
    def health(self) -> HealthCheck:
        timeout_s = self.settings.storage_timeout_s
        return HealthCheck(lambda: check_health(self.stores.health_probes, timeout_s=timeout_s))

    async def close(self) -> None:
        if "alert_signals" in self.__dict__:
            await self.alert_signals.settle()
        if "timeline_recorder" in self.__dict__:
            await self.timeline_recorder.settle()
        if "settle_counter" in self.__dict__:
            await self.settle_counter.flush()
        if "alert_http" in self.__dict__:
            await self.alert_http.aclose()
        if isinstance(self.__dict__.get("email"), AcsEmail):
            await self.email.close()  # type: ignore[union-attr]
        if "pickup" in self.__dict__:
            await self.pickup.close()
        if "pickup_readers" in self.__dict__:
            await self.pickup_readers.aclose()
        if "senders" in self.__dict__:
            await self.senders.aclose()
        await self.stores.close()


def own_names(settings: Settings) -> frozenset[tuple[str, str, str]]:
    """The queues, containers and Service Bus queue Rebound itself uses: no pickup source may drain them."""
    names = StorageNames(settings.prefix)
    # Every shard a setting could ever name, not only today's: raising INBOUND_SHARDS must not put a
    # source's queue under a trigger.
    shards = names.every_inbound_shard
    queues = [*shards, names.jobs_queue, names.recovery, names.health_probe, names.drain_queue]
    queues += [poison_queue(q) for q in (*shards, names.jobs_queue, names.drain_queue)]
    # The Functions host's own containers, besides ours.
    containers = [names.payloads, names.recovery_payloads, "azure-webjobs-hosts", "azure-webjobs-secrets"]
    own = {
        (kind, connection, name)
        for connection in (STORAGE_SETTING, RECOVERY_STORAGE_SETTING)
        for kind, group in (("storage_queue", queues), ("blob", containers))
        for name in group
    }
    if settings.recovery_backend is RecoveryBackend.SERVICE_BUS:
        own.add(("service_bus", settings.recovery_service_bus_connection, settings.recovery_service_bus_queue))
    return frozenset(own)


# Azure SDK aio clients are bound to the loop that first used them; the Functions worker runs one
# loop, tests run many, so the cache is per loop.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Services] = weakref.WeakKeyDictionary()


def get_services() -> Services:
    loop = asyncio.get_running_loop()
    services = _by_loop.get(loop)
    if services is None:
        settings = Settings.from_env()
        secret = settings.applicationinsights_connection_string
        configure_telemetry(secret.get_secret_value() if secret else None)
        services = Services(settings)
        _by_loop[loop] = services
    return services


async def reset_services() -> None:
    """Close and forget this loop's services (tests, and settings changes in devhost)."""
    services = _by_loop.pop(asyncio.get_running_loop(), None)
    if services is not None:
        await services.close()
