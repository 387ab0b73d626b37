"""What each alert kind measures, read from the stores that already hold it (no counters of its own).

Failures are counted in the failure store over the window (a range of ids: they sort by time);
breakers from the control states; jobs from the job store; the backlog from the recovery flow and the
poison queues; pickup from the sources' states. Samples say what was counted, never message content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shared.alerts.models import MAX_SAMPLES, AlertKind, AlertRule, AlertSample, Measurement
from shared.config.ports import IntegrationStore
from shared.control.models import BreakerPhase
from shared.control.ports import ControlStates
from shared.failures.models import Failure, FailureFilter, FailureOrigin
from shared.failures.ports import FailureStore
from shared.jobs.models import JobState
from shared.jobs.ports import JobStore
from shared.pickup.models import PickupOutcome
from shared.pickup.ports import PickupStates
from shared.recovery.ports import MessageSource

#: Jobs read per integration (newest first) when looking for failed ones in the window.
JOBS_PER_INTEGRATION = 50
_REASON_CHARS = 300


class AlertSources:
    def __init__(
        self,
        *,
        failures: FailureStore,
        integrations: IntegrationStore,
        control_states: ControlStates,
        jobs: JobStore,
        recovery: Sequence[MessageSource],
        pickups: PickupStates,
    ) -> None:
        self._failures = failures
        self._integrations = integrations
        self._control = control_states
        self._jobs = jobs
        self._recovery = recovery
        self._pickups = pickups

    async def measure(self, rule: AlertRule, now: datetime) -> Measurement:
        since = now - timedelta(minutes=rule.window_minutes)
        match rule.kind:
            case AlertKind.FAILURE_COUNT:
                return await self._failures_since(rule.integration, since, None, now)
            case AlertKind.CATASTROPHIC:
                return await self._failures_since(rule.integration, since, FailureOrigin.CATASTROPHIC, now)
            case AlertKind.CIRCUIT_OPEN:
                return await self._open_breakers(rule.integration)
            case AlertKind.JOB_FAILED:
                return await self._failed_jobs(rule.integration, since)
            case AlertKind.RECOVERY_BACKLOG:
                return await self._backlog()
            case AlertKind.PICKUP_FAILING:
                return await self._failing_sources(rule.integration)

    async def _muted_groups(self, integration: str, now: datetime) -> set[str]:
        stored = await self._control.get(integration)
        if stored is None:
            return set()
        return {group for group, mute in stored.state.muted.items() if mute.active(now)}

    async def _failures_since(
        self, integration: str | None, since: datetime, origin: FailureOrigin | None, now: datetime
    ) -> Measurement:
        if integration is not None:
            integrations = [integration]
        else:
            integrations = [
                summary.integration
                for summary in await self._failures.overview()
                if summary.last_failed_at is not None and summary.last_failed_at >= since
            ]
        selection = FailureFilter.model_validate({"from": since, "origin": origin})
        count = 0
        samples: list[AlertSample] = []
        for name in integrations:
            # Muted groups (issue 19) are known and accepted: they neither count nor show as samples.
            muted = await self._muted_groups(name, now)
            count += await self._failures.count(name, selection)
            for group in muted:
                count -= await self._failures.count(name, selection.model_copy(update={"group": group}))
            if len(samples) < MAX_SAMPLES:
                page = await self._failures.page(name, selection, limit=MAX_SAMPLES)
                kept = [failure for failure in page.items if failure.group not in muted]
                samples += [failure_sample(failure) for failure in kept[: MAX_SAMPLES - len(samples)]]
        samples.sort(key=lambda sample: sample.at or since, reverse=True)
        return Measurement(count=count, samples=samples[:MAX_SAMPLES])

    async def _open_breakers(self, integration: str | None) -> Measurement:
        samples: list[AlertSample] = []
        async for name, stored in self._control.all():
            breaker = stored.state.breaker
            if (integration is None or name == integration) and breaker.phase is not BreakerPhase.CLOSED:
                samples.append(
                    AlertSample(
                        integration=name,
                        at=breaker.opened_at,
                        summary=f"circuit {breaker.phase.value} after {breaker.failures} transient failures",
                    )
                )
        return Measurement(count=len(samples), samples=samples[:MAX_SAMPLES])

    async def _failed_jobs(self, integration: str | None, since: datetime) -> Measurement:
        names = [integration] if integration is not None else await self._known_integrations()
        samples: list[AlertSample] = []
        for name in names:
            for job in await self._jobs.list(name, limit=JOBS_PER_INTEGRATION):
                if job.finished_at is None or job.finished_at < since:
                    continue
                if job.state is JobState.FAILED or job.failed > 0:
                    summary = f"{job.action.value} job {job.state.value}: {job.failed} of {job.processed} items failed"
                    if job.last_error:
                        summary += f" ({job.last_error[:_REASON_CHARS]})"
                    samples.append(AlertSample(integration=name, at=job.finished_at, summary=summary))
        samples.sort(key=lambda sample: sample.at or since, reverse=True)
        return Measurement(count=len(samples), samples=samples[:MAX_SAMPLES])

    async def _backlog(self) -> Measurement:
        count = 0
        samples: list[AlertSample] = []
        for source in self._recovery:
            status = await source.status()
            count += status.count
            if status.count:
                samples.append(
                    AlertSample(integration="", summary=f"{status.count} waiting in {status.kind} queue {status.name}")
                )
        return Measurement(count=count, samples=samples[:MAX_SAMPLES])

    async def _failing_sources(self, integration: str | None) -> Measurement:
        """Sources whose last run failed (their failed runs in a row restart from 0 once a `pickup` failure is
        recorded, so the last outcome is what stays true while a source keeps failing)."""
        failing = 0
        samples: list[AlertSample] = []
        async for config in self._integrations.list():
            if config.source is None or (integration is not None and config.id != integration):
                continue
            stored = await self._pickups.get(config.id)
            if stored is None or stored.state.last_outcome is not PickupOutcome.FAILED:
                continue
            state = stored.state
            failing += 1
            summary = f"last run failed: {(state.last_error or 'no reason given')[:_REASON_CHARS]}"
            samples.append(AlertSample(integration=config.id, at=state.last_run_at, summary=summary))
        return Measurement(count=failing, samples=samples[:MAX_SAMPLES])

    async def _known_integrations(self) -> list[str]:
        names = {config.id async for config in self._integrations.list()}
        names.update(await self._failures.integrations())
        return sorted(names)


def failure_sample(failure: Failure) -> AlertSample:
    return AlertSample(
        integration=failure.integration,
        at=failure.failed_at,
        summary=failure.reason[:_REASON_CHARS],
        failure_id=failure.id,
        message_id=failure.message_id,
        origin=failure.origin.value,
        status_code=failure.status_code,
    )
