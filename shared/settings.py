"""The one settings object, built from the environment (Functions app settings / local.settings.json).

Names follow the Functions conventions: connection settings are named by setting name
(`AzureWebJobsStorage`, `RecoveryStorage`, anything an endpoint's `connection` names) and
may be a connection string (Azurite, or keys) or identity-based
(`<name>__queueServiceUri`, `__tableServiceUri`, `__blobServiceUri`, `__accountName`,
`__credential`, `__clientId`, `__fullyQualifiedNamespace`). Units are in the names.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.auth import AuthMode
from shared.egress import EgressPolicy
from shared.errors import ConfigError
from shared.messages.shards import MAX_INBOUND_SHARDS

#: Failures are kept this long before the retention timer purges them.
DEFAULT_FAILURE_RETENTION_DAYS = 7
#: Audit entries are kept this long (a year: what reviews of who-did-what usually look back on).
DEFAULT_AUDIT_RETENTION_DAYS = 365
#: The product spec's endpoint-retry window: every immediate retry fits inside one minute.
MAX_ENDPOINT_RETRY_WINDOW_S = 60.0
#: Above this body size ingest answers 413.
DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024
#: Bulk producers (jobs, sweeps) pause while `inbound` is deeper than this (DESIGN.md section 10).
DEFAULT_MAX_INBOUND_DEPTH = 1000

#: Pickup sources are looked at no more often than this by default (MIN_PICKUP_INTERVAL_S).
DEFAULT_MIN_PICKUP_INTERVAL_S = 60
DEFAULT_PICKUP_DEDUP_DAYS = 5

STORAGE_SETTING = "AzureWebJobsStorage"
RECOVERY_STORAGE_SETTING = "RecoveryStorage"

_PREFIX_PATTERN = re.compile(r"^([a-z][a-z0-9]{0,19})?$")
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def inbound_shards_from_environ(environ: Mapping[str, str]) -> int:
    """INBOUND_SHARDS as the app reads it at import, to register one queue trigger per shard. Never
    raises (an import error fails worker indexing and no function would load): a value that is not
    1..16 registers shard 0 only, and the settings object rejects it on first use, loudly."""
    value = environ.get("INBOUND_SHARDS", "").strip()
    try:
        shards = int(value) if value else 1
    except ValueError:
        return 1
    return shards if 1 <= shards <= MAX_INBOUND_SHARDS else 1


class AlertEmailBackend(StrEnum):
    OFF = "off"
    SMTP = "smtp"
    ACS = "acs"


class RecoveryBackend(StrEnum):
    STORAGE = "storage"
    SERVICE_BUS = "servicebus"


class Connection:
    """A resolved connection setting: either a connection string or identity-based endpoints.

    The repr never shows the connection string (it holds the account key).
    """

    def __init__(
        self,
        name: str,
        *,
        connection_string: str | None = None,
        service_uris: Mapping[str, str] | None = None,
        credential: str | None = None,
        client_id: str | None = None,
        fully_qualified_namespace: str | None = None,
    ) -> None:
        self.name = name
        self.connection_string = connection_string
        self.service_uris: dict[str, str] = dict(service_uris or {})
        self.credential = credential
        self.client_id = client_id
        self.fully_qualified_namespace = fully_qualified_namespace

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def __repr__(self) -> str:
        kind = "identity" if self.uses_identity else "connection-string"
        return f"Connection(name={self.name!r}, kind={kind}, service_uris={self.service_uris!r})"

    @classmethod
    def from_environ(cls, name: str, environ: Mapping[str, str]) -> Connection:
        value = environ.get(name, "").strip()
        if value:
            return cls(name, connection_string=value)
        part = {key[len(name) + 2 :]: v for key, v in environ.items() if key.startswith(f"{name}__") and v.strip()}
        account = part.get("accountName")
        uris: dict[str, str] = {}
        for service in ("queue", "table", "blob"):
            uri = part.get(f"{service}ServiceUri") or (service == "blob" and part.get("serviceUri")) or None
            if uri is None and account:
                uri = f"https://{account}.{service}.core.windows.net"
            if uri:
                uris[service] = uri
        namespace = part.get("fullyQualifiedNamespace")
        if not uris and not namespace:
            raise ConfigError(
                f"connection setting {name!r} is not set: give a connection string, "
                f"or {name}__queueServiceUri/__tableServiceUri/__blobServiceUri (or __accountName), "
                f"or {name}__fullyQualifiedNamespace for Service Bus"
            )
        return cls(
            name,
            service_uris=uris,
            credential=part.get("credential"),
            client_id=part.get("clientId"),
            fully_qualified_namespace=namespace,
        )


class Settings(BaseSettings):
    """Every app setting Rebound reads, validated once. Build with `Settings.from_env()`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    prefix: str = Field(default="", validation_alias="REBOUND_PREFIX")

    failure_retention_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=DEFAULT_FAILURE_RETENTION_DAYS, validation_alias="FAILURE_RETENTION_DAYS"
    )
    retention_schedule: str = Field(default="0 17 * * * *", validation_alias="RETENTION_SCHEDULE")
    audit_retention_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=DEFAULT_AUDIT_RETENTION_DAYS, validation_alias="AUDIT_RETENTION_DAYS"
    )

    endpoint_retry_window_s: Annotated[float, Field(ge=0, le=MAX_ENDPOINT_RETRY_WINDOW_S)] = Field(
        default=MAX_ENDPOINT_RETRY_WINDOW_S, validation_alias="ENDPOINT_RETRY_WINDOW_S"
    )
    endpoint_retry_max_attempts: Annotated[int, Field(ge=1, le=10)] = Field(
        default=4, validation_alias="ENDPOINT_RETRY_MAX_ATTEMPTS"
    )
    endpoint_retry_base_delay_s: Annotated[float, Field(ge=0, le=30)] = Field(
        default=2.0, validation_alias="ENDPOINT_RETRY_BASE_DELAY_S"
    )

    max_message_bytes: Annotated[int, Field(ge=1024, le=100 * 1024 * 1024)] = Field(
        default=DEFAULT_MAX_MESSAGE_BYTES, validation_alias="MAX_MESSAGE_BYTES"
    )
    max_inbound_depth: Annotated[int, Field(ge=1)] = Field(
        default=DEFAULT_MAX_INBOUND_DEPTH, validation_alias="MAX_INBOUND_DEPTH"
    )
    #: How many queues the engine reads: `inbound` and `inbound-1` … (docs/scaling.md); the triggers are
    #: registered from it at import, so a change needs a restart (on Azure, changing a setting restarts).
    inbound_shards: Annotated[int, Field(ge=1, le=MAX_INBOUND_SHARDS)] = Field(
        default=1, validation_alias="INBOUND_SHARDS"
    )
    storage_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(default=10.0, validation_alias="STORAGE_TIMEOUT_S")

    recovery_backend: RecoveryBackend = Field(default=RecoveryBackend.STORAGE, validation_alias="RECOVERY_BACKEND")
    recovery_service_bus_connection: str = Field(
        default="ServiceBusConnection", validation_alias="RECOVERY_SERVICE_BUS_CONNECTION"
    )
    recovery_service_bus_queue: str = Field(default="recovery", validation_alias="RECOVERY_SERVICE_BUS_QUEUE")
    recovery_park_delay_s: Annotated[int, Field(ge=0, le=86_400)] = Field(
        default=30, validation_alias="RECOVERY_PARK_DELAY_S"
    )
    recovery_schedule: str = Field(default="0 */5 * * * *", validation_alias="RECOVERY_SCHEDULE")
    recovery_max_reinserts: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3, validation_alias="RECOVERY_MAX_REINSERTS"
    )
    recovery_batch_size: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=500, validation_alias="RECOVERY_BATCH_SIZE"
    )

    job_rate_limit_per_s: Annotated[float, Field(gt=0, le=10_000)] = Field(
        default=50.0, validation_alias="JOB_RATE_LIMIT_PER_S"
    )
    job_page_size: Annotated[int, Field(ge=1, le=1000)] = Field(default=100, validation_alias="JOB_PAGE_SIZE")

    #: Set in Azure (Bicep); empty locally, where telemetry stays a no-op.
    applicationinsights_connection_string: SecretStr | None = Field(
        default=None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    #: The window GET /api/metrics reports besides "since start" (the default error window).
    metrics_window_minutes: Annotated[int, Field(ge=1, le=60)] = Field(
        default=3, validation_alias="METRICS_WINDOW_MINUTES"
    )

    #: App settings an endpoint header may reference as `%NAME%` (comma-separated); no others ever leave.
    endpoint_secret_settings: frozenset[str] = Field(default=frozenset(), validation_alias="ENDPOINT_SECRET_SETTINGS")
    #: Endpoints on loopback, private, link-local, unique-local, CGNAT and other non-public addresses
    #: are refused unless this is true (the local demo delivers to 127.0.0.1). Metadata addresses never.
    allow_private_endpoints: bool = Field(default=False, validation_alias="ALLOW_PRIVATE_ENDPOINTS")
    #: Who may call the portal/API (shared.auth): `entra` (Easy Auth + Entra ID app roles; the secure
    #: default), `dev` (devhost plays Easy Auth), `key` (function keys, one key opens everything).
    auth_mode: AuthMode = Field(default=AuthMode.ENTRA, validation_alias="AUTH_MODE")

    #: The shortest `source.interval_seconds` a config may ask for (pickup, issue 16).
    min_pickup_interval_s: Annotated[int, Field(ge=1, le=86_400)] = Field(
        default=DEFAULT_MIN_PICKUP_INTERVAL_S, validation_alias="MIN_PICKUP_INTERVAL_S"
    )
    #: NCRONTAB of the timer that runs the sources that are due.
    pickup_schedule: str = Field(default="*/15 * * * * *", validation_alias="PICKUP_SCHEDULE")
    #: An item picked within this many days is not ingested again (e.g. when its removal failed).
    pickup_dedup_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=DEFAULT_PICKUP_DEDUP_DAYS, validation_alias="PICKUP_DEDUP_DAYS"
    )
    #: After this many failed runs in a row a `pickup` failure is recorded, and counting starts over.
    pickup_max_consecutive_failures: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5, validation_alias="PICKUP_MAX_CONSECUTIVE_FAILURES"
    )

    #: How old an instance's view of an integration's control state (paused, breaker) may get; a pause
    #: answers after this long, when every instance honours it (issue 18).
    control_refresh_s: Annotated[float, Field(ge=0.1, le=60)] = Field(default=2.0, validation_alias="CONTROL_REFRESH_S")
    #: NCRONTAB of the control timer: breakers whose cooldown is over probe, stalled drains start again.
    control_schedule: str = Field(default="*/10 * * * * *", validation_alias="CONTROL_SCHEDULE")

    #: NCRONTAB of the alert timer: every rule is evaluated, failed notices are sent again (issue 18).
    alert_schedule: str = Field(default="0 * * * * *", validation_alias="ALERT_SCHEDULE")
    #: How email alerts go out: `off`, `smtp` (ALERT_SMTP_HOST/PORT, locally), `acs` (Azure Communication Services).
    alert_email_backend: AlertEmailBackend = Field(
        default=AlertEmailBackend.OFF, validation_alias="ALERT_EMAIL_BACKEND"
    )
    #: The From address (with ACS: a sender address of the connected, verified domain).
    alert_email_sender: str = Field(default="", validation_alias="ALERT_EMAIL_SENDER")
    alert_smtp_host: str = Field(default="127.0.0.1", validation_alias="ALERT_SMTP_HOST")
    alert_smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(default=25, validation_alias="ALERT_SMTP_PORT")
    #: `https://<resource>.communication.azure.com`; the app's identity needs a role on it (infra/ grants it).
    alert_acs_endpoint: str = Field(default="", validation_alias="ALERT_ACS_ENDPOINT")
    #: The user-assigned identity ACS is called with (empty: the default credential chain).
    alert_acs_client_id: str = Field(default="", validation_alias="ALERT_ACS_CLIENT_ID")
    #: Where alerts link to; empty: `https://<WEBSITE_HOSTNAME>/api/portal` in Azure, no link locally.
    portal_url: str = Field(default="", validation_alias="PORTAL_URL")

    _environ: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("endpoint_secret_settings", mode="before")
    @classmethod
    def _comma_separated_setting_names(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        names = [name.strip() for name in value.split(",") if name.strip()]
        invalid = [name for name in names if not _SETTING_NAME.fullmatch(name)]
        if invalid:
            raise ValueError(f"not app setting names: {', '.join(invalid)}")
        return frozenset(names)

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_valid_name_start(cls, value: str) -> str:
        if not _PREFIX_PATTERN.match(value):
            raise ValueError("must be empty or up to 20 lowercase letters and digits, starting with a letter")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # from_env() passes the environment explicitly, so tests never read os.environ by accident.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {key: value for key, value in env.items() if value != ""}
        try:
            settings = cls(**values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise ConfigError(f"invalid settings: {problems}") from exc
        settings._environ = env
        return settings

    def egress_policy(self) -> EgressPolicy:
        """Where deliveries may go and which settings they may carry (shared.egress)."""
        return EgressPolicy(allow_private=self.allow_private_endpoints, secret_settings=self.endpoint_secret_settings)

    def app_setting(self, name: str) -> str | None:
        """Any app setting by name (an empty value counts as unset), e.g. for `%NAME%` references."""
        value = self._environ.get(name)
        return value if value else None

    def connection(self, name: str) -> Connection:
        """Resolve a connection setting by name (the Functions `connection` convention)."""
        if name == RECOVERY_STORAGE_SETTING and not self._has_connection(name):
            # Locally the recovery flow shares the main account; in Azure it is a second account.
            name = STORAGE_SETTING
        return Connection.from_environ(name, self._environ)

    def _has_connection(self, name: str) -> bool:
        return any(key == name or key.startswith(f"{name}__") for key, v in self._environ.items() if v.strip())

    def instance_name(self) -> str:
        """Which instance this is, as the message timeline names it: App Service's instance id (shortened),
        else host and process (locally, and under devhost)."""
        instance = self.app_setting("WEBSITE_INSTANCE_ID")
        return instance[:12] if instance else f"{socket.gethostname()}:{os.getpid()}"

    def portal_base_url(self) -> str | None:
        """The portal's address for links in alerts: PORTAL_URL, else the one App Service gives the app."""
        if self.portal_url:
            return self.portal_url.rstrip("/")
        host = self.app_setting("WEBSITE_HOSTNAME")
        return f"https://{host}/api/portal" if host else None

    @property
    def storage(self) -> Connection:
        return self.connection(STORAGE_SETTING)

    @property
    def recovery_storage(self) -> Connection:
        return self.connection(RECOVERY_STORAGE_SETTING)
