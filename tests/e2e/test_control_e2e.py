"""Control through real processes: pause and resume (arrival order, nothing attempted while paused), the
circuit breaker and the rate limit on two devhost instances sharing one Azurite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from shared.messages.models import Envelope
from shared.messages.wire import pack
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.support.polling import until
from tests.support.receiver import Answer, Receiver
from tests.support.stores import stored_failures

pytestmark = [pytest.mark.xdist_group("control_e2e"), pytest.mark.timeout(240)]

#: Seconds-scale control: a state at most 1 s old, the control timer every second.
CONTROL = {"CONTROL_REFRESH_S": "1", "CONTROL_SCHEDULE": "* * * * * *", "ENDPOINT_RETRY_MAX_ATTEMPTS": "1"}


@pytest.fixture(scope="module")
def env(azurite: AzuriteProcess) -> dict[str, str]:
    return app_env(azurite, unique_prefix(), **CONTROL)


@pytest.fixture(scope="module")
def hosts(env: dict[str, str]) -> Iterator[tuple[DevhostProcess, DevhostProcess]]:
    """Two instances of the app on the same storage, as two Functions instances would be."""
    with ExitStack() as stack:
        first = stack.enter_context(running_app(env))
        second = stack.enter_context(running_app(env))
        yield first, second


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    services = Services(Settings.from_env(env))
    yield services
    await services.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def configure(http: httpx.AsyncClient, name: str, receiver: Receiver, **config: object) -> None:
    body = {"name": name, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}, **config}
    response = await http.put(f"/integrations/{name}", json=body)
    assert response.status_code in (200, 201), response.text


async def control(http: httpx.AsyncClient, name: str) -> dict[str, object]:
    response = await http.get(f"/integrations/{name}/control")
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_messages_arriving_while_paused_are_delivered_after_resume_in_arrival_order(hosts, receiver, services):
    first, second = hosts
    async with client(first) as http, client(second) as other:
        # Given an integration paused (through one instance) with a reason
        await configure(http, "paused", receiver)
        paused = await http.post("/integrations/paused/pause", json={"reason": "receiver upgrade"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"]["reason"] == "receiver upgrade"

        # When 200 messages arrive one after another, half through each instance
        bodies = [f'{{"n": {n}}}'.encode() for n in range(200)]
        for n, body in enumerate(bodies):
            target = http if n % 2 else other
            response = await target.post("/integrations/paused/messages", content=body)
            assert response.status_code == 202, response.text

        # Then all 200 are held, none attempted, none failed, and the config says who paused it and why
        await until(lambda: _held(http, "paused"), 200, timeout_s=60)
        assert receiver.requests == []
        assert await stored_failures(services.stores.failures, "paused") == []
        config = (await http.get("/integrations/paused")).json()
        assert config["paused"]["reason"] == "receiver upgrade" and config["paused"]["by"]

        # When it is resumed
        resumed = await http.post("/integrations/paused/resume")
        assert resumed.status_code == 200, resumed.text

        # Then every message reaches the receiver once, in the order it arrived, and the hold is empty
        await receiver.wait_for(200, timeout_s=90)
        assert [request.body for request in receiver.requests] == bodies
        await until(lambda: _held(http, "paused"), 0)
        assert (await http.get("/integrations/paused")).json()["paused"] is None


async def _held(http: httpx.AsyncClient, name: str) -> object:
    return (await control(http, name))["held"]


async def test_the_breaker_opens_on_503_probes_after_the_cooldown_and_closes_when_the_receiver_recovers(
    hosts, receiver, services
):
    first, second = hosts
    receiver.script = [Answer(503)]
    async with client(first) as http, client(second) as other:
        # Given a breaker that opens at 3 transient failures and probes after 3 s, on two instances
        await configure(
            http, "flaky", receiver,
            circuit_breaker={"failure_threshold": 3, "window_minutes": 5, "cooldown_seconds": 3},
            retry={"mode": "backoff", "backoff": {"requeue_min_delay_seconds": 2, "requeue_max_delay_seconds": 3,
                                                   "max_number_of_retries": 10}},
        )  # fmt: skip

        # When 10 messages arrive while the receiver answers 503
        for n in range(10):
            target = http if n % 2 else other
            assert (await target.post("/integrations/flaky/messages", content=f"m{n}".encode())).status_code == 202

        # Then the breaker opens and pauses the integration as `circuit_open`
        await until(lambda: _phase(other, "flaky"), "open", timeout_s=60)
        status = await control(http, "flaky")
        assert status["paused"]["reason"] == "circuit_open"  # type: ignore[index]

        # And after each cooldown exactly one probe goes out, which fails and re-opens it
        trips = status["breaker"]["trips"]  # type: ignore[index]
        await until(lambda: _trips(http, "flaky"), trips + 1, timeout_s=30)
        probe_at, before = time.monotonic(), len(receiver.requests)
        await until(lambda: _trips(http, "flaky"), trips + 2, timeout_s=30)
        probes = receiver.requests[before:]
        assert len(probes) == 1
        assert probes[0].at - probe_at >= 2.0  # the cooldown (3 s, on a 1 s timer) passed before it

        # When the receiver recovers
        receiver.script = [Answer(200)]

        # Then the next probe closes the breaker, the hold drains, and every message got through
        await until(lambda: _phase(http, "flaky"), "closed", timeout_s=30)
        await until(lambda: _held(other, "flaky"), 0, timeout_s=30)
        delivered = await until(lambda: _delivered(receiver), {f"m{n}".encode() for n in range(10)}, timeout_s=60)
        assert delivered
        assert (await control(http, "flaky"))["paused"] is None
        assert await stored_failures(services.stores.failures, "flaky") == []


async def _phase(http: httpx.AsyncClient, name: str) -> object:
    return (await control(http, name))["breaker"]["phase"]  # type: ignore[index]


async def _trips(http: httpx.AsyncClient, name: str) -> object:
    return (await control(http, name))["breaker"]["trips"]  # type: ignore[index]


async def _delivered(receiver: Receiver) -> set[bytes]:
    # The receiver's script is 200 from now on: what it got since then counts as delivered.
    return {request.body for request in receiver.requests[-40:]} & {f"m{n}".encode() for n in range(10)}


#: The rate limit under test and how close the measured rate must come to it.
RATE_PER_S = 20
TOLERANCE = 0.20
MESSAGES = 300


async def test_a_rate_limit_of_20_per_second_holds_across_two_instances(hosts, receiver, services):
    first, _ = hosts
    async with client(first) as http:
        # Given an integration limited to 20 deliveries per second, on two instances
        await configure(http, "paced", receiver, rate_limit={"per_second": RATE_PER_S})

        # When 300 messages wait on inbound at once
        inbound = services.stores.inbound

        async def enqueue(n: int) -> None:
            _, text = await pack(Envelope(integration="paced", body_text=str(n)), services.stores.payloads)
            await inbound.send(text)

        for start in range(0, MESSAGES, 50):
            await asyncio.gather(*(enqueue(n) for n in range(start, start + 50)))

        # Then they are delivered at 20/s (±20 %) measured at the receiver, first to last
        requests = await receiver.wait_for(MESSAGES, timeout_s=MESSAGES / RATE_PER_S * 3)
        times = sorted(request.at for request in requests)
        rate = (len(times) - 1) / (times[-1] - times[0])
        print(f"rate limit {RATE_PER_S}/s on 2 instances: {rate:.2f}/s over {len(times)} deliveries")
        assert RATE_PER_S * (1 - TOLERANCE) <= rate <= RATE_PER_S * (1 + TOLERANCE)
        # and no second-slot (UTC seconds, which the token slots are) saw more than the limit, give or take a
        # delivery or two whose attempt started just before a second ended and reached the receiver after it
        wall = time.time() - time.monotonic()
        per_second: dict[int, int] = {}
        for at in times:
            per_second[int(wall + at)] = per_second.get(int(wall + at), 0) + 1
        print(f"most deliveries in one UTC second: {max(per_second.values())}")
        assert max(per_second.values()) <= RATE_PER_S + 2
        assert len({request.body for request in requests}) == MESSAGES
