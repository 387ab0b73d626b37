"""Chaos and reliability: real Azurite processes, real receivers, real devhost processes, broken on purpose.

Storage outages come from a fault-injecting TCP proxy in front of the main Azurite (refuse or
hang) or from SIGSTOP/SIGCONT of the Azurite process, never from killing Azurite (it is not
crash-durable). The recovery account is a second Azurite, so one can fail while the other
lives. Every scenario ends with a reconciliation: each message answered 202 must end
delivered or as a failure: zero lost, duplicates counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pytest

from devtools.azurite import AzuritePorts, AzuriteProcess, connection_string
from devtools.process import DevhostProcess
from shared.services import Services
from shared.settings import Settings
from tests.e2e.app_host import FUNCTION_KEY, app_env, unique_prefix
from tests.support.fault_proxy import StorageProxies
from tests.support.receiver import Answer, Receiver
from tests.support.stores import azure_stores, stored_failures

pytestmark = [pytest.mark.chaos, pytest.mark.xdist_group("chaos"), pytest.mark.timeout(300)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "e2e" / "artifacts"
CRASH_APP = Path(__file__).resolve().parent / "crash_app"
PROJECT = Path(__file__).resolve().parents[2]

#: Seconds-scale recovery: a sweep every 2 s, parked messages visible at once.
CHAOS_SETTINGS = {
    # Chaos is about storage and the host, not sign-in: the host key opens everything, as before roles.
    "AUTH_MODE": "key",
    "RECOVERY_SCHEDULE": "*/2 * * * * *",
    "RECOVERY_PARK_DELAY_S": "0",
    "RECOVERY_BATCH_SIZE": "2000",
    "STORAGE_TIMEOUT_S": "2",
    "DEVHOST_QUEUE_LEASE_S": "6",
    "MAX_INBOUND_DEPTH": "5000",
}


# --- fixtures: two Azurites, proxies in front of the main one ----------------------------------


@pytest.fixture(scope="module")
def main_azurite() -> Iterator[AzuriteProcess]:
    with AzuriteProcess(extent_memory_limit_mb=512) as azurite:
        yield azurite


@pytest.fixture(scope="module")
def recovery_azurite() -> Iterator[AzuriteProcess]:
    with AzuriteProcess(extent_memory_limit_mb=256) as azurite:
        yield azurite


@pytest.fixture
def proxies(main_azurite: AzuriteProcess) -> Iterator[StorageProxies]:
    ports = main_azurite.ports
    proxies = StorageProxies(ports.blob, ports.queue, ports.table).start()
    yield proxies
    proxies.stop()


@pytest.fixture
def recovery_proxy(recovery_azurite: AzuriteProcess) -> Iterator[StorageProxies]:
    ports = recovery_azurite.ports
    proxies = StorageProxies(ports.blob, ports.queue, ports.table).start()
    yield proxies
    proxies.stop()


def proxied(proxies: StorageProxies) -> str:
    return connection_string(AzuritePorts(blob=proxies.blob.port, queue=proxies.queue.port, table=proxies.table.port))


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def env(
    proxies: StorageProxies, recovery_azurite: AzuriteProcess, main_azurite: AzuriteProcess, prefix: str
) -> dict[str, str]:
    base = app_env(main_azurite, prefix, **CHAOS_SETTINGS)
    return {**base, "AzureWebJobsStorage": proxied(proxies), "RecoveryStorage": recovery_azurite.connection_string}


@pytest.fixture
async def observer(
    main_azurite: AzuriteProcess, recovery_azurite: AzuriteProcess, prefix: str
) -> AsyncIterator[Services]:
    """The test's own view of storage, straight to Azurite (never through the proxy)."""
    settings = Settings.from_env(
        {
            "AzureWebJobsStorage": main_azurite.connection_string,
            "RecoveryStorage": recovery_azurite.connection_string,
            "REBOUND_PREFIX": prefix,
            "AUTH_MODE": "key",
        }
    )
    services = Services(settings)
    yield services
    await services.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(200)])
    await receiver.start()
    yield receiver
    await receiver.stop()


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Reconciliation:
    scenario: str
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    parked_at_ingest: int = 0
    delivered: int = 0
    failed: int = 0
    parked: int = 0
    lost: int = 0
    duplicates: int = 0
    seconds: float = 0.0

    def record(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with open(ARTIFACTS / "chaos-results.jsonl", "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(self)) + "\n")
        print(f"\nreconciliation {json.dumps(asdict(self))}")


class Load:
    """Sends messages through ingest and keeps what each answer was."""

    def __init__(self, base_url: str, integration: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30, trust_env=False
        )
        self.integration = integration
        self.accepted: set[str] = set()
        self.parked: set[str] = set()
        self.refused = 0
        self.sent = 0
        self.retry_after: list[str] = []

    async def send(self, count: int, *, concurrency: int = 16, body: str = '{"n": 0}') -> list[str]:
        """Send `count` messages; returns the ids accepted by this call."""
        semaphore = asyncio.Semaphore(concurrency)
        accepted: list[str] = []

        async def one(number: int) -> None:
            async with semaphore:
                self.sent += 1
                try:
                    response = await self.http.post(
                        f"/integrations/{self.integration}/messages", content=body.replace("0", str(number), 1),
                        headers={"Content-Type": "application/json"},
                    )  # fmt: skip
                except httpx.HTTPError:
                    self.refused += 1
                    return
                if response.status_code == 202:
                    self.accepted.add(response.json()["id"])
                    accepted.append(response.json()["id"])
                    if response.json().get("parked"):
                        self.parked.add(response.json()["id"])
                else:
                    self.refused += 1
                    self.retry_after.append(response.headers.get("Retry-After", ""))

        await asyncio.gather(*(one(n) for n in range(count)))
        return accepted

    async def stream(self, seconds: float, *, per_second: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            await self.send(max(1, int(per_second / 5)), concurrency=8)
            await asyncio.sleep(max(0.0, 0.2 - (time.monotonic() - started)))

    async def aclose(self) -> None:
        await self.http.aclose()


async def configure(base_url: str, integration: str, receiver: Receiver, **config: object) -> None:
    async with httpx.AsyncClient(base_url=base_url, headers={"x-functions-key": FUNCTION_KEY}, trust_env=False) as http:
        body = {"name": integration, "endpoint": {"kind": "http", "url": receiver.url, "timeout_s": 5}, **config}
        response = await http.put(f"/integrations/{integration}", json=body)
        assert response.status_code in (200, 201), response.text


async def settle(
    scenario: str, load: Load, receiver: Receiver, observer: Services, *, timeout_s: float = 120, started: float
) -> Reconciliation:
    """Wait until every accepted message is delivered or failed and nothing is parked, then count."""
    deadline = time.monotonic() + timeout_s
    azure = azure_stores(observer)
    while True:
        delivered_ids = {r.headers.get("idempotency-key") for r in receiver.requests}
        failed_ids = {f.message_id for f in await stored_failures(observer.stores.failures, load.integration)}
        done = load.accepted & (delivered_ids | failed_ids)
        # Settled also means nothing waits for a sweep any more: a parked copy of a message that
        # was delivered anyway comes back as a duplicate, and is counted as one.
        parked = await azure.recovery_account.queues.depth(azure.names.recovery)
        parked += await azure.account.queues.depth(azure.names.inbound_poison)
        if (done == load.accepted and parked == 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    result = Reconciliation(
        scenario=scenario,
        sent=load.sent,
        accepted=len(load.accepted),
        refused=load.refused,
        parked_at_ingest=len(load.parked),
        delivered=len(load.accepted & delivered_ids),
        failed=len(load.accepted & failed_ids - delivered_ids),
        parked=parked,
        lost=len(load.accepted - delivered_ids - failed_ids),
        duplicates=len(receiver.requests) - len(delivered_ids),
        seconds=round(time.monotonic() - started, 1),
    )
    result.record()
    return result


def start_host(env: dict[str, str], app_dir: Path = PROJECT, **extra: str) -> DevhostProcess:
    return DevhostProcess(app_dir, env={**env, **extra}, use_local_settings=False).start()


# --- scenarios --------------------------------------------------------------------------------


async def test_killing_the_host_with_1000_messages_in_flight_loses_none(env, receiver, observer):
    # Given 1,000 accepted messages on their way to a healthy receiver
    started = time.monotonic()
    host = start_host(env)
    await configure(host.base_url, "killed", receiver)
    load = Load(host.base_url, "killed")
    await load.send(1000, concurrency=24)
    assert len(load.accepted) == 1000

    # When the host is SIGKILLed mid-stream and started again
    await receiver.wait_for(200, timeout_s=60)
    host.kill()
    in_flight_at_kill = 1000 - len(receiver.requests)
    host = start_host(env)
    try:
        result = await settle("host SIGKILL with 1,000 in flight", load, receiver, observer, started=started)
    finally:
        host.stop()
        await load.aclose()

    # Then every message arrived; only the ones caught mid-delivery may have arrived twice
    assert in_flight_at_kill > 0
    assert result.lost == 0
    assert result.delivered == 1000


async def test_main_storage_unreachable_for_20_s_parks_and_then_recovers_everything(env, receiver, observer, proxies):
    # Given a stream of messages into a healthy flow
    started = time.monotonic()
    host = start_host(env)
    await configure(host.base_url, "partition", receiver)
    load = Load(host.base_url, "partition")
    try:
        await load.stream(3)

        # When main storage refuses every connection for 20 s while the stream goes on
        proxies.refuse()
        await load.stream(20)
        proxies.heal()
        await load.stream(3)

        result = await settle("main storage refused for 20 s", load, receiver, observer, started=started)
    finally:
        host.stop()
        await load.aclose()

    # Then ingest kept answering 202 (parking), and the sweep brought everything back
    assert load.refused == 0
    assert result.parked_at_ingest > 0
    assert result.lost == 0 and result.parked == 0


async def test_both_stores_unreachable_answers_503_and_loses_nothing_it_accepted(
    env, receiver, observer, proxies, recovery_proxy
):
    # Given the recovery account behind its own proxy too
    started = time.monotonic()
    env = {**env, "RecoveryStorage": proxied(recovery_proxy)}
    host = start_host(env)
    await configure(host.base_url, "blackout", receiver)
    load = Load(host.base_url, "blackout")
    try:
        await load.stream(2)

        # When both are down, ingest refuses with 503 + Retry-After
        proxies.refuse()
        recovery_proxy.refuse()
        await load.stream(6)
        proxies.heal()
        recovery_proxy.heal()
        await load.stream(2)

        result = await settle("main and recovery storage refused", load, receiver, observer, started=started)
    finally:
        host.stop()
        await load.aclose()

    assert load.refused > 0
    assert set(load.retry_after) == {"30"}
    assert result.lost == 0


async def test_azurite_frozen_for_15_s_mid_stream_loses_nothing(env, receiver, observer, main_azurite):
    started = time.monotonic()
    host = start_host(env)
    await configure(host.base_url, "frozen", receiver)
    load = Load(host.base_url, "frozen")
    try:
        await load.stream(3)

        # When the main Azurite process is stopped (SIGSTOP) for 15 s while messages keep coming
        before = (len(load.accepted), len(load.parked), load.refused)
        main_azurite.freeze()
        try:
            await load.stream(15)
        finally:
            main_azurite.thaw()
        during = (len(load.accepted), len(load.parked), load.refused)
        await load.stream(3)

        result = await settle("main Azurite SIGSTOP for 15 s", load, receiver, observer, started=started)
    finally:
        host.stop()
        await load.aclose()

    # Then messages were accepted, and the freeze was felt: ingest parked or refused while it lasted
    assert len(load.accepted) > 0
    parked_during, refused_during = during[1] - before[1], during[2] - before[2]
    assert parked_during + refused_during > 0, f"before {before}, after the freeze {during}"
    # And every accepted message ended delivered or failed, with nothing left parked
    assert result.lost == 0 and result.parked == 0


async def test_crashing_function_goes_to_poison_and_back_and_a_permanent_crash_becomes_catastrophic(
    env, receiver, observer, tmp_path
):
    # Given the app with a crash injected for messages naming an existing flag file
    started = time.monotonic()
    (tmp_path / "once").touch()
    (tmp_path / "always").touch()
    host = start_host(env, CRASH_APP, CHAOS_CRASH_FLAG_DIR=str(tmp_path), RECOVERY_MAX_REINSERTS="2")
    await configure(host.base_url, "crashy", receiver)
    load = Load(host.base_url, "crashy")
    try:
        # When one message crashes until its cause is removed, and another crashes forever
        [once_id] = await load.send(1, body="crash-flag:once")
        [always_id] = await load.send(1, body="crash-flag:always")
        await until_reinserted_from_poison(observer)
        (tmp_path / "once").unlink()
        result = await settle("function crashing on two messages", load, receiver, observer, started=started)
        async with httpx.AsyncClient(
            base_url=host.base_url, headers={"x-functions-key": FUNCTION_KEY}, trust_env=False
        ) as http:
            items = (await http.get("/integrations/crashy/failures", params={"origin": "catastrophic"})).json()["items"]
    finally:
        host.stop()
        await load.aclose()

    # Then the first was delivered after a trip through poison; the second is a catastrophic failure
    delivered = {r.headers.get("idempotency-key") for r in receiver.requests}
    assert once_id in delivered and always_id not in delivered
    assert result.lost == 0
    assert [(item["message_id"], item["recovery_count"]) for item in items] == [(always_id, 2)]


async def until_reinserted_from_poison(observer: Services, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = (await observer.sweeper.status()).last_sweep
        if last is not None and any(queue.endswith("-poison") for queue in last.by_queue):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"nothing came back from a poison queue within {timeout_s} s")


async def test_receiver_down_for_a_long_stretch_ends_delivered_or_failed(env, observer):
    # Given a receiver that goes away for 12 s, and backoff retries of 1-2 s
    started = time.monotonic()
    receiver = await Receiver([Answer(200)]).start()
    port = receiver.port
    host = start_host(env)
    backoff = {"max_number_of_retries": 12, "requeue_min_delay_seconds": 1, "requeue_max_delay_seconds": 2}
    await configure(host.base_url, "outage", receiver, retry={"mode": "backoff", "backoff": backoff})
    load = Load(host.base_url, "outage")
    try:
        await load.stream(2)
        await receiver.stop()
        await load.stream(12)
        await receiver.start(port=port)
        await load.stream(2)

        result = await settle("receiver down for 12 s", load, receiver, observer, started=started)
    finally:
        host.stop()
        await load.aclose()
        await receiver.stop()

    assert result.lost == 0
    assert result.delivered + result.failed == result.accepted
