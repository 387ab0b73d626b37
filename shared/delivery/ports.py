"""What delivery needs: configs, a sender per endpoint, and the error window shared by all instances.

On Azure the error window is `TableErrorWindow` (shared/storage/error_window_table.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.config.models import Endpoint, IntegrationConfig
from shared.delivery.adapters.base import Sender


class ConfigSource(Protocol):
    async def get(self, integration: str) -> IntegrationConfig | None: ...


class SenderSource(Protocol):
    def sender_for(self, endpoint: Endpoint) -> Sender: ...


class ErrorWindow(Protocol):
    """Failures per integration per fixed interval, counted across every instance."""

    async def record(self, integration: str, *, interval_minutes: int, now: datetime) -> None:
        """Count one failure in the interval of `interval_minutes` that contains `now`."""
        ...

    async def count(self, integration: str, *, interval_minutes: int, now: datetime) -> int:
        """Failures counted in the interval that contains `now`."""
        ...

    async def purge_before(self, integration: str, before: datetime) -> int:
        """Drop intervals that started before `before`; how many records went."""
        ...
