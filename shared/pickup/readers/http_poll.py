"""HTTP poll source: one request per item; a 200 answer is one message, 204 means nothing waits.

Polls go through the same vetted client as HTTP deliveries (`shared.delivery.adapters.egress_network`):
only to addresses the egress policy allows, checked after DNS resolution, redirects not followed,
no proxy of the machine; `%NAME%` in a header names an app setting that ENDPOINT_SECRET_SETTINGS
must list. An answer is the upstream's removal: it cannot be read again, so when `inbound` cannot
take it it goes to the recovery flow. Its key is the answer's `X-Message-Id` or `ETag` header,
when it has one, so an upstream that answers the same message twice is recognised; without either,
every answer is a new message.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx

from shared.delivery.adapters.http import one_line, read_limited, resolve_references
from shared.delivery.retry import THROTTLED_STATUSES, TRANSIENT_STATUSES
from shared.egress import EgressPolicy
from shared.errors import PermanentPickupError, TransientPickupError
from shared.pickup.models import HttpPollSource, describe
from shared.pickup.ports import ItemContent, SourceItem

SettingResolver = Callable[[str], str | None]
#: Answer headers that identify a message, best first.
_ID_HEADERS = ("x-message-id", "etag")


class HttpPollReader:
    rereadable = False

    def __init__(
        self,
        source: HttpPollSource,
        client: httpx.AsyncClient,
        *,
        egress: EgressPolicy,
        resolve_setting: SettingResolver,
        max_bytes: int,
    ) -> None:
        self.source = source
        self._client = client
        self._egress = egress
        self._resolve_setting = resolve_setting
        self._max_bytes = max_bytes
        self.target = describe(source)

    async def open(self) -> None:
        """Nothing to open: the client is shared."""

    async def list(self, limit: int) -> list[SourceItem]:
        """One poll: at most one item, whatever `limit` (the runner polls again for the next)."""
        source = self.source
        headers = {
            name: resolve_references(
                self.target, name, value, egress=self._egress, resolve_setting=self._resolve_setting
            )
            for name, value in source.headers.items()
        }
        try:
            async with asyncio.timeout(source.timeout_s):
                async with self._client.stream(
                    source.method, str(source.url), headers=headers, timeout=source.timeout_s
                ) as answer:
                    body = await read_limited(answer, self._max_bytes + 1)
                    status, answer_headers = answer.status_code, answer.headers
                    charset = answer.charset_encoding
        except TimeoutError:
            raise TransientPickupError(f"{self.target}: no answer within {source.timeout_s:g} s") from None
        except httpx.TimeoutException as exc:
            raise TransientPickupError(f"{self.target}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TransientPickupError(f"{self.target}: {type(exc).__name__}: {one_line(str(exc), 120)}") from exc
        if status == 204:
            return []
        if status != 200:
            detail = one_line(body.decode(charset or "utf-8", errors="replace"))
            text = f"{self.target}: HTTP {status}" + (f": {detail}" if detail else "")
            if status in THROTTLED_STATUSES or status in TRANSIENT_STATUSES:
                raise TransientPickupError(text)
            raise PermanentPickupError(text)
        if len(body) > self._max_bytes:
            raise PermanentPickupError(
                f"{self.target}: an answer over MAX_MESSAGE_BYTES ({self._max_bytes}) was not taken"
            )
        identity = next((answer_headers[h] for h in _ID_HEADERS if answer_headers.get(h)), None)
        key = f"answer {identity}" if identity else f"answer {uuid.uuid4().hex}"
        content = ItemContent(data=body, content_type=answer_headers.get("content-type"), key=key, headers={})
        return [SourceItem(key=key, name=None, size=len(body), handle=content)]

    async def read(self, item: SourceItem) -> ItemContent:
        content = item.handle
        assert isinstance(content, ItemContent), "an answer this reader received"
        return content

    async def remove(self, item: SourceItem, content: ItemContent) -> None:
        """The answer was the removal."""

    async def give_back(self, item: SourceItem) -> None:
        """An answer cannot be given back."""

    async def close(self) -> None:
        """The client belongs to the registry."""
