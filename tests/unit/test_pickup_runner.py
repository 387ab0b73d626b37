"""The pickup runner on twins: what is taken, when it is removed, what happens when something fails."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from shared.config.models import IntegrationConfig
from shared.delivery.retry import EndpointRetryPolicy
from shared.errors import PermanentPickupError, TransientPickupError
from shared.failures.models import FailureOrigin
from shared.messages.shards import InboundShards
from shared.operability.metrics import Metrics
from shared.pickup.items import NAME_HEADER, envelope_id
from shared.pickup.models import PickupOutcome
from shared.pickup.runner import PickupLimits, PickupRunner
from tests.twins.clock import FakeTime
from tests.twins.pickups import (
    DictIntegrations,
    DictPayloads,
    ListFailures,
    ListParker,
    ListQueue,
    MemoryPickupStates,
    MemoryReaders,
    MemorySeenItems,
    MemorySource,
)

LIMITS = PickupLimits(dedup_days=5, max_consecutive_failures=3, max_message_bytes=1024, max_inbound_depth=100)


def make_config(**source: object) -> IntegrationConfig:
    return IntegrationConfig.model_validate(
        {
            "id": "orders",
            "name": "Orders",
            "sender": "erp",
            "receiver": "shop",
            "endpoint": {"kind": "http", "url": "https://shop.example/orders"},
            "source": {"kind": "blob", "connection": "Upstream", "container": "drop", "interval_seconds": 60, **source},
        }
    )


class Rig:
    """A runner on twins, and everything a test looks at."""

    def __init__(
        self, *, rereadable: bool = True, limits: PickupLimits = LIMITS, shards: int = 1, **source: object
    ) -> None:
        self.time = FakeTime()
        self.config = make_config(**source)
        self.integrations = DictIntegrations(self.config)
        self.source = MemorySource(rereadable=rereadable)
        self.states = MemoryPickupStates()
        self.seen = MemorySeenItems()
        self.inbound = ListQueue()
        #: `inbound-1` … with INBOUND_SHARDS = `shards` (`orders` is on shard 1 of 4).
        self.shards = [self.inbound, *(ListQueue(name=f"inbound-{n}") for n in range(1, shards))]
        self.parker = ListParker()
        self.failures = ListFailures()
        self.metrics = Metrics(clock=lambda: 0.0)
        self.runner = self.build(limits)

    def build(self, limits: PickupLimits = LIMITS) -> PickupRunner:
        return PickupRunner(
            configs=self.integrations,
            states=self.states,
            seen=self.seen,
            readers=MemoryReaders(self.source),
            inbound=InboundShards(self.shards),
            payloads=DictPayloads(),
            parker=self.parker,
            failures=self.failures,
            metrics=self.metrics,
            limits=limits,
            endpoint_policy=EndpointRetryPolicy(max_attempts=4, base_delay_s=2.0, window_s=60.0),
            clock=self.time.now,
            rng=random.Random(7),
            sleep=self.time.sleep,
            monotonic=self.time.monotonic,
        )

    def later(self, seconds: float = 61) -> None:
        self.time.advance(seconds)


async def test_a_waiting_file_is_enqueued_as_an_envelope_and_only_then_removed():
    # Given a file at the source
    rig = Rig()
    rig.source.put("in/order-1.xml", b"<order/>")

    # When the source runs
    [report] = await rig.runner.run_due()

    # Then it is on inbound with the config's sender and receiver, its name and a type from the name
    assert report.outcome is PickupOutcome.OK and report.picked == 1
    [envelope] = rig.inbound.envelopes()
    assert (envelope.sender, envelope.receiver, envelope.integration) == ("erp", "shop", "orders")
    assert envelope.headers[NAME_HEADER] == "in/order-1.xml"
    assert envelope.content_type == "text/xml"
    assert envelope.body_text == "<order/>"
    # And it was removed from the source, and the state says so
    assert rig.source.removed == ["in/order-1.xml"]
    state = rig.states.state("orders")
    assert state.picked_total == 1 and state.last_outcome is PickupOutcome.OK
    assert state.next_run_at == rig.time.now() + timedelta(seconds=60)
    assert state.lease_owner is None


async def test_the_envelope_id_is_the_same_whenever_the_same_item_is_picked():
    # Given the same item picked by two separate runners (say, before and after a crash)
    first, second = Rig(), Rig()
    for rig in (first, second):
        rig.source.put("a.json", b"{}")
        await rig.runner.run_due()

    # Then both envelopes carry the same id, which travels as the Idempotency-Key
    [a], [b] = first.inbound.envelopes(), second.inbound.envelopes()
    assert a.id == b.id == envelope_id("orders", first.config.source, "a.json\n1")  # type: ignore[arg-type]
    assert a.correlation_id == a.id


async def test_an_item_whose_removal_failed_is_removed_later_without_being_ingested_twice():
    # Given a file that is enqueued but cannot be removed, even with endpoint retry
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    rig.source.fail("remove", TransientPickupError("share is busy"), times=4)  # one run's endpoint attempts
    [report] = await rig.runner.run_due()
    assert report.outcome is PickupOutcome.FAILED and "not removed" in (report.last_error or "")
    assert "a.xml" in rig.source.entries

    # When the next run finds it again
    rig.later()
    [report] = await rig.runner.run_due()

    # Then it is removed, not enqueued a second time
    assert report.duplicates == 1 and report.picked == 0
    assert len(rig.inbound.sent) == 1
    assert "a.xml" not in rig.source.entries


async def test_a_file_written_again_under_the_same_name_is_a_new_message():
    rig = Rig()
    rig.source.put("a.xml", b"<v1/>")
    await rig.runner.run_due()
    rig.source.put("a.xml", b"<v2/>")  # a new version: another key
    rig.source.entries["a.xml"].version = 2

    rig.later()
    await rig.runner.run_due()

    assert [e.body_text for e in rig.inbound.envelopes()] == ["<v1/>", "<v2/>"]


async def test_when_inbound_is_unreachable_files_stay_at_the_source():
    # Given two files and an inbound queue that refuses sends (its depth still answers)
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    rig.source.put("b.xml", b"<b/>")
    rig.inbound.waiting = 0
    sends = rig.inbound.send

    async def refuse(text: str, *, delay_s: int | None = None) -> None:
        rig.inbound.down = True
        await sends(text, delay_s=delay_s)

    rig.inbound.send = refuse  # type: ignore[method-assign]

    # When the source runs
    [report] = await rig.runner.run_due()

    # Then nothing was removed, nothing parked, and the run failed saying why
    assert rig.source.removed == [] and set(rig.source.entries) == {"a.xml", "b.xml"}
    assert rig.parker.parked == []
    assert report.outcome is PickupOutcome.FAILED and "inbound unreachable" in (report.last_error or "")


async def test_a_message_that_inbound_cannot_take_goes_to_the_recovery_flow_then_is_removed():
    # Given a message source (not readable again once received) and inbound down
    rig = Rig(rereadable=False)
    rig.source.put("m1", b'{"n": 1}')
    rig.inbound.down = True
    rig.runner = rig.build(PickupLimits(**{**LIMITS.__dict__, "max_inbound_depth": 10**9}))
    # depth() fails while inbound is down: let the depth check pass, sends fail
    rig.inbound.depth = _zero  # type: ignore[method-assign]

    # When the source runs
    [report] = await rig.runner.run_due()

    # Then the message is parked, and only then removed from the source
    [(envelope, reason)] = rig.parker.parked
    assert envelope.inline_body() == b'{"n": 1}' and "inbound" in reason
    assert rig.source.removed == ["m1"]
    assert report.picked == 1 and report.parked == 1


async def test_a_message_stays_at_the_source_when_neither_inbound_nor_recovery_can_take_it():
    rig = Rig(rereadable=False)
    rig.source.put("m1", b"x")
    rig.inbound.down = True
    rig.inbound.depth = _zero  # type: ignore[method-assign]
    rig.parker.down = True

    [report] = await rig.runner.run_due()

    assert rig.source.removed == [] and rig.source.given_back == ["m1"]
    assert not rig.source.entries["m1"].locked
    assert report.outcome is PickupOutcome.FAILED


async def test_a_transient_listing_failure_is_retried_inside_the_endpoint_window():
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    rig.source.fail("list", TransientPickupError("connection reset"), times=2)

    [report] = await rig.runner.run_due()

    assert report.outcome is PickupOutcome.OK and report.picked == 1
    assert len(rig.time.sleeps) == 2 and sum(rig.time.sleeps) <= 60


async def test_a_permanent_failure_is_not_retried_at_once_and_the_run_fails():
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    rig.source.fail("open", PermanentPickupError("host key refused"))

    [report] = await rig.runner.run_due()

    assert report.outcome is PickupOutcome.FAILED and report.last_error == "host key refused"
    assert rig.time.sleeps == [] and rig.inbound.sent == []
    assert "a.xml" in rig.source.entries


async def test_after_max_consecutive_failed_runs_a_pickup_failure_is_recorded_and_counting_restarts():
    # Given a source that fails on every run
    rig = Rig()
    rig.source.fail("open", PermanentPickupError("login refused for 'rebound'"), times=100)

    # When it runs three times (PICKUP_MAX_CONSECUTIVE_FAILURES = 3), and once more
    counts = []
    for _ in range(4):
        await rig.runner.run_due()
        counts.append(rig.states.state("orders").consecutive_failures)
        rig.later()

    # Then one `pickup` failure with the reason and no content was recorded at the third
    assert counts == [1, 2, 0, 1]
    [failure] = rig.failures.added
    assert failure.origin is FailureOrigin.PICKUP and failure.body_ref is None
    assert "3 runs in a row failed" in failure.reason and "login refused" in failure.reason
    assert (failure.integration, failure.sender, failure.receiver) == ("orders", "erp", "shop")
    assert rig.metrics.snapshot().total.since_start["failures_pickup"] == 1


async def test_a_successful_run_resets_the_failure_count():
    rig = Rig()
    rig.source.fail("open", PermanentPickupError("down"), times=2)
    for _ in range(3):
        await rig.runner.run_due()
        rig.later()

    assert rig.states.state("orders").consecutive_failures == 0
    assert rig.failures.added == []


async def test_a_source_is_not_run_before_its_interval_unless_asked():
    rig = Rig()
    await rig.runner.run_due()
    rig.source.put("a.xml", b"<a/>")

    assert await rig.runner.run_due() == []  # not due yet
    report = await rig.runner.run_source(rig.config, requested=True)

    assert report is not None and report.picked == 1


async def test_a_held_lease_keeps_a_second_runner_out_until_it_lapses():
    # Given a run that holds the lease (a crashed instance: it never releases)
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    lease = await rig.runner._acquire("orders", force=True)
    assert lease is not None

    # Then another runner does not run the source while the lease holds
    other = rig.build()
    assert await other.run_source(rig.config, requested=True) is None
    assert rig.inbound.sent == []

    # And once it lapses, the other takes over
    rig.later(LIMITS.lease_s + 1)
    report = await other.run_source(rig.config)
    assert report is not None and report.picked == 1


async def test_of_two_runners_racing_for_a_source_only_one_runs_it():
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    other = rig.build()

    reports = [await r for r in (rig.runner.run_source(rig.config), other.run_source(rig.config))]

    assert [r is not None for r in reports].count(True) == 1
    assert len(rig.inbound.sent) == 1


async def test_a_file_over_max_message_bytes_is_left_at_the_source_and_reported():
    rig = Rig()
    rig.source.put("big.bin", b"x" * 2048)
    rig.source.put("small.txt", b"ok")

    [report] = await rig.runner.run_due()

    assert report.picked == 1 and "big.bin" in rig.source.entries
    assert report.outcome is PickupOutcome.FAILED and "over MAX_MESSAGE_BYTES" in (report.last_error or "")


async def test_a_deep_inbound_defers_the_run_without_counting_a_failure():
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    rig.inbound.waiting = 1000

    [report] = await rig.runner.run_due()

    assert report.outcome is PickupOutcome.DEFERRED
    assert rig.inbound.sent == [] and rig.states.state("orders").consecutive_failures == 0


async def test_with_shards_a_picked_item_goes_to_its_integrations_shard_whose_depth_alone_defers_a_run():
    # Given four shards, `orders` on shard 1, and `inbound` (shard 0) far deeper than the limit
    rig = Rig(shards=4)
    rig.source.put("a.xml", b"<a/>")
    rig.inbound.waiting = 1000

    # When the source runs, it is not deferred: the item goes to the shard of `orders`
    [report] = await rig.runner.run_due()
    assert report.outcome is PickupOutcome.OK
    assert [e.integration for e in rig.shards[1].envelopes()] == ["orders"]
    assert [queue.sent for queue in (rig.shards[0], *rig.shards[2:])] == [[], [], []]

    # But once its own shard is over the limit, the next run is deferred
    rig.shards[1].waiting = 1000
    rig.source.put("b.xml", b"<b/>")
    rig.later()
    [report] = await rig.runner.run_due()
    assert report.outcome is PickupOutcome.DEFERRED


async def test_a_run_takes_at_most_max_per_run_items():
    rig = Rig(max_per_run=3)
    for n in range(5):
        rig.source.put(f"{n}.txt", b"n")

    [report] = await rig.runner.run_due()

    assert report.picked == 3 and len(rig.source.entries) == 2


async def test_a_disabled_source_is_not_run_by_the_timer():
    rig = Rig(enabled=False)
    rig.source.put("a.xml", b"<a/>")

    assert await rig.runner.run_due() == []


@pytest.mark.parametrize("down", ["states", "seen"])
async def test_main_storage_down_takes_nothing(down):
    rig = Rig()
    rig.source.put("a.xml", b"<a/>")
    if down == "states":
        rig.states.down = True
    else:
        rig.seen.down = True

    await rig.runner.run_due()

    assert rig.inbound.sent == [] and rig.source.removed == []


async def _zero() -> int:
    return 0
