from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.services import Services
from shared.settings import Settings


@pytest.fixture
def settings(storage_env: dict[str, str]) -> Settings:
    return Settings.from_env(storage_env)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = Services(settings)
    try:
        yield services
    finally:
        await services.close()
