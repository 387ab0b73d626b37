"""Route parameter constraints (`{id:int}`, `{n:range(1,5)}`, `{s:regex(...)}`) with ASP.NET Core semantics.

Each constraint parses once, when a template is registered, into a check on one route
value; a constraint the host would refuse raises `RouteTemplateError` then, not per request.
Pure code, unit-tested through devhost.routes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")
_NUMBER = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_ALPHA = re.compile(r"^[A-Za-z]+$")


class RouteTemplateError(ValueError):
    """A route template that the host would refuse to register."""


def _integer(value: str, bounds: tuple[int, int]) -> int | None:
    if not _INTEGER.match(value):
        return None
    number = int(value)
    return number if bounds[0] <= number <= bounds[1] else None


def _is_guid(value: str) -> bool:
    # .NET Guid.TryParse accepts the D, N, B and P formats.
    text = value.strip()
    if len(text) == 38 and (text[0], text[-1]) in {("{", "}"), ("(", ")")}:
        text = text[1:-1]
    if len(text) not in (32, 36) or (len(text) == 36 and [text[i] for i in (8, 13, 18, 23)] != ["-"] * 4):
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    return bool(_NUMBER.match(value))


def _is_file(value: str) -> bool:
    last = value.rsplit("/", 1)[-1]
    return "." in last.strip(".")


def _int_args(name: str, argument: str | None, count: tuple[int, ...]) -> list[int]:
    parts = [] if argument is None else [part.strip() for part in argument.split(",")]
    if len(parts) not in count or any(_integer(part, _INT64) is None for part in parts):
        expected = " or ".join(str(n) for n in count)
        raise RouteTemplateError(f"constraint '{name}' needs {expected} integer argument(s), got {argument!r}")
    return [int(part) for part in parts]


def _no_args(name: str, argument: str | None) -> None:
    if argument is not None:
        raise RouteTemplateError(f"constraint '{name}' takes no argument")


def _length_check(name: str, argument: str | None) -> Callable[[str], bool]:
    if name == "minlength":
        (low,) = _int_args(name, argument, (1,))
        return lambda v: len(v) >= low
    if name == "maxlength":
        (high,) = _int_args(name, argument, (1,))
        return lambda v: len(v) <= high
    bounds = _int_args(name, argument, (1, 2))
    low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    return lambda v: low <= len(v) <= high


def _value_check(name: str, argument: str | None) -> Callable[[str], bool]:
    def within(low: int, high: int) -> Callable[[str], bool]:
        def check(value: str) -> bool:
            number = _integer(value, _INT64)
            return number is not None and low <= number <= high

        return check

    if name == "min":
        (low,) = _int_args(name, argument, (1,))
        return within(low, _INT64[1])
    if name == "max":
        (high,) = _int_args(name, argument, (1,))
        return within(_INT64[0], high)
    low, high = _int_args(name, argument, (2,))
    return within(low, high)


def _regex_check(argument: str | None) -> Callable[[str], bool]:
    if not argument:
        raise RouteTemplateError("constraint 'regex' needs a pattern")
    try:
        # ASP.NET's regex constraint is unanchored and case-insensitive.
        pattern = re.compile(argument, re.IGNORECASE)
    except re.error as error:
        raise RouteTemplateError(f"constraint 'regex' has an invalid pattern {argument!r}: {error}") from error
    return lambda v: pattern.search(v) is not None


_SIMPLE_CHECKS: dict[str, Callable[[str], bool]] = {
    "int": lambda v: _integer(v, _INT32) is not None,
    "long": lambda v: _integer(v, _INT64) is not None,
    "bool": lambda v: v.strip().lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda v: bool(_ALPHA.match(v)),
    "decimal": _is_number,
    "double": _is_number,
    "float": _is_number,
    "datetime": _is_datetime,
    "required": lambda v: v != "",
    "file": _is_file,
    "nonfile": lambda v: not _is_file(v),
}

SUPPORTED_CONSTRAINTS = frozenset([*_SIMPLE_CHECKS, "minlength", "maxlength", "length", "min", "max", "range", "regex"])


@dataclass(frozen=True)
class Constraint:
    name: str
    argument: str | None
    check: Callable[[str], bool] = field(compare=False, repr=False)

    @classmethod
    def parse(cls, name: str, argument: str | None) -> Constraint:
        key = name.lower()
        if key in _SIMPLE_CHECKS:
            _no_args(key, argument)
            return cls(key, None, _SIMPLE_CHECKS[key])
        if key in ("minlength", "maxlength", "length"):
            return cls(key, argument, _length_check(key, argument))
        if key in ("min", "max", "range"):
            return cls(key, argument, _value_check(key, argument))
        if key == "regex":
            return cls(key, argument, _regex_check(argument))
        supported = ", ".join(sorted(SUPPORTED_CONSTRAINTS))
        raise RouteTemplateError(f"unknown route constraint '{name}' (supported: {supported})")
