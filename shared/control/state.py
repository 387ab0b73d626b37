"""Changing an integration's control state safely from many instances: read, decide, conditional write, repeat."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.control.models import ControlState
from shared.control.ports import ControlStates, StoredControlState
from shared.errors import ConcurrencyConflict

#: Conditional writes one change tries before it gives up to a record that keeps changing.
MAX_ATTEMPTS = 8

#: A change: the new state, or None to leave the record as it is.
Change = Callable[[ControlState], ControlState | None]


async def read_state(states: ControlStates, integration: str) -> ControlState:
    stored = await states.get(integration)
    return stored.state if stored is not None else ControlState()


async def change_state(
    states: ControlStates, integration: str, change: Change, *, now: datetime
) -> tuple[ControlState, bool]:
    """Apply `change` to the stored state until a conditional write succeeds: (the state now, whether it changed).

    `ConcurrencyConflict` after `MAX_ATTEMPTS` lost races (the caller's invocation fails and is retried).
    """
    for _ in range(MAX_ATTEMPTS):
        stored: StoredControlState | None = await states.get(integration)
        current = stored.state if stored is not None else ControlState()
        wanted = change(current)
        if wanted is None:
            return current, False
        wanted = wanted.model_copy(update={"updated_at": now})
        try:
            if stored is None:
                await states.create(integration, wanted)
            else:
                await states.replace(integration, wanted, version=stored.version)
        except ConcurrencyConflict:
            continue
        return wanted, True
    raise ConcurrencyConflict(f"control state of {integration!r}: too much contention")
