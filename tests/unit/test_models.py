"""Models: the spec's retry defaults and bounds, endpoint variants, envelopes, field-named errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config.models import (
    BackoffPolicy,
    HttpEndpoint,
    IntegrationConfig,
    RetryMode,
    RetryPolicy,
    ServiceBusEndpoint,
    StorageQueueEndpoint,
)
from shared.errors import RequestValidationError
from shared.failures.models import FailureFilter
from shared.ids import id_prefix_at
from shared.jobs.models import JobSelection
from shared.messages.models import Envelope
from shared.validation import parse_model


def make_config(**overrides):
    data = {"id": "orders", "name": "Orders", "endpoint": {"kind": "http", "url": "http://127.0.0.1:9/in"}}
    data.update(overrides)
    return data


def fields_of(caught: pytest.ExceptionInfo[RequestValidationError]) -> list[str]:
    return [f["field"] for f in caught.value.fields]


def test_backoff_defaults_are_the_spec_table():
    backoff = BackoffPolicy()

    assert backoff.enabled is True
    assert backoff.max_number_of_retries == 5
    assert backoff.failure_count_interval_minutes == 3
    assert backoff.max_errors_per_interval == 1000
    assert backoff.requeue_min_delay_seconds == 10
    assert backoff.requeue_max_delay_seconds == 60
    assert backoff.max_delay_actions == 5


def test_default_retry_policy_is_linear_three():
    policy = RetryPolicy()

    assert policy.mode is RetryMode.LINEAR
    assert policy.linear_count == 3


@pytest.mark.parametrize("count", [3, 10])
def test_linear_count_accepts_its_bounds(count):
    assert parse_model(IntegrationConfig, make_config(retry={"linear_count": count})).retry.linear_count == count


@pytest.mark.parametrize("count", [2, 11, 0])
def test_linear_count_outside_3_to_10_is_rejected_naming_the_field(count):
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(retry={"linear_count": count}))

    assert fields_of(caught) == ["retry.linear_count"]


def test_min_delay_above_max_delay_is_rejected_naming_the_max():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(
            IntegrationConfig,
            make_config(
                retry={"mode": "backoff", "backoff": {"requeue_min_delay_seconds": 30, "requeue_max_delay_seconds": 20}}
            ),
        )

    assert fields_of(caught) == ["retry.backoff.requeue_max_delay_seconds"]
    assert "requeue_min_delay_seconds" in caught.value.fields[0]["message"]


def test_a_min_delay_above_the_default_max_is_rejected_rather_than_stored_unreadable():
    # Given a minimum over the default maximum (60), the maximum left out
    backoff = {"requeue_min_delay_seconds": 90}

    # When / Then: refused naming the maximum (accepted, it could never be read back from storage)
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(retry={"mode": "backoff", "backoff": backoff}))
    assert fields_of(caught) == ["retry.backoff.requeue_max_delay_seconds"]


@pytest.mark.parametrize(
    ("backoff", "field"),
    [
        ({"max_number_of_retries": -1}, "retry.backoff.max_number_of_retries"),
        ({"failure_count_interval_minutes": 0}, "retry.backoff.failure_count_interval_minutes"),
        ({"max_errors_per_interval": 0}, "retry.backoff.max_errors_per_interval"),
        ({"max_delay_actions": -1}, "retry.backoff.max_delay_actions"),
        ({"requeue_min_delay_seconds": -5}, "retry.backoff.requeue_min_delay_seconds"),
        ({"unknown_knob": 1}, "retry.backoff.unknown_knob"),
    ],
)
def test_invalid_backoff_values_are_rejected_naming_the_field(backoff, field):
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(retry={"mode": "backoff", "backoff": backoff}))

    assert field in fields_of(caught)


def test_disabled_backoff_falls_back_to_the_default_linear_three():
    policy = RetryPolicy(mode=RetryMode.BACKOFF, backoff=BackoffPolicy(enabled=False))

    assert policy.effective() == RetryPolicy()


def test_enabled_backoff_is_its_own_effective_policy():
    policy = RetryPolicy(mode=RetryMode.BACKOFF)

    assert policy.effective() is policy


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ({"kind": "http", "url": "https://receiver.example/in", "method": "PUT", "timeout_s": 5}, HttpEndpoint),
        ({"kind": "storage_queue", "connection": "PartnerStorage", "queue": "orders-in"}, StorageQueueEndpoint),
        ({"kind": "service_bus", "connection": "PartnerBus", "entity": "orders"}, ServiceBusEndpoint),
    ],
)
def test_each_endpoint_variant_is_recognised_by_kind(endpoint, kind):
    assert isinstance(parse_model(IntegrationConfig, make_config(endpoint=endpoint)).endpoint, kind)


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        ({"kind": "http", "url": "not a url"}, "endpoint.url"),
        ({"kind": "http", "url": "http://x/", "timeout_s": 0}, "endpoint.timeout_s"),
        ({"kind": "storage_queue", "connection": "S", "queue": "Bad_Name"}, "endpoint.queue"),
        ({"kind": "storage_queue", "connection": "has space", "queue": "ok-queue"}, "endpoint.connection"),
        ({"kind": "ftp", "url": "ftp://x"}, "endpoint"),
    ],
)
def test_invalid_endpoint_is_rejected_naming_the_field(endpoint, field):
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(endpoint=endpoint))

    assert field in fields_of(caught)


def test_redirect_rule_without_fallback_is_rejected():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(
            IntegrationConfig, make_config(error_rules=[{"status_min": 500, "status_max": 599, "action": "redirect"}])
        )

    assert fields_of(caught) == ["error_rules"]


def test_error_rule_range_must_not_be_reversed():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(
            IntegrationConfig, make_config(error_rules=[{"status_min": 500, "status_max": 400, "action": "retry"}])
        )

    assert fields_of(caught) == ["error_rules[0].status_max"]


def test_connection_names_a_setting_and_never_holds_a_connection_string():
    with pytest.raises(RequestValidationError):
        parse_model(
            IntegrationConfig,
            make_config(endpoint={"kind": "storage_queue", "connection": "AccountKey=abc;", "queue": "out-q"}),
        )


def test_integration_id_must_be_url_and_key_safe():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(id="a/b"))

    assert fields_of(caught) == ["id"]


def test_minimal_envelope_gets_an_id_and_a_received_time():
    envelope = Envelope.model_validate({"integration": "orders", "body_text": "hi"})

    assert len(envelope.id) == 32
    assert envelope.received_at.tzinfo is not None
    assert envelope.inline_body() == b"hi"
    assert (envelope.engine_attempts, envelope.delay_actions, envelope.resend_count, envelope.recovery_count) == (
        0,
        0,
        0,
        0,
    )


def test_envelope_with_two_bodies_is_rejected():
    with pytest.raises(RequestValidationError):
        parse_model(Envelope, {"integration": "orders", "body_text": "a", "body_b64": "YQ=="})


def test_envelope_with_bad_base64_is_rejected_naming_the_field():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(Envelope, {"integration": "orders", "body_b64": "***"})

    assert fields_of(caught) == ["body_b64"]


def test_binary_body_round_trips_through_base64():
    envelope = Envelope(integration="orders", body_b64="AAEC/w==")

    assert envelope.inline_body() == b"\x00\x01\x02\xff"


def test_filter_with_reversed_time_range_is_rejected():
    with pytest.raises(RequestValidationError) as caught:
        parse_model(FailureFilter, {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"})

    assert fields_of(caught) == ["to"]


@pytest.mark.parametrize("selection", [{}, {"all": True, "ids": ["0000000000000000-000000000000"]}, {"all": False}])
def test_job_selection_needs_exactly_one_form(selection):
    with pytest.raises(RequestValidationError):
        parse_model(JobSelection, selection)


@pytest.mark.parametrize(
    "value",
    ["0.5", "1700000000", "2024-05-01", "2024-05-01 12:00:00", "2024-05-01T12:00", "2024-02-30T00:00:00Z",
     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2024-05-01T12:00:00Z\n", ""],
)  # fmt: skip
def test_an_instant_from_a_caller_must_be_iso_8601_with_a_utc_equivalent(value):
    with pytest.raises(RequestValidationError) as caught:
        parse_model(FailureFilter, {"from": value})

    assert fields_of(caught) == ["from"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # no offset: UTC
        ("2024-05-01t14:00:00.1234567+02:00", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),  # .NET's 7 digits
        ("0001-01-02T00:00:00+14:00", datetime(1, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_an_iso_8601_instant_is_read_as_utc(value, expected):
    assert parse_model(FailureFilter, {"from": value}).from_ == expected


def test_row_key_bounds_outside_the_key_span_are_clamped_so_they_still_sort():
    # Keys are 16 digits from 1970 to 2286; before and after, the bound is the first or last key.
    assert id_prefix_at(datetime(1900, 1, 1, tzinfo=UTC)) == "9" * 16
    assert id_prefix_at(datetime(9999, 1, 1, tzinfo=UTC)) == "0" * 16
    assert len(id_prefix_at(datetime(2026, 1, 1, tzinfo=UTC))) == 16


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"linear_count": "4"}, "retry.linear_count"),  # a string is not a number
        ({"linear_count": 4.5}, "retry.linear_count"),
        ({"backoff": {"enabled": "true"}}, "retry.backoff.enabled"),
        ({"backoff": {"enabled": 1}}, "retry.backoff.enabled"),
    ],
)
def test_a_body_is_validated_as_json_schema_reads_it_without_coercion(retry, field):
    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(retry=retry))

    assert fields_of(caught) == [field]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"Bad Name": "x"}, "endpoint.headers.Bad Name"),
        ({"X-Trailing\n": "x"}, "endpoint.headers.X-Trailing\n"),
        ({"X-Evil": "a\r\nX-Injected: 1"}, "endpoint.headers.X-Evil"),
        ({"X-Trailing-Lf": "a\n"}, "endpoint.headers.X-Trailing-Lf"),
        ({"X-Nul": "\x00"}, "endpoint.headers.X-Nul"),
    ],
)
def test_an_endpoint_header_that_is_not_a_token_or_holds_a_control_character_is_a_field_error(headers, field):
    endpoint = {"kind": "http", "url": "https://erp.example/in", "headers": headers}

    with pytest.raises(RequestValidationError) as caught:
        parse_model(IntegrationConfig, make_config(endpoint=endpoint))

    assert fields_of(caught) == [field]


def test_an_integral_float_is_an_integer_as_in_json_schema():
    assert parse_model(IntegrationConfig, make_config(retry={"linear_count": 4.0})).retry.linear_count == 4


@pytest.mark.parametrize("selection", [{"all": 1}, {"ids": ["a/b"]}, {"ids": ["0000000000000000-0000000000FF"]}])
def test_job_selection_takes_true_and_only_ids_the_api_hands_out(selection):
    with pytest.raises(RequestValidationError):
        parse_model(JobSelection, selection)


def test_an_endpoint_header_value_may_hold_a_tab_and_non_ascii_text():
    endpoint = {"kind": "http", "url": "https://erp.example/in", "headers": {"X-Note": "a\tb ü"}}

    config = parse_model(IntegrationConfig, make_config(endpoint=endpoint))

    assert isinstance(config.endpoint, HttpEndpoint)
    assert config.endpoint.headers == {"X-Note": "a\tb ü"}
