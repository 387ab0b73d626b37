"""HttpSender against httpx.MockTransport: what goes out, what comes back, what is raised."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.config.models import HttpEndpoint
from shared.delivery.adapters.base import Delivery
from shared.delivery.adapters.http import (
    MAX_DETAIL_CHARS,
    HttpSender,
    build_http_client,
    describe_url,
    environ_resolver,
    parse_retry_after,
)
from shared.egress import EgressPolicy
from shared.errors import ConfigError, EgressRefused, PermanentDeliveryError, TransientDeliveryError

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
#: The egress policy of these tests: ORDERS_TOKEN may be referenced, nothing else.
EGRESS = EgressPolicy(secret_settings=frozenset({"ORDERS_TOKEN"}))
Handler = Callable[[httpx.Request], httpx.Response]


def make_delivery(**overrides: Any) -> Delivery:
    values: dict[str, Any] = {
        "message_id": "msg-1",
        "integration": "orders",
        "body": b'{"order": 42}',
        "content_type": "application/json",
        "correlation_id": "corr-7",
        "headers": {},
    }
    values.update(overrides)
    return Delivery(**values)


def make_endpoint(**overrides: Any) -> HttpEndpoint:
    values: dict[str, Any] = {"url": "http://receiver.test:8080/orders", "timeout_s": 5}
    values.update(overrides)
    return HttpEndpoint.model_validate(values)


class Recorder:
    """A MockTransport handler that answers with a fixed response and keeps every request."""

    def __init__(self, response: httpx.Response | None = None) -> None:
        self.response = response or httpx.Response(200, text="ok")
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_sender(
    handler: Handler, *, endpoint: HttpEndpoint | None = None, app_settings: dict[str, str] | None = None
) -> HttpSender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpSender(
        endpoint or make_endpoint(),
        client,
        resolve_setting=environ_resolver(app_settings or {}),
        egress=EGRESS,
        clock=lambda: NOW,
    )


async def test_request_carries_method_url_body_and_protocol_headers():
    # Given a receiver that records what it gets
    receiver = Recorder()
    sender = make_sender(receiver, endpoint=make_endpoint(method="PUT"))

    # When a delivery is sent
    await sender.send(make_delivery())

    # Then the body, method, URL and protocol headers arrive as configured
    request = receiver.last
    assert (request.method, str(request.url)) == ("PUT", "http://receiver.test:8080/orders")
    assert request.content == b'{"order": 42}'
    assert request.headers["Idempotency-Key"] == "msg-1"
    assert request.headers["X-Correlation-Id"] == "corr-7"
    assert request.headers["Content-Type"] == "application/json"


async def test_content_type_defaults_to_octet_stream_and_correlation_is_omitted_when_absent():
    # Given a delivery without content type or correlation id
    receiver = Recorder()
    sender = make_sender(receiver)

    # When it is sent
    await sender.send(make_delivery(content_type=None, correlation_id=None))

    # Then the content type is generic and no correlation header is invented
    assert receiver.last.headers["Content-Type"] == "application/octet-stream"
    assert "X-Correlation-Id" not in receiver.last.headers


async def test_an_upstream_content_type_header_is_kept_when_the_delivery_names_none():
    receiver = Recorder()
    sender = make_sender(receiver)

    await sender.send(make_delivery(content_type=None, headers={"content-type": "text/csv"}))

    assert receiver.last.headers.get_list("Content-Type") == ["text/csv"]


async def test_endpoint_headers_win_over_delivery_headers_regardless_of_case():
    # Given a delivery header that the endpoint also configures, spelled differently
    receiver = Recorder()
    sender = make_sender(receiver, endpoint=make_endpoint(headers={"x-tenant": "from-endpoint"}))

    # When it is sent
    await sender.send(make_delivery(headers={"X-Tenant": "from-upstream", "X-Trace": "t-1"}))

    # Then the endpoint's value is the only one, and other delivery headers pass through
    assert receiver.last.headers.get_list("x-tenant") == ["from-endpoint"]
    assert receiver.last.headers["X-Trace"] == "t-1"


async def test_idempotency_key_is_always_the_message_id():
    # Given headers from both sides trying to set their own idempotency key
    receiver = Recorder()
    sender = make_sender(receiver, endpoint=make_endpoint(headers={"Idempotency-Key": "endpoint"}))

    # When it is sent
    await sender.send(make_delivery(headers={"idempotency-key": "upstream"}))

    # Then the message id wins: duplicates of one message must share one key
    assert receiver.last.headers.get_list("Idempotency-Key") == ["msg-1"]


async def test_upstream_framing_headers_are_not_forwarded():
    # Given headers that described the upstream request, not ours
    receiver = Recorder()
    sender = make_sender(receiver)

    # When they ride along on a delivery
    await sender.send(make_delivery(headers={"Host": "upstream.test", "Content-Length": "3", "Connection": "close"}))

    # Then the outgoing request has its own framing
    assert receiver.last.headers["Host"] == "receiver.test:8080"
    assert receiver.last.headers["Content-Length"] == str(len(b'{"order": 42}'))


async def test_setting_reference_in_an_endpoint_header_is_resolved_from_app_settings():
    # Given an Authorization header that references an app setting
    receiver = Recorder()
    sender = make_sender(
        receiver,
        endpoint=make_endpoint(headers={"Authorization": "Bearer %ORDERS_TOKEN%"}),
        app_settings={"ORDERS_TOKEN": "s3cret"},
    )

    # When a delivery is sent
    await sender.send(make_delivery())

    # Then the secret is filled in at send time
    assert receiver.last.headers["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize("app_settings", [{}, {"ORDERS_TOKEN": ""}])
async def test_unresolvable_setting_reference_is_permanent_and_names_the_setting(app_settings: dict[str, str]):
    # Given a header referencing a setting that is missing or empty
    receiver = Recorder()
    sender = make_sender(
        receiver,
        endpoint=make_endpoint(headers={"Authorization": "Bearer %ORDERS_TOKEN%"}),
        app_settings=app_settings,
    )

    # When a delivery is sent
    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(make_delivery())

    # Then nothing went out and the error names the setting
    assert receiver.requests == []
    assert "ORDERS_TOKEN" in raised.value.message
    assert "Authorization" in raised.value.message


async def test_a_reference_to_a_setting_outside_the_allowlist_is_a_config_error_and_nothing_is_sent():
    # Given a config that reached the table without passing PUT: it references the storage key
    receiver = Recorder()
    sender = make_sender(
        receiver,
        endpoint=make_endpoint(headers={"X-Storage": "%AzureWebJobsStorage%"}),
        app_settings={"AzureWebJobsStorage": "AccountKey=s3cret-key"},
    )

    # When a delivery is sent
    with pytest.raises(EgressRefused) as raised:
        await sender.send(make_delivery())

    # Then it is a config error naming header and setting, and neither the receiver nor the error saw the value
    assert isinstance(raised.value, ConfigError)
    assert receiver.requests == []
    assert "X-Storage" in raised.value.message and "AzureWebJobsStorage" in raised.value.message
    assert "s3cret" not in raised.value.message


async def test_an_unresolved_key_vault_reference_is_a_config_error_and_nothing_is_sent():
    # Given an allowlisted setting whose Key Vault reference the platform could not resolve
    receiver = Recorder()
    sender = make_sender(
        receiver,
        endpoint=make_endpoint(headers={"Authorization": "Bearer %ORDERS_TOKEN%"}),
        app_settings={"ORDERS_TOKEN": "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/orders/)"},
    )

    # When a delivery is sent
    with pytest.raises(ConfigError) as raised:
        await sender.send(make_delivery())

    # Then the reference text is not sent as if it were the token
    assert receiver.requests == []
    assert "Key Vault" in raised.value.message


async def test_a_header_value_with_a_line_break_is_permanent():
    # Given a delivery header that would split the request
    sender = make_sender(Recorder())

    # When it is sent
    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(make_delivery(headers={"X-Evil": "a\r\nX-Injected: 1"}))

    # Then it is refused by name before anything is written
    assert "X-Evil" in raised.value.message


@pytest.mark.parametrize("status", [200, 202, 302, 400, 404, 409, 429, 500, 503])
async def test_any_status_is_returned_not_raised(status: int):
    # Given a receiver answering with `status`
    sender = make_sender(Recorder(httpx.Response(status, text="answer")))

    # When a delivery is sent
    response = await sender.send(make_delivery())

    # Then the status is reported for the engine to classify
    assert response.status_code == status
    assert response.ok == (200 <= status < 300)


@pytest.mark.parametrize(
    ("header", "expected_s"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sat, 01 Mar 2025 12:00:30 GMT", 30.0),
        ("Sat, 01 Mar 2025 11:59:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
    ],
)
async def test_retry_after_is_parsed_as_seconds_or_http_date_and_garbage_is_ignored(
    header: str, expected_s: float | None
):
    # Given a 503 with a Retry-After header
    sender = make_sender(Recorder(httpx.Response(503, headers={"Retry-After": header})))

    # When a delivery is sent
    response = await sender.send(make_delivery())

    # Then the wait is in seconds from now, or absent when the header is unusable
    assert response.retry_after_s == expected_s


def test_retry_after_absent_is_none():
    assert parse_retry_after(None, now=NOW) is None


async def test_detail_is_the_start_of_the_error_text_on_one_line():
    # Given a receiver answering with a long, multi-line error page
    page = "Internal error\n\tat line 1\r\n" + "x" * 1000
    sender = make_sender(Recorder(httpx.Response(500, text=page)))

    # When a delivery is sent
    response = await sender.send(make_delivery())

    # Then the detail is one short line from the start of it
    assert response.detail.startswith("Internal error at line 1 xxx")
    assert "\n" not in response.detail and "\t" not in response.detail
    assert len(response.detail) <= MAX_DETAIL_CHARS


async def test_detail_drops_control_and_format_characters_and_stays_short():
    # Given an error page with an ESC sequence, C1 controls, bidi overrides, zero-width and BOM characters
    page = "\x1b[31mdenied\x1b[0m \u202egnp.exe\u202c \x85\x9b2J ok\u200b\ufeff\u2066x\u2069 " + "y" * 10_000
    sender = make_sender(Recorder(httpx.Response(400, text=page)))

    # When a delivery is sent
    response = await sender.send(make_delivery())

    # Then what is kept is visible text only, short
    assert response.detail.startswith("[31mdenied[0m gnp.exe 2J okx yyy")
    assert not [ch for ch in response.detail if unicodedata.category(ch) in ("Cc", "Cf")]
    assert len(response.detail) <= MAX_DETAIL_CHARS == 200


async def test_detail_is_empty_on_success():
    sender = make_sender(Recorder(httpx.Response(200, text="fine, thanks")))

    response = await sender.send(make_delivery())

    assert response.detail == ""


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("All connection attempts failed"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout(""),
        httpx.PoolTimeout("no connection free"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
    ],
)
async def test_network_errors_and_timeouts_are_transient_and_name_the_error_type(error: httpx.TransportError):
    # Given a transport that fails before any answer
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    sender = make_sender(fail)

    # When a delivery is sent
    with pytest.raises(TransientDeliveryError) as raised:
        await sender.send(make_delivery())

    # Then the failure is transient, says what went wrong and has no status
    assert type(error).__name__ in raised.value.message
    assert raised.value.status_code is None


async def test_the_endpoint_timeout_is_applied_to_the_request():
    # Given an endpoint with its own timeout
    receiver = Recorder()
    sender = make_sender(receiver, endpoint=make_endpoint(timeout_s=7.5))

    # When a delivery is sent
    await sender.send(make_delivery())

    # Then httpx was told that timeout
    assert receiver.last.extensions["timeout"] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}


def test_target_names_method_and_url_without_userinfo_or_query():
    # Given an endpoint URL with credentials and a key in the query
    sender = make_sender(Recorder(), endpoint=make_endpoint(url="https://user:pw@api.test/hooks/in?code=k3y"))

    # Then the target is safe to log
    assert sender.target == "http POST https://api.test/hooks/in"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://127.0.0.1:9000/x?y=1", "http PATCH http://127.0.0.1:9000/x"),
        ("http://[::1]:9000/x", "http PATCH http://[::1]:9000/x"),
    ],
)
def test_target_keeps_an_explicit_port(url: str, target: str):
    assert describe_url("PATCH", url) == target


async def test_the_shared_client_does_not_follow_redirects_or_trust_the_environment():
    # When the worker's client is built
    client = build_http_client(EgressPolicy())

    # Then redirects come back as answers and machine proxy settings are ignored
    try:
        assert client.follow_redirects is False
        assert client.trust_env is False
    finally:
        await client.aclose()


async def test_the_shared_client_connects_only_through_the_vetted_backend():
    # Given the worker's client under the default (secure) policy
    client = build_http_client(EgressPolicy())

    # When it is asked for a loopback address (nothing listens on port 9: a connection would fail differently)
    try:
        with pytest.raises(EgressRefused) as raised:
            await client.get("http://127.0.0.1:9/")
    finally:
        await client.aclose()

    # Then the refusal came from the egress policy, before any socket
    assert "loopback" in raised.value.message
