"""Handlers called as the host calls them, on `Services` over the twins (no environment, no Azurite)."""

from __future__ import annotations

import pytest

from blueprints import engine, failures, ingest, integrations, jobs, operability, recovery
from shared.services import Services
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import services_on


@pytest.fixture
def services(stores: MemoryStores, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The Services every handler gets from `get_services()` in this test: the app needs no test hook."""
    services = services_on(stores, RECOVERY_PARK_DELAY_S="0", MAX_MESSAGE_BYTES="2048")
    for module in (engine, failures, ingest, integrations, jobs, operability, recovery):
        monkeypatch.setattr(module, "get_services", lambda: services)
    return services
