"""One batch of a job page: resend (retry) or remove (delete) the selected failures, with an outcome each.

Retry re-enqueues the failure's envelope (same message id, resend_count+1, counters reset)
and only then removes the failure: a crash in between can send a message twice (receivers
deduplicate on Idempotency-Key, which is that same id), never lose it. Delete removes the
failure, then its content.

A resent envelope carries the job's id, so the job can count how its messages settle
(shared/jobs/settle.py), and the message's timeline records `resent` (job and who started it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.concurrency import each
from shared.config.models import Endpoint
from shared.delivery.adapters.base import Delivery
from shared.delivery.ports import SenderSource
from shared.errors import ConfigError, DeliveryError, NothingToResend, ReboundError, StorageUnavailable
from shared.failures.models import Failure, FailureOrigin
from shared.failures.ports import FailureLog, Removal
from shared.jobs.models import Job
from shared.messages.models import Envelope
from shared.messages.ports import PayloadStore
from shared.messages.shards import InboundShards
from shared.messages.wire import pack
from shared.recovery.ports import Parking
from shared.timeline.recorder import TimelineRecorder
from shared.tokens import Cursor, Version

#: Queue sends a retry batch runs at once.
CONCURRENCY = 16


@dataclass(frozen=True)
class BatchItem:
    """One selected failure: None when it is gone (an id that no longer exists), its version, the cursor after it."""

    failure: Failure | None
    version: Version | None
    position: Cursor

    @property
    def present(self) -> Failure:
        assert self.failure is not None
        return self.failure


#: True: retried/deleted by this page; False: already gone (skipped); an error: failed, left in place.
Outcome = bool | ReboundError
Batch = list[BatchItem]


def _outcomes(batch: Batch, removal: Removal, errors: dict[str, ReboundError]) -> list[Outcome]:
    """Per item: its error (send or content), else its version conflict, else whether this page removed it."""
    failed: dict[str, ReboundError] = {failure.id: conflict for failure, conflict in removal.changed}
    failed.update(errors)
    removed = {failure.id for failure in removal.removed}
    return [
        False if item.failure is None else failed.get(item.failure.id, item.failure.id in removed) for item in batch
    ]


class JobBatches:
    def __init__(
        self,
        *,
        failures: FailureLog,
        payloads: PayloadStore,
        inbound: InboundShards,
        parker: Parking | None = None,
        concurrency: int = CONCURRENCY,
        timeline: TimelineRecorder | None = None,
        senders: SenderSource | None = None,
    ) -> None:
        self._failures = failures
        self._payloads = payloads
        self._inbound = inbound
        self._parker = parker
        self._concurrency = concurrency
        self._timeline = timeline
        self._senders = senders

    async def send_to(self, batch: Batch, target: Endpoint) -> list[Outcome]:
        """Send elsewhere (issue 19): deliver every present failure's message once to `target`, then remove
        (with its content) each one the target took; one the target refused stays, failed, with its answer.

        One attempt each, no engine retry: the job's `failed` count and `last_error` say what did not go,
        and the operator decides again. Delivered before removed: a crash in between delivers twice
        (same Idempotency-Key), never loses a message.
        """
        present = [item for item in batch if item.failure is not None]
        errors = await each(
            present, lambda item: self._deliver(item, target), limit=self._concurrency, errors=ReboundError
        )
        sent = [item for item, error in zip(present, errors, strict=True) if error is None]
        removal = await self._failures.remove_many([(item.present, item.version) for item in sent])
        refs = [ref for failure in removal.removed for ref in self._failures.content_refs(failure)]
        if refs:
            await self._payloads.delete_many(refs)  # best effort: the retention purge takes what stays
        failed = {item.present.id: error for item, error in zip(present, errors, strict=True) if error}
        return _outcomes(batch, removal, failed)

    async def _deliver(self, item: BatchItem, target: Endpoint) -> None:
        if self._senders is None:
            raise ConfigError("this job runner cannot send elsewhere (no senders)")
        if item.present.origin is FailureOrigin.PICKUP:
            raise NothingToResend("a pickup failure holds no message to send")
        failure = await self._failures.restore(item.present)
        body = b""
        if failure.body_ref:
            payload = await self._payloads.get(failure.body_ref)
            if payload is None:
                raise NothingToResend(f"the content of failure {failure.id} is gone")
            body = payload.data
        delivery = Delivery(
            message_id=failure.message_id,
            integration=failure.integration,
            body=body,
            content_type=failure.content_type,
            correlation_id=failure.correlation_id,
            headers=failure.headers,
        )
        response = await self._senders.sender_for(target).send(delivery)
        if not response.ok:
            detail = f": {response.detail}" if response.detail else ""
            raise DeliveryError(
                f"{target.kind} target answered {response.status_code}{detail}", status_code=response.status_code
            )

    async def retry(self, batch: Batch, *, job: Job | None = None) -> list[Outcome]:
        """Enqueue every present failure's message (`concurrency` at a time), then remove those that went out.

        Enqueue before remove: a crash in between sends a message twice, never loses one. When
        `inbound` is unreachable (and there is nowhere to park), what was sent is still removed
        before the error ends the page, so the re-run does not send it again.
        """
        present = [item for item in batch if item.failure is not None]

        async def enqueue(item: BatchItem) -> None:
            await self._enqueue_again(item, job)

        sent_errors = await each(present, enqueue, limit=self._concurrency, errors=ReboundError)
        sent = [item for item, error in zip(present, sent_errors, strict=True) if error is None]
        removal = await self._failures.remove_many([(item.present, item.version) for item in sent])
        await self._discard_overflow(removal.removed)
        unavailable = next((e for e in sent_errors if isinstance(e, StorageUnavailable)), None)
        if unavailable is not None:
            raise unavailable  # the host re-runs the page; the checkpoint and the removals make that safe
        errors = {item.present.id: error for item, error in zip(present, sent_errors, strict=True) if error}
        return _outcomes(batch, removal, errors)

    async def _discard_overflow(self, removed: Sequence[Failure]) -> None:
        """The resent messages carry their whole headers again; the copies kept for the resend can go.
        Best effort: what stays behind is removed by the retention purge."""
        refs = [ref for ref in map(self._failures.overflow_ref, removed) if ref]
        if refs:
            await self._payloads.delete_many(refs)

    async def _enqueue_again(self, item: BatchItem, job: Job | None) -> None:
        if item.present.origin is FailureOrigin.PICKUP:
            # It records a source that kept failing, not a message: the source retries on its own.
            raise NothingToResend(
                "a pickup failure holds no message to resend: the source is tried again at every interval; "
                "delete the failure once its cause is fixed"
            )
        envelope = resend_envelope(await self._failures.restore(item.present), job_id=job.id if job else None)
        _, text = await pack(envelope, self._payloads)
        try:
            await self._inbound.send(envelope.integration, text)
        except StorageUnavailable:
            if self._parker is None:
                raise
            # The message is safe in the recovery flow; the sweep puts it on inbound later.
            await self._parker.park_envelope(envelope, "retry job could not enqueue to inbound")
        if self._timeline is not None and job is not None:
            actor = job.created_by.name if job.created_by else None
            await self._timeline.resent(envelope, job_id=job.id, actor=actor)

    async def delete(self, batch: Batch) -> list[Outcome]:
        """Remove the present failures (transactions of 100), then their content (Blob Batch requests)."""
        present = [item for item in batch if item.failure is not None]
        removal = await self._failures.remove_many([(item.present, item.version) for item in present])
        blobs = [(failure, ref) for failure in removal.removed for ref in self._failures.content_refs(failure)]
        # A batch that cannot reach storage raises here: the rows are gone, and the retention
        # purge removes content left behind.
        blob_errors = await self._payloads.delete_many([ref for _, ref in blobs])
        unavailable = next((e for e in blob_errors if isinstance(e, StorageUnavailable)), None)
        if unavailable is not None:
            raise unavailable
        errors: dict[str, ReboundError] = {
            failure.id: error for (failure, _), error in zip(blobs, blob_errors, strict=True) if error
        }
        return _outcomes(batch, removal, errors)


def resend_envelope(failure: Failure, *, job_id: str | None = None) -> Envelope:
    """The failure's message as it goes back to `inbound`: same id, resend_count+1, counters reset, and the
    resending job's id."""
    return Envelope(
        id=failure.message_id,
        integration=failure.integration,
        sender=failure.sender,
        receiver=failure.receiver,
        correlation_id=failure.correlation_id,
        content_type=failure.content_type,
        headers=failure.headers,
        body_ref=failure.body_ref,
        received_at=failure.received_at or failure.failed_at,
        resend_count=failure.resend_count + 1,
        job_id=job_id,
    )
