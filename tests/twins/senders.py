"""Test doubles shared by the tiers: a scripted sender and a fake clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.delivery.adapters.base import Delivery, Response
from shared.errors import DeliveryError


def ok(status: int = 200) -> Response:
    return Response(status_code=status)


def status(code: int, *, retry_after_s: float | None = None, detail: str = "") -> Response:
    return Response(status_code=code, retry_after_s=retry_after_s, detail=detail)


@dataclass
class ScriptedSender:
    """Answers from a script, one entry per attempt; the last entry repeats forever."""

    script: list[Response | DeliveryError]
    target: str = "fake"
    sent: list[Delivery] = field(default_factory=list)
    closed: bool = False

    async def send(self, delivery: Delivery) -> Response:
        self.sent.append(delivery)
        answer = self.script[min(len(self.sent) - 1, len(self.script) - 1)]
        if isinstance(answer, DeliveryError):
            raise answer
        return answer

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class OneSender:
    """A SenderSource that hands out one sender for any endpoint."""

    sender: ScriptedSender

    def sender_for(self, endpoint: object) -> ScriptedSender:
        return self.sender


class FakeTime:
    """A clock and sleep that move together without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now_value = start or datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self.elapsed_s = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.now_value

    def monotonic(self) -> float:
        return self.elapsed_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.elapsed_s += seconds
        self.now_value += timedelta(seconds=seconds)


def scripted(answers: Iterable[Response | DeliveryError]) -> ScriptedSender:
    return ScriptedSender(list(answers))
