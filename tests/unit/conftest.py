"""The unit tier runs on the twins: no Azurite, no sleeps; time is a `FakeTime` moved by the test."""

from __future__ import annotations

import pytest

from tests.twins.clock import FakeTime
from tests.twins.stores import MemoryStores


@pytest.fixture(scope="session")
def azurite() -> None:
    pytest.fail("unit tests take no Azurite: use the twins (tests/twins), or move the test to tests/integration")


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def stores(fake_time: FakeTime) -> MemoryStores:
    return MemoryStores(fake_time.now)
