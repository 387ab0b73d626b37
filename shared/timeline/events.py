"""Timeline events from what the engine, jobs and recovery decided (pure).

A message gets a timeline from its first trouble on: a failed attempt, a delay action, a failure,
a resend, parking. A message delivered at its first endpoint attempt, with nothing before, gets
none (`events_of` returns nothing, so it costs no write). What came before is reconstructed from
the envelope: `received` goes with every write (same key, so one row; a message already in trouble
when timelines began still gets its start), and endpoint attempts are recorded from the attempt
history of the run that made them, at the run's decision, not one write per attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.delivery.engine import (
    DelayScheduled,
    Delivered,
    FailureRecorded,
    Outcome,
    RetryScheduled,
)
from shared.failures.models import Failure
from shared.messages.models import AttemptRecord, Envelope
from shared.timeline.models import TimelineEvent, TimelineItem


def had_trouble(envelope: Envelope) -> bool:
    """Whether anything but a first try came before: a run, a delay, a resend, a recovery, an attempt."""
    return bool(
        envelope.engine_attempts
        or envelope.delay_actions
        or envelope.resend_count
        or envelope.recovery_count
        or envelope.attempts
        or envelope.job_id
    )


def _details(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


#: Events of the same instant in the order a story reads (the key starts with the rank): what arrived, what
#: was tried, what was decided, and the delivery last.
_RANK = {
    TimelineEvent.RECEIVED: 0,
    TimelineEvent.RESENT: 1,
    TimelineEvent.RECOVERED: 1,
    TimelineEvent.ATTEMPT: 2,
    TimelineEvent.RETRY_SCHEDULED: 3,
    TimelineEvent.DELAYED: 3,
    TimelineEvent.PARKED: 3,
    TimelineEvent.FAILED: 3,
    TimelineEvent.DELIVERED: 4,
}


def _key(event: TimelineEvent, discriminator: str | None) -> str:
    return f"{_RANK[event]}.{event.value}.{discriminator or uuid.uuid4().hex[:10]}"


def event(
    event_kind: TimelineEvent, at: datetime, instance: str | None, discriminator: str | None = None, **details: Any
) -> TimelineItem:
    """An event; one with a `discriminator` has the same key whenever it is recorded again (else a unique one)."""
    return TimelineItem(
        at=at, event=event_kind, instance=instance, details=_details(**details), key=_key(event_kind, discriminator)
    )


def received(envelope: Envelope) -> TimelineItem:
    """Reconstructed from the envelope: the same key every time, so recording it again keeps one row."""
    return event(
        TimelineEvent.RECEIVED, envelope.received_at.astimezone(UTC), None, "envelope",
        sender=envelope.sender, receiver=envelope.receiver, correlation_id=envelope.correlation_id,
    )  # fmt: skip


def attempts(history: Sequence[AttemptRecord], instance: str | None) -> list[TimelineItem]:
    return [
        event(
            TimelineEvent.ATTEMPT,
            attempt.at,
            instance,
            f"{attempt.engine_attempt}.{attempt.endpoint_attempt}",
            engine_attempt=attempt.engine_attempt,
            endpoint_attempt=attempt.endpoint_attempt,
            endpoint=attempt.target or None,
            status_code=attempt.status_code,
            outcome=attempt.outcome,
            duration_ms=round(attempt.duration_ms, 1),
        )  # fmt: skip
        for attempt in history
    ]


def failed(failure: Failure, instance: str | None, *, persisted: bool = True) -> TimelineItem:
    return event(
        TimelineEvent.FAILED, failure.failed_at, instance, failure.id,
        failure_id=failure.id if persisted else None, origin=failure.origin.value, reason=failure.reason,
        status_code=failure.status_code, attempts=failure.attempts, persisted=persisted,
    )  # fmt: skip


def _this_run(envelope: Envelope, failure: Failure) -> list[AttemptRecord]:
    """The attempts a failure's history adds to the envelope's (its history is the envelope's plus this run's)."""
    before = set(envelope.history)
    return [attempt for attempt in failure.history if attempt not in before]


def events_of(envelope: Envelope, outcome: Outcome, *, now: datetime, instance: str) -> list[TimelineItem]:
    """What to record for an engine decision; nothing for a first-try delivery, a hold or a deferral."""
    first_trouble = not had_trouble(envelope)
    items: list[TimelineItem]
    match outcome:
        case Delivered(history=history):
            if first_trouble and len(history) <= 1:
                return []
            items = [
                *attempts(history, instance),
                event(
                    TimelineEvent.DELIVERED, now, instance, status_code=outcome.status_code,
                    attempts=outcome.attempts, engine_attempt=envelope.engine_attempts + 1, job_id=envelope.job_id,
                ),
            ]  # fmt: skip
        case RetryScheduled(history=history):
            items = [
                *attempts(history, instance),
                event(
                    TimelineEvent.RETRY_SCHEDULED, now, instance, engine_attempt=outcome.engine_attempts,
                    next_engine_attempt=outcome.engine_attempts + 1, delay_s=outcome.delay_s, reason=outcome.reason,
                ),
            ]  # fmt: skip
        case DelayScheduled():
            delay_actions, delay_s = outcome.delay_actions, outcome.delay_s
            items = [event(TimelineEvent.DELAYED, now, instance, delay_actions=delay_actions, delay_s=delay_s)]
        case FailureRecorded(failure=failure, persisted=persisted):
            items = [
                *attempts(_this_run(envelope, failure), instance),
                failed(failure, instance, persisted=persisted),
            ]
        case _:
            return []
    return [received(envelope), *items]


def resent(envelope: Envelope, *, job_id: str, actor: str | None, now: datetime, instance: str) -> list[TimelineItem]:
    return [
        received(envelope),
        event(TimelineEvent.RESENT, now, instance, job_id=job_id, actor=actor, resend_count=envelope.resend_count),
    ]


def parked(envelope: Envelope, reason: str, *, now: datetime, instance: str) -> list[TimelineItem]:
    return [received(envelope), event(TimelineEvent.PARKED, now, instance, reason=reason, job_id=envelope.job_id)]


def recovered(envelope: Envelope, *, now: datetime, instance: str) -> list[TimelineItem]:
    return [event(TimelineEvent.RECOVERED, now, instance, recovery_count=envelope.recovery_count)]
