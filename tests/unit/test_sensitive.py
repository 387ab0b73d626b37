"""What is masked, and how URLs and values are made safe for a log line."""

from __future__ import annotations

import logging

import pytest

from shared.logs import log_event, render_value
from shared.sensitive import MASK, is_sensitive_header, mask_headers, safe_url


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("Authorization", True),
        ("x-api-key", True),
        ("X-Auth-Token", True),
        ("x-client-secret", True),
        ("client_secret", True),
        ("Cookie", True),
        ("set-cookie", True),
        ("x-db-password", True),
        ("ocp-apim-subscription-key", True),
        ("x-functions-key", True),
        ("x-order-id", False),
        ("content-type", False),
        ("idempotency-key", False),
        ("x-tokenizer", False),
    ],
)
def test_credential_header_names_are_recognised(name: str, sensitive: bool) -> None:
    assert is_sensitive_header(name) is sensitive


def test_masking_keeps_names_and_hides_only_credential_values() -> None:
    assert mask_headers({"x-api-key": "k", "x-order": "7"}) == {"x-api-key": MASK, "x-order": "7"}


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("http://h:7071/api/x?code=KEY&limit=5", "http://h:7071/api/x?code=%2A%2A%2A&limit=5"),
        ("https://user:pw@h/p?sig=abc#frag", "https://h/p?sig=%2A%2A%2A"),
        ("http://[::1]:80/p", "http://[::1]:80/p"),
    ],
)
def test_urls_lose_userinfo_and_credential_query_values(url: str, logged: str) -> None:
    assert safe_url(url) == logged


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("abc-1.2:3/x@y+z", "abc-1.2:3/x@y+z"),
        ("two words", '"two words"'),
        ("line\nforged=1", '"line\\nforged=1"'),
        ('quote"', '"quote\\""'),
        ("", '""'),
        (42, "42"),
    ],
)
def test_log_values_that_could_break_the_line_are_quoted(value: object, rendered: str) -> None:
    assert render_value(value) == rendered


def test_one_event_is_always_one_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rebound.test")
    with caplog.at_level(logging.INFO, logger="rebound.test"):
        log_event(logger, "delivery.failed", correlation_id="c\r\nERROR forged", message_id="m-1")
    [record] = caplog.records
    assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
