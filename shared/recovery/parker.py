"""Parking (DESIGN.md section 6): put what cannot go on now on the recovery flow, a separate failure domain.

Ingest that cannot enqueue, an engine that cannot requeue or record a failure, and a job that
cannot re-enqueue a message park it here as a scheduled message; the sweep (sweeper.py) moves it
back once the main flow is healthy. A body too large for the flow is kept beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.errors import StorageUnavailable
from shared.logs import log_event
from shared.messages.models import Envelope
from shared.messages.wire import InvalidEnvelope, parse_envelope
from shared.operability.metrics import Counter, Metrics
from shared.recovery.models import Flow, ParkedMessage, stable_id
from shared.recovery.ports import RecoveryFlow
from shared.values import UNKNOWN_INTEGRATION, utc_now

logger = logging.getLogger("rebound.recovery")


class Parker:
    def __init__(
        self, flow: RecoveryFlow, *, delay_s: int, metrics: Metrics, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._flow = flow
        self._delay_s = delay_s
        self._metrics = metrics
        self._clock = clock

    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        """Park a message for `inbound`. Raises StorageUnavailable when the recovery flow fails too."""
        parked = ParkedMessage(
            flow="inbound", text=envelope.model_dump_json(exclude_none=True), reason=reason, parked_at=self._clock()
        )
        text = parked.model_dump_json()
        if len(text.encode()) > self._flow.max_text_bytes:
            body = envelope.inline_body() or b""
            if not await self._flow.put_body(envelope.id, body, envelope.content_type):
                raise StorageUnavailable(f"message {envelope.id} is too large for the recovery flow")
            slim = envelope.model_copy(update={"body_text": None, "body_b64": None})
            parked = parked.model_copy(
                update={"text": slim.model_dump_json(exclude_none=True), "body_blob": envelope.id}
            )
            text = parked.model_dump_json()
        await self._flow.send(text, delay_s=self._delay_s)
        self._metrics.count(Counter.PARKED, envelope.integration)
        log_event(
            logger, "message.parked", level=logging.WARNING, flow="inbound", integration=envelope.integration,
            message_id=envelope.id, correlation_id=envelope.correlation_id, reason=reason,
        )  # fmt: skip

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        """Park a raw queue message (as the engine or the job runner received it)."""
        if flow == "inbound":
            try:
                envelope = parse_envelope(text.encode(), fallback_id=message_id or stable_id(text))
            except InvalidEnvelope:
                envelope = None
            if envelope is not None:
                await self.park_envelope(envelope, reason)
                return
        parked = ParkedMessage(flow=flow, text=text, reason=reason, parked_at=self._clock())
        await self._flow.send(parked.model_dump_json(), delay_s=self._delay_s)
        self._metrics.count(Counter.PARKED, UNKNOWN_INTEGRATION if flow == "inbound" else "_jobs")
        log_event(logger, "message.parked", level=logging.WARNING, flow=flow, reason=reason)
