"""Fixtures shared by every tier.

The suite brings its own Azurite: one in-memory instance per pytest worker, on free
ports, started lazily by the first test that needs storage and stopped at the end.
Every test gets its own REBOUND_PREFIX, so queues and tables never collide, also
under pytest-xdist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devtools.azurite import AzuriteProcess


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteProcess]:
    process = AzuriteProcess(extent_memory_limit_mb=512)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def prefix() -> str:
    """A storage-name prefix unique to this test: letters and digits only (valid for tables too)."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def storage_env(azurite: AzuriteProcess, prefix: str) -> dict[str, str]:
    """App settings pointing at the session's Azurite with this test's prefix.

    Receivers in tests listen on 127.0.0.1, which the egress policy refuses unless private endpoints
    are allowed (tests/security checks the refusals with it off). `AUTH_MODE=key`: these settings serve
    tests of storage and of devhost itself, where the function key is all the caller needs (the code
    default, entra, would refuse every portal/API call without App Service Authentication in front).
    """
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "RecoveryStorage": azurite.connection_string,
        "REBOUND_PREFIX": prefix,
        "ALLOW_PRIVATE_ENDPOINTS": "true",
        "AUTH_MODE": "key",
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tier markers follow the folder, so `-m "not e2e"` selects by tier without per-file boilerplate."""
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path or "/tests/chaos/" in path:
            item.add_marker(pytest.mark.e2e)
        elif "/tests/security/" in path:
            item.add_marker(pytest.mark.security)
