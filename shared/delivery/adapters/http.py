"""HTTP delivery: one request per attempt over a shared `httpx.AsyncClient`.

Every request carries `Idempotency-Key: <message id>` (DESIGN.md section 4), so a receiver can
drop the duplicates that at-least-once delivery produces. Endpoint header values may reference
app settings as `%SETTING_NAME%`, which keeps secrets such as an Authorization header in app
settings (Key Vault references in Azure) instead of the integration config stored in a table;
only the settings ENDPOINT_SECRET_SETTINGS lists may be referenced (`shared.egress`). The shared
client connects only to addresses the egress policy allows (`shared.delivery.adapters.egress_network`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from shared.config.fields import HEADER_NAME_PATTERN
from shared.config.models import HttpEndpoint
from shared.delivery.adapters.base import Delivery, Response
from shared.delivery.adapters.egress_network import VettedTransport
from shared.egress import SETTING_REFERENCE, EgressPolicy
from shared.errors import ConfigError, EgressRefused, PermanentDeliveryError, TransientDeliveryError

logger = logging.getLogger(__name__)

#: Looks up an app setting by name; None when it is not set.
SettingResolver = Callable[[str], str | None]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: `Response.detail` holds at most this many characters of the receiver's error text.
MAX_DETAIL_CHARS = 200
#: A response body is read up to this size and the rest dropped: enough for a detail and for the
#: connection to go back to the pool after a typical answer, never a receiver's gigabyte error page.
MAX_RESPONSE_READ_BYTES = 64 * 1024
#: One worker overlaps many slow deliveries, but a burst must not open thousands of sockets.
MAX_CONNECTIONS = 100
#: As many as may be open: httpcore closes an idle connection whenever the pool holds more connections
#: than this (it counts all of them, idle or not), so a lower number churns TCP connections at every
#: request once more than that many deliveries overlap (issue 15's profile: 24 in flight, 20 kept).
MAX_KEEPALIVE_CONNECTIONS = MAX_CONNECTIONS
KEEPALIVE_EXPIRY_S = 30.0

_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_FORBIDDEN_VALUE_CHARS = re.compile(r"[\r\n\x00]")
# Describe the upstream request's framing, not ours: forwarding them would corrupt the request.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: How an app setting that is a Key Vault reference starts; Azure replaces it with the secret when it can.
_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
#: Characters an excerpt drops: controls (C0, C1: ESC sequences), format characters (bidi
#: overrides, zero-width), surrogates, private-use and unassigned code points.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def build_http_client(egress: EgressPolicy) -> httpx.AsyncClient:
    """The one client a worker shares across every HTTP endpoint (the connection pool is the point).

    It connects only where `egress` allows, checked per connection after DNS resolution.
    """
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(
        transport=VettedTransport(egress, limits=limits),
        # A redirect is the receiver's answer for the engine to classify; following it would
        # re-send the body to a host nobody configured.
        follow_redirects=False,
        # Proxy variables of the machine running the app must not reroute deliveries.
        trust_env=False,
    )


def describe_url(method: str, url: str) -> str:
    """`http POST http://host:port/path`: no userinfo, no query (either may hold a secret)."""
    parsed = httpx.URL(url)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"http {method} {parsed.scheme}://{host}{port}{parsed.path}"


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None for garbage."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        try:
            return float(int(value))
        except OverflowError:
            return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 HTTP-dates are always GMT; parsedate returns a naive value for "-0000".
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def one_line(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """A short excerpt on one line, with nothing invisible in it.

    A receiver's error text ends up in failure reasons, logs and the portal: whitespace is
    collapsed, and control and format characters are dropped (an ESC sequence or a bidi override
    could otherwise disguise what an operator reads). Only the start of the text is read.
    """
    words: list[str] = []
    length = 0
    for word in text.split():
        visible = "".join(ch for ch in word if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)
        if visible:
            words.append(visible)
            length += len(visible) + 1
            if length > limit:
                break
    flat = " ".join(words)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class HttpSender:
    """Sends to one `HttpEndpoint`. Does not own the client: the registry closes it."""

    def __init__(
        self,
        endpoint: HttpEndpoint,
        client: httpx.AsyncClient,
        *,
        resolve_setting: SettingResolver,
        egress: EgressPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint = endpoint
        self._client = client
        self._resolve_setting = resolve_setting
        self._egress = egress
        self._clock = clock
        self._url = str(endpoint.url)
        self.target = describe_url(endpoint.method, self._url)

    async def send(self, delivery: Delivery) -> Response:
        headers = self._headers(delivery)
        timeout_s = self.endpoint.timeout_s
        try:
            # httpx bounds each phase; the outer bound makes timeout_s the whole attempt, so a
            # receiver that trickles its answer cannot hold a delivery for longer.
            async with asyncio.timeout(timeout_s):
                return await self._exchange(delivery.body, headers, timeout_s)
        except TimeoutError:
            raise self._transient(f"no answer within {timeout_s:g} s") from None
        except httpx.TimeoutException as exc:
            raise self._transient(f"{type(exc).__name__} after {timeout_s:g} s") from exc
        except httpx.LocalProtocolError as exc:
            # Our request could not be written (a header the protocol refuses): sending again cannot help.
            raise PermanentDeliveryError(f"{self.target}: request rejected locally: {_reason(exc)}") from exc
        except httpx.TransportError as exc:
            raise self._transient(_reason(exc)) from exc
        except EgressRefused as exc:
            # From the network backend: the address was refused before a socket was opened.
            raise EgressRefused(f"{self.target}: {exc.message}") from None

    async def _exchange(self, body: bytes, headers: list[tuple[bytes, bytes]], timeout_s: float) -> Response:
        async with self._client.stream(
            self.endpoint.method, self._url, content=body, headers=headers, timeout=timeout_s
        ) as answer:
            content = await read_limited(answer)
        status = answer.status_code
        retry_after_s = parse_retry_after(answer.headers.get("retry-after"), now=self._clock())
        detail = "" if 200 <= status < 300 else one_line(_decode(content, answer.charset_encoding))
        return Response(status, retry_after_s=retry_after_s, detail=detail)

    def _headers(self, delivery: Delivery) -> list[tuple[bytes, bytes]]:
        """Delivery headers, then ours, then the endpoint's (it wins); the idempotency key always last.

        Names merge case-insensitively, keeping the last writer's value.
        """
        merged: dict[str, tuple[str, str]] = {}

        def put(name: str, value: str) -> None:
            merged[name.lower()] = (name, value)

        for name, value in delivery.headers.items():
            if name.lower() not in _NOT_FORWARDED:
                put(name, value)
        if delivery.content_type:
            put("Content-Type", delivery.content_type)
        elif "content-type" not in merged:
            put("Content-Type", DEFAULT_CONTENT_TYPE)
        if delivery.correlation_id:
            put("X-Correlation-Id", delivery.correlation_id)
        for name, value in self.endpoint.headers.items():
            put(name, self._resolve(name, value))
        put("Idempotency-Key", delivery.message_id)

        encoded: list[tuple[bytes, bytes]] = []
        for name, value in merged.values():
            if not _HEADER_NAME.fullmatch(name) or _FORBIDDEN_VALUE_CHARS.search(value):
                raise PermanentDeliveryError(f"{self.target}: header {name!r} has an invalid name or value")
            encoded.append((name.encode("ascii"), value.encode("utf-8")))
        return encoded

    def _resolve(self, header: str, value: str) -> str:
        return resolve_references(
            self.target, header, value, egress=self._egress, resolve_setting=self._resolve_setting
        )

    def _transient(self, reason: str) -> TransientDeliveryError:
        logger.debug("delivery to %s failed: %s", self.target, reason)
        return TransientDeliveryError(f"{self.target}: {reason}")

    async def aclose(self) -> None:
        """Nothing to release: the shared client belongs to whoever built it."""


def resolve_references(
    target: str, header: str, value: str, *, egress: EgressPolicy, resolve_setting: SettingResolver
) -> str:
    """A header value with each `%NAME%` replaced by app setting NAME, which the egress policy must allow.

    Raises `EgressRefused` for a setting outside the allowlist, `PermanentDeliveryError` for one that is
    not set, `ConfigError` for an unresolved Key Vault reference; errors name the setting, never its value.
    """

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        refused = egress.check_setting_reference(name)
        if refused is not None:
            # Save time refuses this; a config written to the table directly, or saved before the
            # allowlist shrank, must still never send the setting (a config failure, nothing sent).
            raise EgressRefused(f"{target}: header {header!r} {refused}")
        resolved = resolve_setting(name)
        if not resolved:
            # Name the setting so the fix is obvious; its value never appears in an error.
            raise PermanentDeliveryError(
                f"{target}: header {header!r} references app setting {name!r}, which is not set"
            )
        if resolved.startswith(_KEY_VAULT_REFERENCE):
            # The platform leaves the reference text in place when it cannot read the secret.
            raise ConfigError(
                f"{target}: header {header!r} references app setting {name!r}, an unresolved Key Vault "
                "reference (is the secret there, and may the app's identity read it?)"
            )
        return resolved

    return SETTING_REFERENCE.sub(setting, value)


async def read_limited(answer: httpx.Response, limit: int = MAX_RESPONSE_READ_BYTES) -> bytes:
    received = bytearray()
    async for chunk in answer.aiter_bytes():
        received += chunk
        if len(received) >= limit:
            break
    return bytes(received[:limit])


def _decode(content: bytes, charset: str | None) -> str:
    try:
        return content.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _reason(exc: Exception) -> str:
    message = one_line(str(exc), limit=120)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def environ_resolver(environ: Mapping[str, str]) -> SettingResolver:
    """A resolver over a settings mapping; empty values count as unset (an empty secret is a mistake)."""

    def resolve(name: str) -> str | None:
        return environ.get(name) or None

    return resolve
