"""Run pickup sources: take what waits at each source and put it on `inbound`, never losing or doubling an item.

One timer (PICKUP_SCHEDULE) calls `run_due`; "pick up now" calls `run_source` for one integration.
A run of a source:

1. takes the source's lease (an ETag'd write on its state record): two instances never run one source
   at once, and a holder that crashed loses the lease when it lapses (LEASE_S);
2. defers when `inbound` is deeper than MAX_INBOUND_DEPTH (backpressure, DESIGN.md section 10);
3. lists up to `max_per_run` items and, per item: skips (and removes) one already picked within
   PICKUP_DEDUP_DAYS; reads it; enqueues it on `inbound` as an envelope whose id is derived from the
   source and the item, so a re-pick reaches the receiver with the same Idempotency-Key; remembers it
   as picked; only then removes it from the source. When `inbound` cannot take it, a file or blob
   stays where it is (the run stops), a message or poll answer (not readable again) goes to the
   recovery flow, and stays at the source when that fails too;
4. writes the outcome and releases the lease. List, read and remove failures are retried inside the
   endpoint retry window (as deliveries are); a run that still fails is tried again at the next
   interval, and after PICKUP_MAX_CONSECUTIVE_FAILURES failed runs in a row a `pickup` failure
   (a reason, no content) is recorded and the count starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from shared.config.models import IntegrationConfig
from shared.config.ports import IntegrationStore
from shared.delivery.retry import EndpointRetryPolicy, endpoint_delay_s
from shared.errors import ConcurrencyConflict, PickupError, ReboundError, StorageUnavailable, TransientPickupError
from shared.failures.models import FailureOrigin
from shared.failures.ports import FailureSink
from shared.failures.records import new_failure
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.ports import PayloadStore
from shared.messages.shards import InboundShards
from shared.messages.wire import pack
from shared.operability.metrics import Counter, Metrics
from shared.pickup.items import envelope_for
from shared.pickup.models import PickupOutcome, PickupState, Source, describe
from shared.pickup.ports import ItemContent, PickupStates, SeenItems, SourceItem, SourceReader, SourceReaders
from shared.recovery.ports import Parking
from shared.tokens import Version
from shared.values import utc_now

logger = logging.getLogger("rebound.pickup")

T = TypeVar("T")

#: How long a run holds its source. A run stops taking new items after RUN_BUDGET_S, so it ends well
#: inside the lease even when its last item needs the whole endpoint retry window.
LEASE_S = 300
RUN_BUDGET_S = 120.0
#: Sources run at once by one timer invocation.
SOURCES_AT_ONCE = 4
#: Items a reader is asked for at a time: received messages stay locked while they wait their turn.
BATCH = 16
#: Seen items forgotten per source per run, once they are past the window.
FORGET_PER_RUN = 100
#: `last_error` is kept to this many characters.
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class PickupLimits:
    dedup_days: int
    max_consecutive_failures: int
    max_message_bytes: int
    max_inbound_depth: int
    lease_s: int = LEASE_S
    run_budget_s: float = RUN_BUDGET_S


@dataclass
class RunReport:
    """What one run of one source did."""

    integration: str
    outcome: PickupOutcome
    picked: int = 0
    parked: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    #: A `pickup` failure was recorded at the end of this run.
    failure_recorded: bool = False

    @property
    def last_error(self) -> str | None:
        if not self.errors:
            return None
        text = "; ".join(self.errors)
        return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


class _StopRun(Exception):
    """The run cannot go on (main storage unreachable, the source failing): what is not taken stays."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Lease:
    owner: str
    state: PickupState
    version: Version


class PickupRunner:
    def __init__(
        self,
        *,
        configs: IntegrationStore,
        states: PickupStates,
        seen: SeenItems,
        readers: SourceReaders,
        inbound: InboundShards,
        payloads: PayloadStore,
        parker: Parking,
        failures: FailureSink,
        metrics: Metrics,
        limits: PickupLimits,
        endpoint_policy: EndpointRetryPolicy,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._configs = configs
        self._states = states
        self._seen = seen
        self._readers = readers
        self._inbound = inbound
        self._payloads = payloads
        self._parker = parker
        self._failures = failures
        self._metrics = metrics
        self._limits = limits
        self._policy = endpoint_policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._monotonic = monotonic

    # --- entry points ---------------------------------------------------------------------------

    async def run_due(self) -> list[RunReport]:
        """The timer: run every enabled source that is due (or asked for), a few at a time."""
        try:
            configs = [config async for config in self._configs.list() if config.source and config.source.enabled]
        except StorageUnavailable as exc:
            # Nothing can be taken safely without our own storage; the next tick looks again.
            log_event(logger, "pickup.configs_unavailable", level=logging.WARNING, error=exc.code)
            return []
        semaphore = asyncio.Semaphore(SOURCES_AT_ONCE)

        async def one(config: IntegrationConfig) -> RunReport | None:
            async with semaphore:
                return await self.run_source(config)

        reports = await asyncio.gather(*(one(config) for config in configs))
        return [report for report in reports if report is not None]

    async def run_source(self, config: IntegrationConfig, *, requested: bool = False) -> RunReport | None:
        """Run one source if it is due (or `requested`) and nobody else runs it; None when it did not run."""
        source = config.source
        if source is None:
            return None
        try:
            lease = await self._acquire(config.id, force=requested)
        except StorageUnavailable as exc:
            log_event(logger, "pickup.state_unavailable", level=logging.WARNING, integration=config.id, error=exc.code)
            return None
        if lease is None:
            return None
        report = await self._run_leased(config, source)
        failures = lease.state.consecutive_failures
        if report.outcome is PickupOutcome.OK:
            failures = 0
        elif report.outcome is PickupOutcome.FAILED:
            failures += 1
            if failures >= self._limits.max_consecutive_failures and await self._record_failure(
                config, source, report, failures
            ):
                failures = 0  # counting starts over
        await self._release(config.id, lease, self._after(lease.state, report, source, failures))
        log_event(
            logger, "pickup.run", level=logging.WARNING if report.errors else logging.INFO, integration=config.id,
            source=describe(source), outcome=report.outcome.value, picked=report.picked, parked=report.parked,
            duplicates=report.duplicates, error=report.last_error,
        )  # fmt: skip
        return report

    # --- the lease ------------------------------------------------------------------------------

    def _due(self, state: PickupState, now: datetime) -> bool:
        return state.run_requested or state.next_run_at is None or state.next_run_at <= now

    async def _acquire(self, integration: str, *, force: bool) -> _Lease | None:
        now = self._clock()
        stored = await self._states.get(integration)
        state = stored.state if stored is not None else PickupState()
        if state.lease_owner is not None and state.lease_until is not None and state.lease_until > now:
            return None  # another run holds it
        if not force and not self._due(state, now):
            return None
        owner = uuid.uuid4().hex
        leased = state.model_copy(
            update={
                "lease_owner": owner,
                "lease_until": now + timedelta(seconds=self._limits.lease_s),
                "run_requested": False,
            }
        )
        try:
            if stored is None:
                version = await self._states.create(integration, leased)
            else:
                version = await self._states.replace(integration, leased, version=stored.version)
        except ConcurrencyConflict:
            return None  # someone else took it first
        return _Lease(owner, leased, version)

    def _after(self, state: PickupState, report: RunReport, source: Source, failures: int) -> PickupState:
        """The state a run leaves: its outcome, the next run, the failed runs in a row."""
        now = self._clock()
        return state.model_copy(
            update={
                "last_run_at": now,
                "last_outcome": report.outcome,
                "consecutive_failures": failures,
                "picked_total": state.picked_total + report.picked,
                "last_error": report.last_error,
                "next_run_at": now + timedelta(seconds=source.interval_seconds),
                "lease_owner": None,
                "lease_until": None,
            }
        )

    async def _release(self, integration: str, lease: _Lease, state: PickupState) -> None:
        """Write the run's outcome and free the source; keeps a "run now" that arrived meanwhile."""
        version = lease.version
        for _ in range(3):
            try:
                await self._states.replace(integration, state, version=version)
                return
            except ConcurrencyConflict:
                pass
            except StorageUnavailable as exc:
                # The lease lapses on its own; the outcome of this run is lost to the status, not the items.
                log_event(
                    logger, "pickup.state_unsaved", level=logging.WARNING, integration=integration, error=exc.code
                )
                return
            fresh = await self._states.get(integration)
            if fresh is None or fresh.state.lease_owner != lease.owner:
                # The lease lapsed and another run took the source: its record wins.
                log_event(logger, "pickup.lease_lost", level=logging.WARNING, integration=integration)
                return
            state = state.model_copy(update={"run_requested": fresh.state.run_requested})
            version = fresh.version

    # --- a run ----------------------------------------------------------------------------------

    async def _run_leased(self, config: IntegrationConfig, source: Source) -> RunReport:
        report = RunReport(config.id, PickupOutcome.OK)
        try:
            if await self._inbound.depth_of(config.id) > self._limits.max_inbound_depth:
                report.outcome = PickupOutcome.DEFERRED
                report.errors.append(f"deferred: inbound is deeper than {self._limits.max_inbound_depth}")
                return report
            reader = self._readers.reader_for(config.id, source)
            await self._run(config, source, reader, report)
        except _StopRun as stop:
            report.errors.append(stop.reason)
        except StorageUnavailable as exc:
            report.errors.append(f"main storage unreachable: {exc.message}")
        except ReboundError as exc:
            report.errors.append(exc.message)
        except Exception as exc:
            # A bug in one reader must not stop the other sources; it is logged with its traceback.
            log_event(logger, "pickup.crashed", level=logging.ERROR, exc_info=True, integration=config.id)
            report.errors.append(f"internal error ({type(exc).__name__}); see the function logs")
        if report.errors and report.outcome is not PickupOutcome.DEFERRED:
            report.outcome = PickupOutcome.FAILED
        await self._forget_old(config.id)
        return report

    async def _run(self, config: IntegrationConfig, source: Source, reader: SourceReader, report: RunReport) -> None:
        deadline = self._monotonic() + self._limits.run_budget_s
        handled: set[str] = set()
        await self._retrying(reader.open)
        try:
            while report.picked + report.duplicates < source.max_per_run and self._monotonic() < deadline:
                wanted = min(BATCH, source.max_per_run - report.picked - report.duplicates)
                batch = await self._retrying(functools.partial(reader.list, wanted))
                fresh = [item for item in batch if item.key not in handled]
                if not fresh:
                    break
                for index, item in enumerate(fresh):
                    handled.add(item.key)
                    try:
                        await self._take(config, source, reader, item, report)
                    except BaseException:
                        await self._give_back(reader, fresh[index:])
                        raise
                    if self._monotonic() >= deadline:
                        await self._give_back(reader, fresh[index + 1 :])
                        return
        finally:
            try:
                await reader.close()
            except Exception:
                log_event(logger, "pickup.close_failed", level=logging.WARNING, target=reader.target)

    async def _take(
        self, config: IntegrationConfig, source: Source, reader: SourceReader, item: SourceItem, report: RunReport
    ) -> None:
        """One item: not twice, never removed before it is safe on `inbound` (or parked)."""
        name = item.name or "a message"
        if item.size is not None and item.size > self._limits.max_message_bytes:
            report.errors.append(
                f"{name} is {item.size} bytes, over MAX_MESSAGE_BYTES ({self._limits.max_message_bytes}); "
                "left at the source"
            )
            await reader.give_back(item)
            return
        if await self._picked_before(config.id, item.key):
            await self._remove_duplicate(reader, item, report)
            return
        content = await self._retrying(lambda: reader.read(item))
        if content.key != item.key and await self._picked_before(config.id, content.key):
            await self._remove_duplicate(reader, item, report, content)
            return
        envelope = envelope_for(config, source, item, content, now=self._clock())
        parked = await self._enqueue(envelope, reader, item)
        try:
            await self._seen.remember(config.id, content.key, message_id=envelope.id, at=self._clock())
        except StorageUnavailable:
            # Removing is still right: it is on its way. Should the removal fail as well, a re-pick
            # carries the same envelope id, so the receiver can drop the copy.
            log_event(
                logger, "pickup.seen_unsaved", level=logging.WARNING, integration=config.id, message_id=envelope.id
            )
        report.picked += 1
        report.parked += parked
        self._metrics.count(Counter.PICKED, config.id)
        try:
            await self._retrying(lambda: reader.remove(item, content))
        except PickupError as exc:
            report.errors.append(f"{name} was enqueued but not removed ({exc.message}); it is not taken again")

    async def _enqueue(self, envelope: Envelope, reader: SourceReader, item: SourceItem) -> bool:
        """Put it on `inbound`; True when it went to the recovery flow instead. `_StopRun` when it stays."""
        try:
            _, text = await pack(envelope, self._payloads)
            await self._inbound.send(envelope.integration, text)
            return False
        except StorageUnavailable as exc:
            if reader.rereadable:
                raise _StopRun(f"inbound unreachable ({exc.message}); what was not taken stays at the source") from exc
            reason = f"pickup could not enqueue to inbound: {exc.message}"
        try:
            await self._parker.park_envelope(envelope, reason)
        except StorageUnavailable as exc:
            raise _StopRun(
                f"inbound and the recovery flow unreachable ({exc.message}); the message stays at the source"
            ) from exc
        return True

    async def _picked_before(self, integration: str, key: str) -> bool:
        try:
            at = await self._seen.picked_at(integration, key)
        except StorageUnavailable as exc:
            raise _StopRun(f"main storage unreachable ({exc.message}); nothing more is taken") from exc
        return at is not None and at >= self._clock() - timedelta(days=self._limits.dedup_days)

    async def _remove_duplicate(
        self, reader: SourceReader, item: SourceItem, report: RunReport, content: ItemContent | None = None
    ) -> None:
        """Picked before, its removal failed then: remove it now, without enqueueing it again."""
        if content is None:
            # A move writes the content to its new place, so it is read first.
            content = await self._retrying(lambda: reader.read(item))
        report.duplicates += 1
        try:
            await self._retrying(lambda: reader.remove(item, content))
        except PickupError as exc:
            report.errors.append(
                f"{item.name or 'a message'} was picked before but is still not removed ({exc.message})"
            )

    async def _give_back(self, reader: SourceReader, items: list[SourceItem]) -> None:
        for item in items:
            try:
                await reader.give_back(item)
            except Exception:
                # Its lock lapses on its own.
                log_event(logger, "pickup.give_back_failed", level=logging.WARNING, target=reader.target)

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Endpoint retry on pickup: the staggered attempts within the window that deliveries get."""
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            attempt_started = self._monotonic()
            try:
                return await operation()
            except TransientPickupError as exc:
                duration = self._monotonic() - attempt_started
                delay = endpoint_delay_s(
                    attempt, self._policy, elapsed_s=self._monotonic() - started + duration, retry_after_s=None,
                    rng=self._rng,
                )  # fmt: skip
                if delay is None:
                    raise TransientPickupError(f"{exc.message} (after {attempt} attempts)") from exc
                await self._sleep(delay)

    # --- failures and housekeeping --------------------------------------------------------------

    async def _record_failure(self, config: IntegrationConfig, source: Source, report: RunReport, runs: int) -> bool:
        """A `pickup` failure after `runs` failed runs in a row: a reason, no content.

        False when it cannot be stored (the count is kept, so the next failed run tries again).
        """
        now = self._clock()
        stub = Envelope(
            id=f"pickup-{uuid.uuid4().hex}",
            integration=config.id,
            sender=config.sender or None,
            receiver=config.receiver or None,
            received_at=now,
        )
        failure = new_failure(
            stub,
            origin=FailureOrigin.PICKUP,
            reason=f"{describe(source)}: {runs} runs in a row failed; the last: {report.last_error}",
            now=now,
            body_ref=None,
            attempts=runs,
        )
        try:
            await self._failures.add(failure)
        except StorageUnavailable:
            log_event(logger, "pickup.failure_unsaved", level=logging.WARNING, integration=config.id)
            return False
        self._metrics.count(Counter.FAILURES_PICKUP, config.id)
        log_event(logger, "pickup.failure_recorded", level=logging.WARNING, integration=config.id, runs=runs)
        report.failure_recorded = True
        return True

    async def _forget_old(self, integration: str) -> None:
        cutoff = self._clock() - timedelta(days=self._limits.dedup_days)
        with contextlib.suppress(StorageUnavailable):  # the next run forgets them
            await self._seen.forget_before(integration, cutoff, limit=FORGET_PER_RUN)
