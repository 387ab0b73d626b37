"""`MemoryQueue`: one queue of the main flow (`inbound`, `jobs`) in memory, on the test's clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tests.twins.faults import Twin

_ids = itertools.count(1)


@dataclass(frozen=True)
class QueuedMessage:
    """A message as the host would hand it to a function: its id and its text."""

    id: str
    text: str
    enqueued_at: datetime
    visible_at: datetime

    @property
    def body(self) -> bytes:
        return self.text.encode("utf-8")


class MemoryQueue(Twin):
    """Implements `shared.messages.ports.MessageQueue`.

    A message sent with `delay_s` is invisible until the clock passes it; `depth()` counts it
    anyway, as a Storage queue's approximate count does. Affordances: `drain()` takes what is
    visible now (what the host would deliver next), `peek()` shows everything, `delays` lists the
    `delay_s` of every send in order, `sent` every text ever sent.
    """

    def __init__(self, name: str, clock: Callable[[], datetime]) -> None:
        super().__init__()
        self._name = name
        self._clock = clock
        self._messages: list[QueuedMessage] = []
        #: The `delay_s` of every send, in order (None: visible at once).
        self.delays: list[int | None] = []
        #: The text of every send, in order (drained ones included).
        self.sent: list[str] = []

    @property
    def name(self) -> str:
        return self._name

    async def send(self, text: str, *, delay_s: int | None = None) -> None:
        async with self.call("send"):
            now = self._clock()
            visible_at = now + timedelta(seconds=delay_s or 0)
            self._messages.append(QueuedMessage(f"{self._name}-{next(_ids)}", text, now, visible_at))
            self.delays.append(delay_s)
            self.sent.append(text)

    async def depth(self) -> int:
        async with self.call("depth"):
            return len(self._messages)

    # --- affordances -------------------------------------------------------------------------

    def drain(self, *, include_delayed: bool = False) -> list[QueuedMessage]:
        """Take every message visible now (every message with `include_delayed`), oldest first."""
        now = self._clock()
        taken = [m for m in self._messages if include_delayed or m.visible_at <= now]
        gone = {m.id for m in taken}
        self._messages = [m for m in self._messages if m.id not in gone]
        return taken

    def peek(self) -> list[QueuedMessage]:
        """Every message waiting, delayed ones included, oldest first; nothing is taken."""
        return list(self._messages)

    def clear(self) -> None:
        """Lose every waiting message (a queue cleared by hand)."""
        self._messages.clear()
