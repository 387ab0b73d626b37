"""Turn pydantic validation errors into the API's field errors (`{"field", "message"}`)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import FieldError, RequestValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

#: Tags of the discriminated endpoint union; pydantic puts them in the location, users never wrote them.
_UNION_TAGS = frozenset({"http", "storage_queue", "service_bus"})


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


def parse_model(model: type[ModelT], data: Any, *, what: str = "body") -> ModelT:
    """Validate `data` as `model`, raising RequestValidationError (422) that names each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = field_errors(exc)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        raise RequestValidationError(f"invalid {what}: {summary}", fields) from exc
