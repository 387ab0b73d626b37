"""App settings (local.settings.json + environment, %NAME%) and host.json options; pure but for tmp files."""

from __future__ import annotations

import json

import pytest

from devhost.app_settings import AppSettings, merge_settings, read_local_settings, resolve_expression
from devhost.errors import StartupError
from devhost.host_config import HostConfig, MessageEncoding, load_host_config, parse_timespan_s


def test_environment_overrides_local_settings_values(tmp_path):
    # Given
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "N": 5, "F": True}})
    )

    # When
    local = read_local_settings(tmp_path)
    merged = merge_settings(local.values, {"B": "env", "C": "env"})

    # Then
    assert merged == {"A": "file", "B": "env", "C": "env", "N": "5", "F": "true"}


def test_missing_local_settings_means_environment_only(tmp_path, caplog):
    # When
    local = read_local_settings(tmp_path)

    # Then
    assert local.values == {}
    assert "local.settings.json not found" in caplog.text


def test_local_http_port_is_read_from_the_host_section(tmp_path):
    # Given
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {}, "Host": {"LocalHttpPort": 7072}}))

    # When / Then
    assert read_local_settings(tmp_path).local_http_port == 7072


@pytest.mark.parametrize(
    ("text", "expected"),
    [("%P%inbound", "inbound"), ("%Q%inbound", "t1inbound"), ("plain", "plain"), ("%Q%-%Q%", "t1-t1")],
)
def test_expressions_resolve_from_settings(text, expected):
    # When / Then
    assert resolve_expression(text, AppSettings({"P": "", "Q": "t1"}), where="test") == expected


def test_setting_lookup_falls_back_to_case_insensitive():
    # When / Then
    assert resolve_expression("%rebound_prefix%x", AppSettings({"REBOUND_PREFIX": "t9"}), where="test") == "t9x"


def test_unresolvable_expression_is_an_error():
    # When / Then
    with pytest.raises(StartupError, match="%MISSING%"):
        resolve_expression("%MISSING%inbound", AppSettings({}), where="test")


def test_settings_repr_hides_values():
    # When / Then
    assert "secret" not in repr(AppSettings({"AzureWebJobsStorage": "secret"}))


def test_host_json_defaults_are_the_real_hosts():
    # When
    config = HostConfig.from_document({"version": "2.0"})

    # Then
    queues = config.queues
    assert config.http.route_prefix == "api"
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_concurrency) == (16, 8, 24)
    assert (queues.max_polling_interval_s, queues.visibility_timeout_s, queues.max_dequeue_count) == (60.0, 0.0, 5)
    assert queues.message_encoding is MessageEncoding.BASE64


def test_host_json_keys_are_case_insensitive_and_threshold_follows_batch_size():
    # When
    config = HostConfig.from_document(
        {"Extensions": {"Http": {"RoutePrefix": ""}, "Queues": {"BatchSize": 4, "MessageEncoding": "None"}}}
    )

    # Then
    assert config.http.route_prefix == ""
    assert (config.queues.batch_size, config.queues.new_batch_threshold) == (4, 2)
    assert config.queues.message_encoding is MessageEncoding.NONE


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:02", 2.0), ("00:01:00", 60.0), ("1.00:00:00", 86400.0), ("00:00:00.500", 0.5), ("2", 172800.0)],
)
def test_timespans_parse_like_dotnet(text, seconds):
    # When / Then
    assert parse_timespan_s(text) == seconds


@pytest.mark.parametrize(
    "queues",
    [{"batchSize": 33}, {"batchSize": 0}, {"maxPollingInterval": "00:00:00.050"}, {"visibilityTimeout": 5}],
)
def test_out_of_range_queue_options_fail_start_up(tmp_path, queues):
    # Given
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))

    # When / Then
    with pytest.raises(StartupError, match="invalid values"):
        load_host_config(tmp_path)


def test_progress_line_names_every_queue_and_the_rate():
    from devhost.progress import progress_line

    line = progress_line(12.345, 3, {"inbound": 120, "jobs": None})

    assert line == "progress invocations/s=12.3 in_flight=3 queues inbound=120 jobs=?"


def test_progress_interval_defaults_and_rejects_garbage():
    import pytest

    from devhost.errors import StartupError
    from devhost.progress import DEFAULT_PROGRESS_S, progress_interval_s

    assert progress_interval_s({}) == DEFAULT_PROGRESS_S
    assert progress_interval_s({"DEVHOST_PROGRESS_S": "0"}) == 0
    with pytest.raises(StartupError):
        progress_interval_s({"DEVHOST_PROGRESS_S": "often"})
