"""Pickup use cases behind the API: a source's status, and "pick up now"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from shared.audit.models import Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.config.models import IntegrationConfig
from shared.config.ports import IntegrationStore
from shared.errors import ConcurrencyConflict, IntegrationNotFound, SourceDisabled, SourceNotFound
from shared.logs import log_event
from shared.pickup.models import PickupState, PickupStatus, Source, describe
from shared.pickup.ports import PickupStates
from shared.pickup.runner import PickupRunner, RunReport
from shared.values import utc_now

logger = logging.getLogger("rebound.pickup")

#: Conditional writes a "run now" request tries before it gives up to a busy record.
_REQUEST_ATTEMPTS = 5


class PickupService:
    def __init__(
        self,
        *,
        integrations: IntegrationStore,
        states: PickupStates,
        runner: PickupRunner,
        audit: AuditTrail,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._audit = audit
        self._integrations = integrations
        self._states = states
        self._runner = runner
        self._clock = clock
        self._running: set[asyncio.Task[RunReport | None]] = set()

    async def status(self, integration: str) -> PickupStatus:
        config, source = await self._source_of(integration)
        stored = await self._states.get(integration)
        return self._status(config, source, stored.state if stored is not None else PickupState())

    async def run_now(self, integration: str, *, actor: Actor) -> PickupStatus:
        """Mark the source as asked for and start a run at once, without waiting for it (202).

        The mark is stored first: should this instance stop before the run ends, or another run hold
        the source right now, the next timer tick runs it. The actor's `pickup.run` goes to the audit
        trail right after the mark, before the run starts.
        """
        config, source = await self._source_of(integration)
        if not source.enabled:
            raise SourceDisabled(integration)
        state = await self._request(integration)
        await self._audit.record(actor, AuditAction.PICKUP_RUN, integration=integration, details={"kind": source.kind})
        task = asyncio.create_task(self._runner.run_source(config, requested=True))
        self._running.add(task)
        task.add_done_callback(self._finished)
        return self._status(config, source, state)

    async def wait_for_runs(self) -> None:
        """Until the runs started by `run_now` have ended (tests, and shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        await self.wait_for_runs()

    def _finished(self, task: asyncio.Task[RunReport | None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(logger, "pickup.run_crashed", level=logging.ERROR, error=type(task.exception()).__name__)

    async def _request(self, integration: str) -> PickupState:
        for _ in range(_REQUEST_ATTEMPTS):
            stored = await self._states.get(integration)
            state = (stored.state if stored is not None else PickupState()).model_copy(update={"run_requested": True})
            try:
                if stored is None:
                    await self._states.create(integration, state)
                else:
                    await self._states.replace(integration, state, version=stored.version)
                return state
            except ConcurrencyConflict:
                continue  # a run started or ended meanwhile: read it again
        raise ConcurrencyConflict(f"the pickup state of {integration!r} kept changing; try again")

    async def _source_of(self, integration: str) -> tuple[IntegrationConfig, Source]:
        config = await self._integrations.get(integration)
        if config is None:
            raise IntegrationNotFound(integration)
        if config.source is None:
            raise SourceNotFound(integration)
        return config, config.source

    def _status(self, config: IntegrationConfig, source: Source, state: PickupState) -> PickupStatus:
        now = self._clock()
        running = state.lease_owner is not None and state.lease_until is not None and state.lease_until > now
        return PickupStatus(
            integration=config.id,
            kind=source.kind,
            target=describe(source),
            enabled=source.enabled,
            interval_seconds=source.interval_seconds,
            last_run_at=state.last_run_at,
            last_outcome=state.last_outcome,
            consecutive_failures=state.consecutive_failures,
            picked_total=state.picked_total,
            last_error=state.last_error,
            next_run_at=state.next_run_at,
            running=running,
            run_requested=state.run_requested,
        )
