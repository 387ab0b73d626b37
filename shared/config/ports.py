"""What integration configs need from storage. `TableIntegrationStore` (shared/storage/integration_table.py)
implements it on Azure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from shared.config.models import IntegrationConfig


class IntegrationStore(Protocol):
    async def get(self, integration_id: str) -> IntegrationConfig | None: ...

    async def put(self, config: IntegrationConfig) -> bool:
        """Store the config; True when it did not exist before. `EntityTooLarge`, before any write, when
        it cannot be stored."""
        ...

    async def delete(self, integration_id: str) -> bool:
        """True when the config existed."""
        ...

    def list(self) -> AsyncIterator[IntegrationConfig]: ...
