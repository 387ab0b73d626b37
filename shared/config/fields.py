"""Field types the config's parts share: app setting names, queue names, HTTP header names and values.

Endpoints (shared/config/models.py) and pickup sources (shared/pickup/models.py) both use them,
so they live apart from either.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema
from pydantic.config import JsonDict

from shared.values import FrozenModel

SETTING_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUEUE_NAME_PATTERN = r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"
#: RFC 9110 field name: a token.
HEADER_NAME_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"
#: RFC 9110 field value: no control characters but horizontal tab (CR, LF and NUL would split or end
#: the request), written so that JSON Schema (ECMA) and Python read it alike.
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"

#: The name of an app setting (a connection, a secret): configs hold names, never values.
SettingName = Annotated[str, Field(pattern=SETTING_NAME_PATTERN, max_length=256)]


def is_valid_queue_name(name: str) -> bool:
    return re.fullmatch(QUEUE_NAME_PATTERN, name) is not None


def _valid_queue_name(value: str) -> str:
    if not is_valid_queue_name(value):
        raise ValueError("must be 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric")
    return value


#: A Storage queue name. The rule is checked by a validator (pydantic's patterns have no look-ahead);
#: the schema states it too.
QueueName = Annotated[str, AfterValidator(_valid_queue_name), Field(json_schema_extra={"pattern": QUEUE_NAME_PATTERN})]


def _valid_header_name(name: str) -> str:
    if not re.fullmatch(HEADER_NAME_PATTERN, name):
        raise ValueError("is not a valid header name: use letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 token)")
    return name


def _valid_header_value(value: str) -> str:
    if not re.fullmatch(HEADER_VALUE_PATTERN, value):
        raise ValueError("must not contain control characters such as CR, LF or NUL")
    return value


HeaderName = Annotated[str, AfterValidator(_valid_header_name)]
HeaderValue = Annotated[
    str,
    AfterValidator(_valid_header_value),
    WithJsonSchema({"type": "string", "pattern": HEADER_VALUE_PATTERN}),
]


def kind_required(schema: JsonDict) -> None:
    """`kind` chooses the variant of a tagged union (endpoint, source), so a request must name it.

    Code may leave the default (`HttpEndpoint(url=...)`); the JSON contract may not: without
    the tag the discriminated union cannot tell the variants apart.
    """
    required = schema.get("required")
    schema["required"] = ["kind", *(required if isinstance(required, list) else [])]


class TaggedModel(FrozenModel):
    """A variant of a tagged union: closed (unknown fields are refused) and `kind` required in JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=kind_required)
