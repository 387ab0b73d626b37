"""Pure retry policy math for all three layers: no clock, no I/O, no logging.

Randomness comes in as `rng` so tests are exact. Who decides what to do with these numbers
is `shared.delivery.engine`; this module only computes them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from shared.config.models import BackoffPolicy, ErrorAction, ErrorRule, RetryMode, RetryPolicy

#: Never wait less than this between endpoint attempts, even when jitter rolls low.
MIN_ENDPOINT_DELAY_S = 0.05


# --- classification (DESIGN.md section 4) ----------------------------------------------------


class Verdict(StrEnum):
    SUCCESS = "success"
    #: Do not retry at all (400/401/403/404/409/422, unknown codes, a terminate rule).
    PERMANENT = "permanent"
    #: Endpoint retry only, then fail (408/429/504).
    THROTTLED = "throttled"
    #: Endpoint retry, then engine retry (500/502/503, network errors, a retry rule).
    TRANSIENT = "transient"
    #: Deliver to the fallback endpoint instead (a redirect rule).
    REDIRECT = "redirect"


PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 409, 422})
THROTTLED_STATUSES = frozenset({408, 429, 504})
TRANSIENT_STATUSES = frozenset({500, 502, 503})


def classify_status(status_code: int, rules: list[ErrorRule] | tuple[ErrorRule, ...] = ()) -> Verdict:
    """The receiver's status → what to do. The first matching error rule overrides the table."""
    if 200 <= status_code < 300:
        return Verdict.SUCCESS
    for rule in rules:
        if rule.matches(status_code):
            return _RULE_VERDICTS[rule.action]
    if status_code in THROTTLED_STATUSES:
        return Verdict.THROTTLED
    if status_code in TRANSIENT_STATUSES:
        return Verdict.TRANSIENT
    return Verdict.PERMANENT


_RULE_VERDICTS = {
    ErrorAction.RETRY: Verdict.TRANSIENT,
    ErrorAction.TERMINATE: Verdict.PERMANENT,
    ErrorAction.REDIRECT: Verdict.REDIRECT,
}


# --- layer 1: endpoint retry -----------------------------------------------------------------


@dataclass(frozen=True)
class EndpointRetryPolicy:
    """Immediate, staggered attempts inside a window (the spec: within one minute)."""

    max_attempts: int = 4
    base_delay_s: float = 2.0
    window_s: float = 60.0


def endpoint_delay_s(
    attempt: int,
    policy: EndpointRetryPolicy,
    *,
    elapsed_s: float,
    retry_after_s: float | None,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when endpoint retry is over.

    `attempt` counts the attempts made so far (1 after the first). Delays double from
    `base_delay_s` with "equal jitter" (half fixed, half random), so attempts from many
    instances spread out. A receiver's Retry-After is honoured when it still fits the
    window; when it does not, waiting less would be rude and waiting more breaks the
    window, so endpoint retry ends and the next layer takes over.
    """
    if attempt >= policy.max_attempts:
        return None
    if retry_after_s is not None:
        delay = max(retry_after_s, MIN_ENDPOINT_DELAY_S)
    else:
        step = policy.base_delay_s * (2 ** (attempt - 1))
        delay = max(step / 2 + rng.uniform(0, step / 2), MIN_ENDPOINT_DELAY_S)
    if elapsed_s + delay > policy.window_s:
        return None
    return delay


# --- layer 2: engine retry -------------------------------------------------------------------


@dataclass(frozen=True)
class EngineDecision:
    """After a transient failure: requeue (with a visibility delay) or give up."""

    retry: bool
    delay_s: int = 0
    reason: str = ""


def engine_retry_decision(
    policy: RetryPolicy, engine_attempts: int, *, rng: random.Random, retry_after_s: float | None = None
) -> EngineDecision:
    """`engine_attempts` is how many engine runs already happened, the failed one included.

    Linear: `linear_count` runs in total, requeued without delay, so the total number of
    attempts is linear_count × endpoint attempts (the spec's formula).
    Backoff: the first run plus `max_number_of_retries` retries, each requeued with a
    visibility delay uniform in [min, max] (never shorter than a receiver's Retry-After).
    """
    effective = policy.effective()
    if effective.mode is RetryMode.LINEAR:
        if engine_attempts < effective.linear_count:
            return EngineDecision(retry=True, delay_s=0)
        return EngineDecision(retry=False, reason=f"linear engine retry exhausted after {engine_attempts} runs")
    backoff = effective.backoff
    if engine_attempts <= backoff.max_number_of_retries:
        return EngineDecision(retry=True, delay_s=requeue_delay_s(backoff, rng=rng, at_least_s=retry_after_s))
    return EngineDecision(retry=False, reason=f"backoff retry exhausted after {backoff.max_number_of_retries} retries")


def requeue_delay_s(backoff: BackoffPolicy, *, rng: random.Random, at_least_s: float | None = None) -> int:
    """Uniform in [ReQueueMinDelaySeconds, ReQueueMaxDelaySeconds], whole seconds (queue visibility)."""
    delay = rng.randint(backoff.requeue_min_delay_seconds, backoff.requeue_max_delay_seconds)
    if at_least_s is not None:
        delay = max(delay, min(math.ceil(at_least_s), backoff.requeue_max_delay_seconds))
    return delay


def should_delay(backoff: BackoffPolicy, errors_in_interval: int) -> bool:
    """The error window is over its threshold: hold messages back before any delivery attempt."""
    return errors_in_interval > backoff.max_errors_per_interval


def delay_actions_exhausted(backoff: BackoffPolicy, delay_actions: int) -> bool:
    return delay_actions >= backoff.max_delay_actions
