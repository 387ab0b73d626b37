"""Layer 1: endpoint retry. Immediate, staggered attempts against one endpoint inside the window."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.config.models import ErrorRule
from shared.delivery.adapters.base import Delivery, Sender
from shared.delivery.retry import EndpointRetryPolicy, Verdict, classify_status, endpoint_delay_s
from shared.errors import PermanentDeliveryError, ThrottledDeliveryError, TransientDeliveryError
from shared.messages.models import AttemptRecord
from shared.operability.telemetry import tracer


@dataclass
class EndpointResult:
    verdict: Verdict
    reason: str = ""
    status_code: int | None = None
    retry_after_s: float | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)


@dataclass(frozen=True)
class _Answer:
    verdict: Verdict
    reason: str
    status_code: int | None
    retry_after_s: float | None


async def _attempt(sender: Sender, delivery: Delivery, rules: Sequence[ErrorRule]) -> _Answer:
    try:
        response = await sender.send(delivery)
    except ThrottledDeliveryError as exc:
        return _Answer(Verdict.THROTTLED, exc.message, exc.status_code, exc.retry_after_s)
    except TransientDeliveryError as exc:
        return _Answer(Verdict.TRANSIENT, exc.message, exc.status_code, exc.retry_after_s)
    except PermanentDeliveryError as exc:
        return _Answer(Verdict.PERMANENT, exc.message, exc.status_code, None)
    verdict = classify_status(response.status_code, list(rules))
    reason = (
        ""
        if verdict is Verdict.SUCCESS
        else f"HTTP {response.status_code}" + (f": {response.detail}" if response.detail else "")
    )
    return _Answer(verdict, reason, response.status_code, response.retry_after_s)


async def deliver_with_endpoint_retry(
    sender: Sender,
    delivery: Delivery,
    *,
    rules: Sequence[ErrorRule],
    policy: EndpointRetryPolicy,
    engine_attempt: int,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]],
    now: Callable[[], datetime],
    monotonic: Callable[[], float] = time.monotonic,
) -> EndpointResult:
    """Attempt until success, a verdict that retrying cannot change, or the window closes."""
    started = monotonic()
    result = EndpointResult(verdict=Verdict.TRANSIENT)
    while True:
        attempt_started = monotonic()
        at = now()
        with tracer.start_as_current_span("rebound.deliver", attributes={"rebound.target": sender.target}) as span:
            answer = await _attempt(sender, delivery, rules)
            span.set_attribute("rebound.verdict", answer.verdict.value)
            if answer.status_code is not None:
                span.set_attribute("http.response.status_code", answer.status_code)
        duration_s = monotonic() - attempt_started
        result.attempts.append(
            AttemptRecord(
                at=at,
                engine_attempt=engine_attempt,
                endpoint_attempt=len(result.attempts) + 1,
                target=sender.target,
                status_code=answer.status_code,
                outcome=answer.verdict.value if answer.verdict is Verdict.SUCCESS else answer.reason[:300],
                duration_ms=round(duration_s * 1000, 1),
            )
        )
        result.verdict, result.reason = answer.verdict, answer.reason
        result.status_code, result.retry_after_s = answer.status_code, answer.retry_after_s
        if answer.verdict in (Verdict.SUCCESS, Verdict.PERMANENT, Verdict.REDIRECT):
            return result
        # The next attempt will likely take as long as this one: count it against the window too.
        delay = endpoint_delay_s(
            len(result.attempts),
            policy,
            elapsed_s=monotonic() - started + duration_s,
            retry_after_s=answer.retry_after_s,
            rng=rng,
        )
        if delay is None:
            return result
        await sleep(delay)
