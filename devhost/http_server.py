"""HTTP triggers served by aiohttp on `http://HOST:PORT/<routePrefix>/<route>`.

Requests first pass devhost's stand-in for App Service Authentication (`devhost.easy_auth`:
principal headers a client sent are removed; with AUTH_MODE=dev, dev users are signed in and
`/.auth/*` is served), then are routed with `devhost.routes`, checked against the function's
auth level (the host key, or the function's own key from DEVHOST_FUNCTION_KEYS),
turned into `func.HttpRequest`, and the function's return value is mapped back as the
library's own HTTP output converter does (status, headers, mimetype/charset, body).
Errors devhost produces itself are JSON: `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict, MultiMapping

from devhost.easy_auth import (
    AUTH_PATH_PREFIX,
    EasyAuth,
    SignInRefused,
    principal_headers,
    unauthenticated,
    without_front_end_headers,
)
from devhost.errors import StartupError
from devhost.functions import HttpFunction
from devhost.invocation import FunctionInvoker
from devhost.responses import error_response
from devhost.routes import MethodNotAllowed, RouteTable, RouteTemplateError

logger = logging.getLogger(__name__)

#: The host's request body limit (maxRequestBodySize, 100 MB).
MAX_REQUEST_BODY_BYTES = 104_857_600
#: Kestrel's defaults in front of the real host: the request line (414), the headers together and
#: their number (431). aiohttp's own parser limits are set above these, so an oversized request
#: reaches devhost and gets the host's status with a JSON error instead of aiohttp's plain-text 400.
MAX_REQUEST_LINE_BYTES = 8 * 1024
MAX_REQUEST_HEADERS_BYTES = 32 * 1024
MAX_REQUEST_HEADER_COUNT = 100
_PARSER_LIMIT_BYTES = 64 * 1024
_PARSER_MAX_HEADERS = 1024
#: Where a caller puts the function key: a header, or the `code` query parameter.
KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"

# aiohttp computes these itself from the body it sends.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection"})


def _joined(values: MultiMapping[str]) -> dict[str, str]:
    """Repeated headers or query parameters become one comma-joined value, as the host passes them."""
    merged: dict[str, list[str]] = {}
    for key, value in values.items():
        merged.setdefault(key, []).append(value)
    return {key: ",".join(items) for key, items in merged.items()}


def to_web_response(value: Any) -> web.Response:
    """Map a function's return value to a response; TypeError for a value the worker would reject."""
    if value is None:
        return web.Response(status=204)
    if isinstance(value, str):
        return web.Response(body=value.encode("utf-8"), headers={"Content-Type": "text/plain; charset=utf-8"})
    if isinstance(value, bytes | bytearray):
        return web.Response(body=bytes(value), headers={"Content-Type": "application/octet-stream"})
    if not isinstance(value, func.HttpResponse):
        raise TypeError(f"an HTTP function must return func.HttpResponse, str or None, not {type(value).__name__}")
    headers: CIMultiDict[str] = CIMultiDict()
    for name, header_value in value.headers.items():
        if name.lower() not in _HOP_BY_HOP:
            headers.add(name, header_value)
    if "Content-Type" not in headers:
        mimetype = value.mimetype
        headers["Content-Type"] = f"{mimetype}; charset={value.charset}" if mimetype.startswith("text/") else mimetype
    return web.Response(status=value.status_code, body=value.get_body(), headers=headers)


class HttpServer:
    def __init__(
        self,
        functions: Iterable[HttpFunction],
        *,
        route_prefix: str,
        invoker: FunctionInvoker,
        function_key: str,
        shutdown_timeout_s: float,
        function_keys: Mapping[str, str] | None = None,
        easy_auth: EasyAuth | None = None,
    ) -> None:
        self.route_prefix = route_prefix
        self._invoker = invoker
        self._function_key = function_key.encode()
        self._function_keys = {name: key.encode() for name, key in (function_keys or {}).items()}
        self._easy_auth = easy_auth
        self._routes: RouteTable[HttpFunction] = RouteTable(route_prefix)
        for function in functions:
            try:
                self._routes.add(function.route, function.methods, function)
            except RouteTemplateError as error:
                raise StartupError(f"function '{function.name}': {error}") from None
        app = web.Application(client_max_size=MAX_REQUEST_BODY_BYTES)
        # [\s\S], not ".": a path with an encoded newline (%0A) must reach _handle too, for a JSON answer.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        # Invocations are logged one line each by the invoker; an access log would double them.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=shutdown_timeout_s,
            max_line_size=_PARSER_LIMIT_BYTES,
            max_field_size=_PARSER_LIMIT_BYTES,
            max_headers=_PARSER_MAX_HEADERS,
        )
        self.port: int | None = None

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the bound port (useful with port 0)."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop accepting, let running requests finish within the shutdown timeout, close."""
        if self.port is not None:
            await self._runner.cleanup()
            self.port = None

    def _authorized(self, request: web.Request, function: HttpFunction) -> bool:
        """The host key opens every keyed function; a function's own key opens that function only."""
        supplied = (request.headers.get(KEY_HEADER) or request.query.get(KEY_QUERY) or "").encode()
        keys = [self._function_key]
        own_key = self._function_keys.get(function.name)
        if own_key is not None and function.auth_level == func.AuthLevel.FUNCTION:
            keys.append(own_key)
        # Every key is compared, so the time taken does not tell which one nearly matched.
        return sum(hmac.compare_digest(supplied, key) for key in keys) > 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        oversized = _oversized(request)
        if oversized is not None:
            return oversized
        # In front of the app, as Easy Auth is in Azure: only the front end sets principal headers.
        headers = without_front_end_headers(request.headers)
        if self._easy_auth is not None:
            if request.path.startswith(AUTH_PATH_PREFIX):
                return await self._easy_auth.handle(request)
            try:
                user = self._easy_auth.identify(headers, request.cookies)
            except SignInRefused as refused:
                return unauthenticated(str(refused))
            if user is not None:
                headers.update(principal_headers(user))
        resolved = self._routes.resolve(request.rel_url.raw_path, request.method)
        if resolved is None:
            return error_response(404, "not_found", f"no function serves {request.path}")
        if isinstance(resolved, MethodNotAllowed):
            allow = ", ".join(sorted(resolved.allowed))
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed here (allowed: {allow})", {"Allow": allow}
            )
        function = resolved.route.target
        if function.auth_level != func.AuthLevel.ANONYMOUS and not self._authorized(request, function):
            return error_response(
                401, "unauthorized", f"a function key is required: header {KEY_HEADER} or query ?{KEY_QUERY}="
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, "too_large", f"request body exceeds {MAX_REQUEST_BODY_BYTES} bytes")
        http_request = func.HttpRequest(
            method=request.method,
            url=str(request.url),
            headers=_joined(headers),
            params=_joined(request.query),
            route_params=resolved.values,
            body=body,
        )
        result = await self._invoker.invoke(function, http_request)
        if result.succeeded:
            try:
                return to_web_response(result.value)
            except TypeError as error:
                logger.error("function %s invocation_id=%s: %s", function.name, result.invocation_id, error)
        return error_response(500, "internal", f"Exception while executing function: {function.name}")


def _oversized(request: web.Request) -> web.Response | None:
    """The host's answer to a request line or headers past Kestrel's limits; None when within them."""
    line = len(request.method) + len(request.raw_path) + len("HTTP/1.1") + 2
    if line > MAX_REQUEST_LINE_BYTES:
        return error_response(
            414, "uri_too_long", f"the request line is {line} bytes; the host accepts {MAX_REQUEST_LINE_BYTES}"
        )
    count = len(request.raw_headers)
    size = sum(len(name) + len(value) + 4 for name, value in request.raw_headers)
    if count > MAX_REQUEST_HEADER_COUNT or size > MAX_REQUEST_HEADERS_BYTES:
        return error_response(
            431,
            "request_headers_too_large",
            f"the request has {count} headers of {size} bytes; the host accepts {MAX_REQUEST_HEADER_COUNT} headers "
            f"of {MAX_REQUEST_HEADERS_BYTES} bytes together",
        )
    return None
