"""Finding 7 of issue 13 (headers part): endpoint header names and values are checked at PUT.

Before, a header that would split the request (CR/LF) or was no header name at all was stored and
only failed, message by message, at send time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from devtools.azurite import AzuriteProcess
from devtools.process import DevhostProcess
from tests.e2e.app_host import app_env, client, running_app, unique_prefix
from tests.security.delivery import field_errors, put_config


@pytest.fixture(scope="module")
def host(azurite: AzuriteProcess) -> Iterator[DevhostProcess]:
    with running_app(app_env(azurite, unique_prefix())) as host:
        yield host


@pytest.fixture
async def http(host: DevhostProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with client(host) as http:
        yield http


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Bad Name": "x"}, "endpoint.headers.Bad Name"),
        ({"X-Split\r\nX-Injected": "1"}, "endpoint.headers.X-Split\r\nX-Injected"),
        ({"X-Colon:": "x"}, "endpoint.headers.X-Colon:"),
        ({"": "x"}, "endpoint.headers."),
        ({"X-Evil": "a\r\nX-Injected: 1"}, "endpoint.headers.X-Evil"),
        ({"X-Lf": "a\nb"}, "endpoint.headers.X-Lf"),
        ({"X-Nul": "a\x00b"}, "endpoint.headers.X-Nul"),
        ({"X-Esc": "a\x1b[2Jb"}, "endpoint.headers.X-Esc"),
    ],
)
async def test_an_invalid_header_name_or_value_is_refused_at_put_naming_the_header(http, headers, field):
    # When a config with the header is PUT
    response = await put_config(
        http, "headers", {"kind": "http", "url": "https://receiver.example/in", "headers": headers}
    )

    # Then it is a 422 naming exactly that header, and nothing is stored
    assert list(field_errors(response)) == [field]
    assert (await http.get("/integrations/headers")).status_code == 404


async def test_the_fallback_endpoints_headers_are_checked_too(http):
    endpoint = {"kind": "http", "url": "https://receiver.example/in"}
    fallback = {**endpoint, "headers": {"X-Evil": "a\r\nb"}}

    response = await put_config(http, "fallback-headers", endpoint, fallback_endpoint=fallback)

    assert list(field_errors(response)) == ["fallback_endpoint.headers.X-Evil"]


async def test_valid_headers_with_tabs_and_non_ascii_values_are_accepted(http):
    headers = {"X-Tenant": "acme\tnorth", "X-Name": "Zoë", "x.custom_header~1": "v"}

    response = await put_config(
        http, "good-headers", {"kind": "http", "url": "https://receiver.example/in", "headers": headers}
    )

    assert response.status_code == 201, response.text
    assert response.json()["endpoint"]["headers"] == headers
