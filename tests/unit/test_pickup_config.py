"""A pickup source in an integration config: what PUT accepts and refuses, and the status and run-now use cases."""

from __future__ import annotations

from collections.abc import Mapping

import asyncssh
import pytest

from shared.audit.service import AuditTrail
from shared.config.service import IntegrationConfigs
from shared.egress import EgressPolicy
from shared.errors import IntegrationNotFound, RequestValidationError, SourceDisabled, SourceNotFound
from shared.pickup.items import guess_content_type, header_value
from shared.pickup.models import describe
from shared.pickup.service import PickupService
from shared.pickup.validation import SourceRules
from shared.services import own_names
from shared.settings import Settings
from tests.support.auth import TESTER
from tests.twins.audit import MemoryAuditStore
from tests.twins.pickups import DictIntegrations, MemoryPickupStates

ED25519 = asyncssh.generate_private_key("ssh-ed25519")
HOST_KEY = ED25519.export_public_key("openssh").decode().strip()
FINGERPRINT = ED25519.get_fingerprint("sha256")
ENDPOINT = {"kind": "http", "url": "https://shop.example/in"}


def service(
    *, allow_private: bool = False, secrets: frozenset[str] = frozenset(), min_s: int = 60
) -> IntegrationConfigs:
    settings = Settings.from_env({})
    rules = SourceRules(min_interval_s=min_s, own=own_names(settings))
    return IntegrationConfigs(
        DictIntegrations(),
        egress=EgressPolicy(allow_private=allow_private, secret_settings=secrets),
        audit=AuditTrail(MemoryAuditStore(), retention_days=365),
        source_rules=rules,
    )


def sftp(**fields: object) -> dict[str, object]:
    return {"kind": "sftp", "host": "sftp.example", "username": "rebound", "password_setting": "SFTP_PASSWORD",
            "host_key": HOST_KEY, **fields}  # fmt: skip


async def save(configs: IntegrationConfigs, source: Mapping[str, object]) -> None:
    await configs.save("orders", {"name": "Orders", "endpoint": ENDPOINT, "source": source}, actor=TESTER)


async def refused_fields(configs: IntegrationConfigs, source: Mapping[str, object]) -> dict[str, str]:
    with pytest.raises(RequestValidationError) as caught:
        await save(configs, source)
    return {f["field"]: f["message"] for f in caught.value.fields}


@pytest.mark.parametrize(
    "source",
    [
        {"kind": "blob", "connection": "Upstream", "container": "drop", "prefix": "in/", "after": "move"},
        {"kind": "storage_queue", "connection": "Upstream", "queue": "orders-out"},
        {"kind": "service_bus", "connection": "Bus", "entity": "orders/subscriptions/rebound"},
        {"kind": "http_poll", "url": "https://erp.example/next", "headers": {"Accept": "application/xml"}},
        sftp(password_setting=None, private_key_setting="SFTP_KEY", host_key=FINGERPRINT, after="move"),
    ],
    ids=["blob", "storage_queue", "service_bus", "http_poll", "sftp"],
)
async def test_every_kind_of_source_is_accepted_with_its_defaults(source):
    configs = service(secrets=frozenset({"SFTP_KEY"}))

    config, created = await configs.save(
        "orders", {"name": "Orders", "endpoint": ENDPOINT, "source": source}, actor=TESTER
    )

    assert created and config.source is not None
    assert (config.source.interval_seconds, config.source.max_per_run, config.source.enabled) == (60, 100, True)


async def test_an_interval_below_min_pickup_interval_is_refused_naming_the_field():
    fields = await refused_fields(
        service(min_s=60), {"kind": "blob", "connection": "Up", "container": "drop", "interval_seconds": 5}
    )

    assert fields == {"source.interval_seconds": "must be at least 60 (MIN_PICKUP_INTERVAL_S)"}


async def test_sftp_without_a_host_key_is_refused():
    source = sftp()
    del source["host_key"]

    fields = await refused_fields(service(secrets=frozenset({"SFTP_PASSWORD"})), source)

    assert "source.host_key" in fields


@pytest.mark.parametrize("host_key", ["ssh-ed25519 AAAA", "SHA256:short", "trust-on-first-use", ""])
async def test_a_host_key_that_is_neither_a_key_nor_a_fingerprint_is_refused(host_key):
    fields = await refused_fields(service(secrets=frozenset({"SFTP_PASSWORD"})), sftp(host_key=host_key))

    assert "source.host_key" in fields


async def test_sftp_needs_a_credential_setting():
    fields = await refused_fields(service(), sftp(password_setting=None))

    assert "source" in fields and "password_setting or private_key_setting" in fields["source"]


async def test_an_sftp_password_setting_must_be_allowlisted_like_a_header_secret():
    fields = await refused_fields(service(secrets=frozenset()), sftp())

    assert "ENDPOINT_SECRET_SETTINGS" in fields["source.password_setting"]


async def test_sftp_to_a_private_address_is_refused_unless_allowed():
    secrets = frozenset({"SFTP_PASSWORD"})
    fields = await refused_fields(service(secrets=secrets), sftp(host="10.1.2.3"))

    assert "RFC 1918" in fields["source.host"]
    await save(service(secrets=secrets, allow_private=True), sftp(host="10.1.2.3"))


async def test_http_poll_follows_the_endpoint_rules_for_addresses_and_secrets():
    source = {"kind": "http_poll", "url": "http://169.254.169.254/latest", "headers": {"Authorization": "%TOKEN%"}}

    fields = await refused_fields(service(allow_private=True), source)

    assert "metadata" in fields["source.url"]
    assert "ENDPOINT_SECRET_SETTINGS" in fields["source.headers.Authorization"]


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ({"kind": "storage_queue", "connection": "AzureWebJobsStorage", "queue": "inbound"}, "source.queue"),
        ({"kind": "blob", "connection": "AzureWebJobsStorage", "container": "payloads"}, "source.container"),
        ({"kind": "storage_queue", "connection": "RecoveryStorage", "queue": "recovery"}, "source.queue"),
    ],
)
async def test_a_source_may_not_drain_reboundss_own_queues_or_containers(source, field):
    fields = await refused_fields(service(), source)

    assert "Rebound's own" in fields[field]


async def test_a_blob_move_target_inside_the_prefix_is_refused():
    fields = await refused_fields(
        service(),
        {"kind": "blob", "connection": "Up", "container": "drop", "prefix": "in/x", "after": "move", "move_to": "in/"},
    )

    assert "move_to" in fields["source"]


def test_a_description_of_a_source_never_shows_credentials():
    from shared.pickup.models import HttpPollSource

    source = HttpPollSource.model_validate({"url": "https://user:secret@erp.example/next?token=abc"})

    assert describe(source) == "http_poll GET https://erp.example/next"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("order.xml", b"", "text/xml"),
        ("order.json", b"", "application/json"),
        ("report.CSV", b"", "text/csv"),
        ("blob-without-extension", b"", "application/octet-stream"),
        (None, b' {"a": 1}', "application/json"),
        (None, b"<a/>", "application/xml"),
        (None, b"hello", "text/plain; charset=utf-8"),
        (None, b"\xff\xfe", "application/octet-stream"),
    ],
)
def test_the_content_type_is_guessed_from_the_name_or_else_the_text(name, data, expected):
    assert guess_content_type(name, data) == expected


def test_a_file_name_with_a_line_break_travels_percent_encoded_in_its_header():
    assert header_value("a\nb.xml") == "a%0Ab.xml"
    assert header_value("orders 2024/ä.xml") == "orders 2024/ä.xml"


# --- status and run-now ---------------------------------------------------------------------------


class _NoRuns:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def run_source(self, config, *, requested=False):
        self.started.append(config.id)
        return None


async def _pickup(source: dict[str, object] | None) -> tuple[PickupService, _NoRuns, MemoryPickupStates]:
    configs = service(min_s=1)
    body = {"name": "Orders", "endpoint": ENDPOINT, **({"source": source} if source else {})}
    await configs.save("orders", body, actor=TESTER)
    states, runner = MemoryPickupStates(), _NoRuns()
    audit = AuditTrail(MemoryAuditStore(), retention_days=365)
    pickup = PickupService(integrations=configs._store, states=states, runner=runner, audit=audit)  # type: ignore[arg-type]
    return pickup, runner, states


async def test_run_now_marks_the_source_as_asked_for_and_starts_a_run():
    pickup, runner, states = await _pickup({"kind": "blob", "connection": "Up", "container": "drop"})

    status = await pickup.run_now("orders", actor=TESTER)
    await pickup.wait_for_runs()

    assert status.run_requested and status.kind == "blob" and status.last_run_at is None
    assert runner.started == ["orders"]
    assert states.state("orders").run_requested


async def test_run_now_on_a_disabled_source_is_a_conflict():
    pickup, runner, _ = await _pickup({"kind": "blob", "connection": "Up", "container": "drop", "enabled": False})

    with pytest.raises(SourceDisabled):
        await pickup.run_now("orders", actor=TESTER)
    assert runner.started == []


async def test_status_of_an_integration_without_a_source_or_without_a_config_is_not_found():
    pickup, _, _ = await _pickup(None)

    with pytest.raises(SourceNotFound):
        await pickup.status("orders")
    with pytest.raises(IntegrationNotFound):
        await pickup.status("nope")
