"""Turn pydantic validation errors into the API's field errors (`{"field", "message"}`)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import FieldError, RequestValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Tags of the discriminated endpoint and source unions; pydantic puts them in the location, users never wrote them.
_UNION_TAGS = frozenset(
    {"http", "storage_queue", "service_bus", "blob", "sftp", "http_poll", "webhook", "teams", "email"}
)


def field_path(location: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for index, part in enumerate(location):
        if isinstance(part, str) and part in _UNION_TAGS and index > 0:
            continue
        if part == "[key]":
            # pydantic's marker for "the key itself is wrong": the path already names the key.
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part.rstrip("_"))
    return "".join(parts) or "body"


def field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        {"field": field_path(tuple(err["loc"])), "message": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors()
    ]


def _integral_floats_as_ints(data: Any) -> Any:
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {key: _integral_floats_as_ints(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_integral_floats_as_ints(value) for value in data]
    return data


def parse_model(model: type[ModelT], data: Any, *, what: str = "body") -> ModelT:
    """Validate JSON `data` as `model`, raising RequestValidationError (422) that names each bad field.

    Strictly, as JSON Schema (and so the OpenAPI document) reads the body: `"5"` is not a number,
    `4.0` not an integer, `"true"` or `1` not a boolean. Lax coercion would accept requests the
    contract calls invalid. Validated from JSON text so that enums, URLs and datetimes still come
    from their JSON strings (strict Python-mode validation would want Python objects). One JSON
    Schema rule strict mode lacks is restored first: `3.0` is the integer 3.
    """
    try:
        return model.model_validate_json(json.dumps(_integral_floats_as_ints(data)), strict=True)
    except ValidationError as exc:
        fields = field_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise RequestValidationError(f"invalid {what}: {summary}", fields) from exc
