"""Handlers called as the host calls them, on `Services` over the twins (no environment, no Azurite).

The app is as devhost loads it in dev mode, and `calls.request` sends the principal devhost injects for
its admin: these tests are about what the handlers do; who may call them is tests/unit/blueprints/test_api.py's
(and the role matrix's, tests/security/test_roles.py).
"""

from __future__ import annotations

import pytest

from blueprints import audit, engine, failures, ingest, integrations, jobs, operability, pickup, recovery, timeline
from shared.services import Services
from tests.support.auth import as_devhost
from tests.twins.stores import MemoryStores
from tests.unit.on_twins import services_on


@pytest.fixture
def services(stores: MemoryStores, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The Services every handler gets from `get_services()` in this test: the app needs no test hook."""
    services = services_on(stores, RECOVERY_PARK_DELAY_S="0", MAX_MESSAGE_BYTES="2048")
    for module in (audit, engine, failures, ingest, integrations, jobs, operability, pickup, recovery, timeline):
        monkeypatch.setattr(module, "get_services", lambda: services)
    as_devhost(monkeypatch)
    return services
