"""One contract suite, two implementations: every test here runs on the twins and on Azurite.

`backend` is parametrized over `memory` and `azurite` (marked `integration`: it starts the
session's Azurite and takes a fresh prefix), and each store fixture is that backend's store, so a
test using two stores gets both from the same backend. `pytest tests/contract -m "not integration"`
runs the memory half alone, without Azurite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.audit.ports import AuditStore
from shared.config.ports import IntegrationStore
from shared.delivery.ports import ErrorWindow
from shared.failures.ports import FailureStore
from shared.jobs.ports import JobStore, SettleCounts
from shared.messages.ports import MessageQueue, PayloadStore
from shared.recovery.ports import SweepState
from shared.timeline.ports import TimelineStore
from shared.values import utc_now
from tests.contract.backends import Backend, azure_backend, memory_backend
from tests.twins.clock import FakeTime

BACKENDS = ["memory", pytest.param("azurite", marks=pytest.mark.integration)]


@pytest.fixture
def clock() -> FakeTime:
    """Starts at the real time: Azure stamps what it keeps (blob write times, enqueue times) on its own clock."""
    return FakeTime(utc_now())


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, clock: FakeTime) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield memory_backend(clock)
        return
    environ = request.getfixturevalue("storage_env")
    async with azure_backend(environ) as backend:
        yield backend


@pytest.fixture
def failure_store(backend: Backend) -> FailureStore:
    return backend.stores.failures


@pytest.fixture
def job_store(backend: Backend) -> JobStore:
    return backend.stores.jobs


@pytest.fixture
def integration_store(backend: Backend) -> IntegrationStore:
    return backend.stores.integrations


@pytest.fixture
def error_window(backend: Backend) -> ErrorWindow:
    return backend.error_window


@pytest.fixture
def payload_store(backend: Backend) -> PayloadStore:
    return backend.stores.payloads


@pytest.fixture
def message_queue(backend: Backend) -> MessageQueue:
    return backend.stores.inbound


@pytest.fixture
def sweep_state(backend: Backend) -> SweepState:
    return backend.stores.sweep_state


@pytest.fixture
def audit_store(backend: Backend) -> AuditStore:
    return backend.stores.audit


@pytest.fixture
def timeline_store(backend: Backend) -> TimelineStore:
    return backend.stores.timeline


@pytest.fixture
def settle_counts(backend: Backend) -> SettleCounts:
    return backend.stores.settle_counts
