"""Settings: the spec's defaults, validation that names the setting, connection resolution."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.settings import Connection, RecoveryBackend, Settings

AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:1/d;"
)


def test_defaults_are_the_documented_ones():
    # Given an environment with only the storage connection
    settings = Settings.from_env({"AzureWebJobsStorage": AZURITE})

    # Then every default is the one DESIGN.md and the README document
    assert settings.prefix == ""
    assert settings.failure_retention_days == 7
    assert settings.endpoint_retry_window_s == 60
    assert settings.max_message_bytes == 10 * 1024 * 1024
    assert settings.max_inbound_depth == 1000
    assert settings.recovery_backend is RecoveryBackend.STORAGE
    assert settings.recovery_schedule == "0 */5 * * * *"
    assert settings.recovery_max_reinserts == 3


def test_settings_never_read_os_environ_when_given_a_mapping(monkeypatch):
    # Given a process environment with a prefix
    monkeypatch.setenv("REBOUND_PREFIX", "fromprocess")

    # When settings are built from an explicit mapping
    settings = Settings.from_env({})

    # Then the process environment is ignored
    assert settings.prefix == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REBOUND_PREFIX", "Has-Upper"),
        ("REBOUND_PREFIX", "9starts"),
        ("FAILURE_RETENTION_DAYS", "0"),
        ("ENDPOINT_RETRY_WINDOW_S", "61"),
        ("RECOVERY_BACKEND", "kafka"),
        ("JOB_RATE_LIMIT_PER_S", "0"),
        ("MAX_INBOUND_DEPTH", "lots"),
    ],
)
def test_invalid_setting_is_rejected_naming_the_setting(name, value):
    # When a setting is out of its bounds
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value})

    # Then the error names it
    assert name in str(caught.value)


def test_empty_values_fall_back_to_defaults():
    settings = Settings.from_env({"FAILURE_RETENTION_DAYS": "", "REBOUND_PREFIX": ""})
    assert settings.failure_retention_days == 7


def test_connection_string_connection_hides_the_key_in_repr():
    settings = Settings.from_env({"AzureWebJobsStorage": AZURITE})

    connection = settings.storage

    assert connection.connection_string == AZURITE
    assert not connection.uses_identity
    assert "a2V5" not in repr(connection)


def test_recovery_storage_defaults_to_the_main_account():
    settings = Settings.from_env({"AzureWebJobsStorage": AZURITE})

    assert settings.recovery_storage.name == "AzureWebJobsStorage"


def test_recovery_storage_uses_its_own_setting_when_present():
    settings = Settings.from_env({"AzureWebJobsStorage": AZURITE, "RecoveryStorage": AZURITE + "x"})

    assert settings.recovery_storage.name == "RecoveryStorage"


def test_identity_based_connection_reads_the_functions_conventions():
    # Given the identity-based form of a connection
    environ = {
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
        "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "1234",
    }

    # When it is resolved
    connection = Connection.from_environ("AzureWebJobsStorage", environ)

    # Then it carries the endpoints and the identity, no connection string
    assert connection.uses_identity
    assert connection.service_uris["queue"] == "https://acct.queue.core.windows.net"
    assert connection.credential == "managedidentity"
    assert connection.client_id == "1234"


def test_account_name_alone_gives_every_service_endpoint():
    connection = Connection.from_environ("Store", {"Store__accountName": "acct"})

    assert connection.service_uris == {
        "queue": "https://acct.queue.core.windows.net",
        "table": "https://acct.table.core.windows.net",
        "blob": "https://acct.blob.core.windows.net",
    }


def test_missing_connection_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="OtherStorage"):
        Connection.from_environ("OtherStorage", {})


def test_the_egress_defaults_are_the_secure_ones():
    # Given no egress settings at all
    policy = Settings.from_env({}).egress_policy()

    # Then private endpoints are refused and no app setting may be referenced by a header
    assert policy.allow_private is False
    assert policy.secret_settings == frozenset()


def test_endpoint_secret_settings_is_a_comma_separated_list_of_setting_names():
    settings = Settings.from_env(
        {"ENDPOINT_SECRET_SETTINGS": " ORDERS_TOKEN, erp_key ,,", "ALLOW_PRIVATE_ENDPOINTS": "true"}
    )

    assert settings.egress_policy().secret_settings == frozenset({"ORDERS_TOKEN", "erp_key"})
    assert settings.egress_policy().allow_private is True


@pytest.mark.parametrize("value", ["ORDERS-TOKEN", "A,B C", "%ORDERS_TOKEN%", "1TOKEN"])
def test_an_endpoint_secret_setting_that_is_no_setting_name_is_refused(value):
    with pytest.raises(ConfigError, match="ENDPOINT_SECRET_SETTINGS"):
        Settings.from_env({"ENDPOINT_SECRET_SETTINGS": value})
