"""What the rest of the domain needs from the recovery flow: somewhere to park a message.

A Protocol of its own, so ingest, the engine and the job runner depend on this seam rather
than on `shared.recovery.sweeper` (which itself uses the job runner). `recovery.Parker` implements it.
"""

from __future__ import annotations

from typing import Protocol

from shared.messages.models import Envelope
from shared.recovery.models import Flow


class Parking(Protocol):
    async def park_envelope(self, envelope: Envelope, reason: str) -> None:
        """Park a message for `inbound`; StorageUnavailable when the recovery flow fails too."""
        ...

    async def park_text(self, flow: Flow, text: str, reason: str, *, message_id: str = "") -> None:
        """Park a raw queue message as it was received."""
        ...
