"""Pickup sources (an integration's `source`) and the state of their runs.

A source says where an upstream system leaves messages that Rebound fetches: a blob container, an
SFTP directory, the upstream's own Storage queue or Service Bus entity, or an HTTP URL to poll.
Credentials are app setting names, never values (`connection`, `password_setting`,
`private_key_setting`, `%NAME%` in a header), as for endpoints.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, Field, field_validator, model_validator
from pydantic.config import JsonDict

from shared.config.fields import (
    HEADER_NAME_PATTERN,
    QUEUE_NAME_PATTERN,
    HeaderName,
    HeaderValue,
    SettingName,
    TaggedModel,
    is_valid_queue_name,
    kind_required,
)
from shared.values import Count, UtcDatetime

#: A source is looked at once a minute unless its config says otherwise (never below MIN_PICKUP_INTERVAL_S).
DEFAULT_INTERVAL_S = 60
MAX_INTERVAL_S = 86_400
DEFAULT_MAX_PER_RUN = 100
MAX_PER_RUN = 1000

#: Text that goes into a connection or a path: anything but control characters.
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]+$"
#: A host name (letters, digits, hyphens, dots) or an IPv4/IPv6 address without brackets.
HOST_PATTERN = r"^([A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?$|^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"
#: What an SFTP server's key is pinned with: its SHA256 fingerprint as `ssh-keygen -l` prints it, or the
#: public key itself as in known_hosts or a .pub file (`ssh-ed25519 AAAA... [comment]`).
HOST_KEY_PATTERN = r"^(SHA256:[A-Za-z0-9+/]{43}=?|[A-Za-z0-9@._-]+ [A-Za-z0-9+/]+={0,2}( [^\x00-\x1f\x7f]*)?)$"
_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
#: A Service Bus queue, or a topic's subscription.
ENTITY_PATTERN = r"^[^/\x00-\x1f\x7f]{1,260}(/subscriptions/[^/\x00-\x1f\x7f]{1,50})?$"


class _SourceModel(TaggedModel):
    interval_seconds: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_INTERVAL_S,
            description="seconds between runs; at least MIN_PICKUP_INTERVAL_S (a setting, 60 by default)",
        ),
    ] = DEFAULT_INTERVAL_S
    max_per_run: Annotated[int, Field(ge=1, le=MAX_PER_RUN, description="most items one run takes")] = (
        DEFAULT_MAX_PER_RUN
    )
    enabled: bool = True


def _valid_storage_name(value: str) -> str:
    if not is_valid_queue_name(value):
        raise ValueError("must be 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric")
    return value


class BlobSource(_SourceModel):
    """Blobs under `prefix` in a container; removed after each is enqueued, or moved under `move_to`."""

    kind: Literal["blob"] = "blob"
    connection: SettingName
    # Container names follow the queue-name rule; checked below (no look-ahead in pydantic's patterns).
    container: Annotated[str, Field(json_schema_extra={"pattern": QUEUE_NAME_PATTERN})]
    prefix: Annotated[str, Field(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    after: Literal["delete", "move"] = "delete"
    move_to: Annotated[
        str, Field(min_length=1, max_length=512, pattern=_NO_CONTROLS, description="with `after: move`: a name prefix")
    ] = "processed/"

    @field_validator("container")
    @classmethod
    def _valid_container(cls, value: str) -> str:
        return _valid_storage_name(value)

    @model_validator(mode="after")
    def _move_target_outside_the_prefix(self) -> Self:
        if self.after == "move" and self.prefix.startswith(self.move_to):
            raise ValueError("move_to must not contain the prefix: every blob picked would already be moved")
        return self


def _host_key_schema(schema: JsonDict) -> None:
    kind_required(schema)
    # At least one credential, given as a string (null is "not given").
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("password_setting", "private_key_setting")
    ]


class SftpSource(_SourceModel):
    """Files matching `pattern` in directory `path` of an SFTP server whose host key is pinned."""

    model_config = {**_SourceModel.model_config, "json_schema_extra": _host_key_schema}

    kind: Literal["sftp"] = "sftp"
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=HOST_PATTERN)]
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: Annotated[str, Field(min_length=1, max_length=256, pattern=_NO_CONTROLS)]
    password_setting: SettingName | None = Field(
        default=None, description="the app setting that holds the password (listed in ENDPOINT_SECRET_SETTINGS)"
    )
    private_key_setting: SettingName | None = Field(
        default=None,
        description="the app setting that holds an unencrypted OpenSSH private key "
        "(listed in ENDPOINT_SECRET_SETTINGS)",
    )
    host_key: Annotated[
        str,
        Field(
            max_length=16_384,
            pattern=HOST_KEY_PATTERN,
            description="required, never trusted on first use: the server's public key (`ssh-ed25519 AAAA...`) "
            "or its SHA256 fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints it)",
        ),
    ]
    path: Annotated[str, Field(min_length=1, max_length=1024, pattern=_NO_CONTROLS)] = "/"
    pattern: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^/\x00-\x1f\x7f]+$")] = "*"
    after: Literal["delete", "move"] = "delete"
    move_to: Annotated[
        str, Field(min_length=1, max_length=1024, pattern=_NO_CONTROLS, description="with `after: move`: a directory")
    ] = "/archive"

    @field_validator("host_key")
    @classmethod
    def _readable_host_key(cls, value: str) -> str:
        if _FINGERPRINT.match(value):
            return value
        problem = public_key_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _credential_and_distinct_archive(self) -> Self:
        if self.password_setting is None and self.private_key_setting is None:
            raise ValueError("give password_setting or private_key_setting (the name of an app setting)")
        if self.after == "move" and self.move_to.rstrip("/") == self.path.rstrip("/"):
            raise ValueError("move_to must be another directory than path")
        return self

    def matches(self, filename: str) -> bool:
        return fnmatch.fnmatchcase(filename, self.pattern)


def public_key_problem(text: str) -> str | None:
    """Why `text` is not an OpenSSH public key line, or None when it is one."""
    parts = text.split()
    if len(parts) < 2:
        return "must be a public key (`ssh-ed25519 AAAA...`) or a SHA256 fingerprint (`SHA256:...`)"
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return "the public key's second part is not base64"
    # The key blob starts with its own type name (RFC 4253 section 6.6); the line's first word must agree.
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        return f"the public key's data is not a {parts[0][:40]} key"
    return None


class StorageQueueSource(_SourceModel):
    """An upstream's own Storage queue, on any account the connection setting reaches."""

    kind: Literal["storage_queue"] = "storage_queue"
    connection: SettingName
    queue: Annotated[str, Field(json_schema_extra={"pattern": QUEUE_NAME_PATTERN})]

    @field_validator("queue")
    @classmethod
    def _valid_queue(cls, value: str) -> str:
        return _valid_storage_name(value)


class ServiceBusSource(_SourceModel):
    """A Service Bus queue (`orders`) or a topic's subscription (`orders/subscriptions/rebound`), peek-lock."""

    kind: Literal["service_bus"] = "service_bus"
    connection: SettingName
    entity: Annotated[str, Field(min_length=1, max_length=320, pattern=ENTITY_PATTERN)]

    @property
    def topic_subscription(self) -> tuple[str, str] | None:
        topic, separator, subscription = self.entity.partition("/subscriptions/")
        return (topic, subscription) if separator else None


class HttpPollSource(_SourceModel):
    """One message per 200 answer, nothing on 204; the same egress rules as HTTP endpoints."""

    kind: Literal["http_poll"] = "http_poll"
    url: Annotated[AnyHttpUrl, Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})]
    method: Literal["GET", "POST"] = "GET"
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict,
        description="sent with every poll; `%NAME%` in a value is replaced by app setting NAME, "
        "which must be listed in ENDPOINT_SECRET_SETTINGS",
        json_schema_extra={"propertyNames": {"pattern": HEADER_NAME_PATTERN}},
    )
    timeout_s: Annotated[float, Field(gt=0, le=230)] = 30.0


Source = Annotated[
    BlobSource | SftpSource | StorageQueueSource | ServiceBusSource | HttpPollSource, Field(discriminator="kind")
]
#: Tags of the source union: pydantic puts them in an error's location, users never wrote them.
SOURCE_KINDS = ("blob", "sftp", "storage_queue", "service_bus", "http_poll")


# --- the state of a source's runs ----------------------------------------------------------------


class PickupOutcome(StrEnum):
    #: The run went through; `picked_total` grew by what it took (nothing, when nothing waited).
    OK = "ok"
    #: Something failed: `last_error` says what. Items that could not be enqueued stayed at the source.
    FAILED = "failed"
    #: Skipped: `inbound` was deeper than MAX_INBOUND_DEPTH (backpressure); not counted as a failure.
    DEFERRED = "deferred"


class PickupState(BaseModel):
    """What the `pickups` store keeps per integration with a source: the last run and the lease."""

    last_run_at: UtcDatetime | None = None
    last_outcome: PickupOutcome | None = None
    consecutive_failures: Count = 0
    picked_total: Count = 0
    last_error: str | None = None
    next_run_at: UtcDatetime | None = None
    #: Set by "run now"; cleared by the run that honours it.
    run_requested: bool = False
    #: Who runs the source now, and until when: a holder that crashed loses it when it lapses.
    lease_owner: str | None = None
    lease_until: UtcDatetime | None = None


class PickupStatus(BaseModel):
    """GET /api/integrations/{integration}/pickup."""

    integration: str
    kind: str
    #: Where the source reads, without credentials (`sftp rebound@sftp.example:22/out/*.xml`).
    target: str
    enabled: bool
    interval_seconds: int
    last_run_at: UtcDatetime | None
    last_outcome: PickupOutcome | None
    consecutive_failures: Count
    picked_total: Count
    last_error: str | None
    next_run_at: UtcDatetime | None
    #: A run holds the source's lease right now.
    running: bool
    #: "Pick up now" was asked for and has not run yet.
    run_requested: bool


def describe(source: Any) -> str:
    """Where a source reads, without credentials: for logs, failure reasons and the portal."""
    if isinstance(source, BlobSource):
        return f"blob {source.connection}/{source.container}/{source.prefix}"
    if isinstance(source, SftpSource):
        return f"sftp {source.username}@{source.host}:{source.port}{_slash(source.path)}{source.pattern}"
    if isinstance(source, StorageQueueSource):
        return f"storage_queue {source.connection}/{source.queue}"
    if isinstance(source, ServiceBusSource):
        return f"service_bus {source.connection}/{source.entity}"
    if isinstance(source, HttpPollSource):
        # No userinfo, no query: either may hold a secret.
        parts = urlsplit(str(source.url))
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        port = f":{parts.port}" if parts.port is not None else ""
        return f"http_poll {source.method} {parts.scheme}://{host}{port}{parts.path}"
    return type(source).__name__


def _slash(path: str) -> str:
    return path if path.endswith("/") else f"{path}/"
