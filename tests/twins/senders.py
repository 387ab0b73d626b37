"""Senders that answer from a script, for the engine and its retry layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

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
    #: When set, answers in place of the script (e.g. to act on the world while an attempt is under way).
    send_hook: Callable[[Delivery], Awaitable[Response]] | None = None

    async def send(self, delivery: Delivery) -> Response:
        self.sent.append(delivery)
        if self.send_hook is not None:
            return await self.send_hook(delivery)
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


def scripted(answers: Iterable[Response | DeliveryError]) -> ScriptedSender:
    return ScriptedSender(list(answers))
