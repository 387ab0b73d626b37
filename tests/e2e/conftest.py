"""Fixtures most end-to-end modules share; a module that needs another kind overrides one by name.

`http` is a client of the module's own `host` (each module starts devhost with the settings its
story needs); `receiver` answers 400 to everything, the usual way to make failures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from devtools.process import DevhostProcess
from tests.e2e.app_host import client
from tests.support.receiver import Answer, Receiver


@pytest.fixture
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver([Answer(400, text="rejected")])
    await receiver.start()
    yield receiver
    await receiver.stop()
