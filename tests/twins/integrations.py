"""`MemoryIntegrationStore`: integration configs in memory (the twin of `TableIntegrationStore`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.config.models import IntegrationConfig
from tests.twins.faults import Twin


class MemoryIntegrationStore(Twin):
    """Implements `shared.config.ports.IntegrationStore`.

    Configs are kept as their JSON, as the table keeps them, so what a caller gets back is a copy
    rebuilt from storage, never the object it put. There is no size limit here (the Table
    property's 64 KiB is Azure's): `arm("put", EntityTooLarge(...))` plays a config too large to store.
    """

    def __init__(self) -> None:
        super().__init__()
        self._configs: dict[str, str] = {}

    async def get(self, integration_id: str) -> IntegrationConfig | None:
        async with self.call("get"):
            kept = self._configs.get(integration_id)
            return None if kept is None else IntegrationConfig.model_validate_json(kept)

    async def put(self, config: IntegrationConfig) -> bool:
        async with self.call("put"):
            created = config.id not in self._configs
            self._configs[config.id] = config.model_dump_json()
            return created

    async def delete(self, integration_id: str) -> bool:
        async with self.call("delete"):
            return self._configs.pop(integration_id, None) is not None

    async def list(self) -> AsyncIterator[IntegrationConfig]:
        async with self.call("list"):
            # By id, as the table lists its one partition; a snapshot, so a put meanwhile is harmless.
            kept = sorted(self._configs.items())
        for _, text in kept:
            yield IntegrationConfig.model_validate_json(text)
