"""Pure retry math: classification table, endpoint stagger, linear and backoff engine decisions."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from shared.config.models import BackoffPolicy, ErrorAction, ErrorRule, RetryMode, RetryPolicy
from shared.delivery.retry import (
    EndpointRetryPolicy,
    Verdict,
    classify_status,
    delay_actions_exhausted,
    endpoint_delay_s,
    engine_retry_decision,
    requeue_delay_s,
    should_delay,
)
from shared.storage.error_window_table import interval_start


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.SUCCESS),
        (204, Verdict.SUCCESS),
        *[(code, Verdict.PERMANENT) for code in (400, 401, 403, 404, 409, 422)],
        *[(code, Verdict.THROTTLED) for code in (408, 429, 504)],
        *[(code, Verdict.TRANSIENT) for code in (500, 502, 503)],
        (418, Verdict.PERMANENT),
        (501, Verdict.PERMANENT),
        (302, Verdict.PERMANENT),
    ],
)
def test_status_classification_follows_the_design_table(status, verdict):
    assert classify_status(status) is verdict


def test_error_rule_overrides_the_table_first_match_wins():
    rules = [
        ErrorRule(status_min=404, status_max=404, action=ErrorAction.RETRY),
        ErrorRule(status_min=500, status_max=599, action=ErrorAction.TERMINATE),
        ErrorRule(status_min=503, status_max=503, action=ErrorAction.RETRY),
    ]

    assert classify_status(404, rules) is Verdict.TRANSIENT
    assert classify_status(503, rules) is Verdict.PERMANENT
    assert classify_status(400, rules) is Verdict.PERMANENT


def test_redirect_rule_yields_redirect():
    rules = [ErrorRule(status_min=500, status_max=599, action=ErrorAction.REDIRECT)]

    assert classify_status(502, rules) is Verdict.REDIRECT


def test_success_is_never_overridden_by_a_rule():
    rules = [ErrorRule(status_min=200, status_max=299, action=ErrorAction.TERMINATE)]

    assert classify_status(200, rules) is Verdict.SUCCESS


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0)])
def test_endpoint_delays_double_with_equal_jitter(attempt, expected):
    policy = EndpointRetryPolicy(max_attempts=10, base_delay_s=2.0, window_s=60)

    assert endpoint_delay_s(attempt, policy, elapsed_s=0, retry_after_s=None, rng=_NoJitter()) == expected


def test_endpoint_jitter_stays_within_half_to_full_step():
    policy = EndpointRetryPolicy(max_attempts=10, base_delay_s=2.0, window_s=60)
    rng = random.Random(7)

    delays = [endpoint_delay_s(3, policy, elapsed_s=0, retry_after_s=None, rng=rng) for _ in range(200)]

    assert all(d is not None and 4.0 <= d <= 8.0 for d in delays)


def test_endpoint_retry_stops_after_max_attempts():
    policy = EndpointRetryPolicy(max_attempts=3, base_delay_s=0.1, window_s=60)

    assert endpoint_delay_s(3, policy, elapsed_s=0, retry_after_s=None, rng=random.Random()) is None


def test_endpoint_retry_never_leaves_the_window():
    policy = EndpointRetryPolicy(max_attempts=10, base_delay_s=8.0, window_s=60)

    assert endpoint_delay_s(4, policy, elapsed_s=50, retry_after_s=None, rng=_NoJitter()) is None


def test_retry_after_is_honoured_when_it_fits_the_window():
    policy = EndpointRetryPolicy(max_attempts=5, base_delay_s=1.0, window_s=60)

    assert endpoint_delay_s(1, policy, elapsed_s=10, retry_after_s=30, rng=_NoJitter()) == 30


def test_retry_after_beyond_the_window_ends_endpoint_retry():
    policy = EndpointRetryPolicy(max_attempts=5, base_delay_s=1.0, window_s=60)

    assert endpoint_delay_s(1, policy, elapsed_s=10, retry_after_s=120, rng=_NoJitter()) is None


@pytest.mark.parametrize(("runs_done", "retry"), [(1, True), (2, True), (3, False)])
def test_linear_three_runs_three_times_in_total_without_delay(runs_done, retry):
    decision = engine_retry_decision(RetryPolicy(linear_count=3), runs_done, rng=random.Random())

    assert decision.retry is retry
    assert decision.delay_s == 0


def test_linear_total_attempts_follow_the_spec_formula():
    # Given linear 4 and 3 endpoint attempts per run
    policy, endpoint_attempts = RetryPolicy(linear_count=4), 3

    # When runs are counted until the engine gives up
    runs = 1
    while engine_retry_decision(policy, runs, rng=random.Random()).retry:
        runs += 1

    # Then total attempts = linear count × endpoint attempts
    assert runs * endpoint_attempts == 12


def test_backoff_retries_max_number_of_retries_times_after_the_first_run():
    policy = RetryPolicy(mode=RetryMode.BACKOFF, backoff=BackoffPolicy(max_number_of_retries=5))

    decisions = [engine_retry_decision(policy, runs, rng=random.Random(1)).retry for runs in range(1, 8)]

    assert decisions == [True, True, True, True, True, False, False]


def test_backoff_delay_is_uniform_within_min_and_max():
    backoff = BackoffPolicy(requeue_min_delay_seconds=10, requeue_max_delay_seconds=60)
    rng = random.Random(3)

    delays = [requeue_delay_s(backoff, rng=rng) for _ in range(500)]

    assert min(delays) >= 10 and max(delays) <= 60
    assert len(set(delays)) > 30


def test_backoff_delay_respects_retry_after_up_to_the_max():
    backoff = BackoffPolicy(requeue_min_delay_seconds=1, requeue_max_delay_seconds=60)

    assert requeue_delay_s(backoff, rng=_NoJitterInt(), at_least_s=42.2) == 43
    assert requeue_delay_s(backoff, rng=_NoJitterInt(), at_least_s=600) == 60


class _NoJitterInt(random.Random):
    def randint(self, a: int, b: int) -> int:
        return a


def test_disabled_backoff_decides_like_linear_three():
    policy = RetryPolicy(mode=RetryMode.BACKOFF, backoff=BackoffPolicy(enabled=False, max_number_of_retries=9))

    assert [engine_retry_decision(policy, runs, rng=random.Random()).retry for runs in (1, 2, 3)] == [True, True, False]


def test_delay_starts_only_above_the_threshold():
    backoff = BackoffPolicy(max_errors_per_interval=5)

    assert not should_delay(backoff, 5)
    assert should_delay(backoff, 6)


def test_delay_actions_are_bounded():
    backoff = BackoffPolicy(max_delay_actions=2)

    assert not delay_actions_exhausted(backoff, 1)
    assert delay_actions_exhausted(backoff, 2)


def test_interval_start_aligns_to_the_interval_length():
    now = datetime(2026, 1, 1, 12, 7, 30, tzinfo=UTC)

    assert datetime.fromtimestamp(interval_start(now, 3), tz=UTC) == datetime(2026, 1, 1, 12, 6, tzinfo=UTC)
