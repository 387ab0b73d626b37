"""HTTP route templates with ASP.NET Core semantics, as the Functions host uses them.

A template is a `/`-separated list of segments; each segment is a literal (`failures`)
or one parameter: `{name}`, `{name:int}` (constraints, chainable: `{n:int:min(1)}`),
`{name?}` (optional), `{name=default}`, `{*rest}` / `{**rest}` (catch-all, last only).
Literals compare case-insensitively. When several templates match a path, the most
specific wins, segment by segment: literal, then constrained parameter, then plain
parameter, then catch-all (ASP.NET's inbound route precedence). HTTP methods are checked
after the path: the most specific route that also allows the method handles the request,
and a path that matches only routes of other methods is a 405.

Pure code: no I/O, no aiohttp, so it is unit-tested directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import unquote

# RouteTemplateError is part of this module's face: functions.py and http_server.py take it from here with the routes.
from devhost.route_constraints import Constraint, RouteTemplateError

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Inbound precedence digits from ASP.NET Core's RoutePrecedence: lower is more specific.
_LITERAL_RANK = 1
_CONSTRAINED_RANK = 3
_PARAMETER_RANK = 4
_CATCH_ALL_RANK = 5


@dataclass(frozen=True)
class LiteralSegment:
    text: str

    @property
    def rank(self) -> int:
        return _LITERAL_RANK


@dataclass(frozen=True)
class ParameterSegment:
    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False

    @property
    def rank(self) -> int:
        if self.catch_all:
            return _CATCH_ALL_RANK
        return _CONSTRAINED_RANK if self.constraints else _PARAMETER_RANK

    @property
    def may_be_absent(self) -> bool:
        return self.optional or self.default is not None or self.catch_all

    def accepts(self, value: str) -> bool:
        return all(constraint.check(value) for constraint in self.constraints)


Segment = LiteralSegment | ParameterSegment


def _split_constraints(text: str) -> list[tuple[str, str | None]]:
    """`:int:range(1,5):regex(^a:b$)` → [("int", None), ("range", "1,5"), ("regex", "^a:b$")]."""
    constraints: list[tuple[str, str | None]] = []
    position = 0
    while position < len(text):
        if text[position] != ":":
            raise RouteTemplateError(f"malformed constraints {text!r}")
        end = position + 1
        while end < len(text) and text[end] not in ":(":
            end += 1
        name = text[position + 1 : end]
        if not name:
            raise RouteTemplateError(f"empty constraint name in {text!r}")
        argument: str | None = None
        if end < len(text) and text[end] == "(":
            depth, start = 0, end + 1
            while end < len(text):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
                end += 1
            if end >= len(text):
                raise RouteTemplateError(f"unclosed '(' in constraint {name!r}")
            argument = text[start:end]
            end += 1
        constraints.append((name, argument))
        position = end
    return constraints


def _parse_parameter(inner: str) -> ParameterSegment:
    catch_all = inner.startswith("*")
    body = inner.lstrip("*")
    optional = body.endswith("?")
    body = body.removesuffix("?")
    default: str | None = None
    name_end = len(body)
    for index, char in enumerate(body):
        if char in ":=":
            name_end = index
            break
    name, rest = body[:name_end], body[name_end:]
    # "=" after the last constraint's closing parenthesis starts the default value.
    depth = 0
    for index, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "=" and depth == 0:
            rest, default = rest[:index], rest[index + 1 :]
            break
    if not _NAME.match(name):
        raise RouteTemplateError(f"invalid parameter name {name!r}")
    if optional and default is not None:
        raise RouteTemplateError(f"parameter '{name}' cannot be both optional and have a default")
    if catch_all and optional:
        raise RouteTemplateError(f"catch-all parameter '{name}' cannot be marked optional (it already is)")
    constraints = tuple(Constraint.parse(c_name, argument) for c_name, argument in _split_constraints(rest))
    return ParameterSegment(name, constraints, optional, default, catch_all)


def _parse_segment(text: str) -> Segment:
    # "{{" and "}}" are escaped braces (e.g. inside a regex constraint), not parameter delimiters.
    if text.startswith("{") and text.endswith("}") and not text.startswith("{{"):
        inner = text[1:-1]
        unescaped = inner.replace("{{", "").replace("}}", "")
        if "{" in unescaped or "}" in unescaped:
            raise RouteTemplateError(
                f"segment {text!r} holds more than one parameter (a complex segment), which devhost does not support"
            )
        return _parse_parameter(inner.replace("{{", "{").replace("}}", "}"))
    unescaped = text.replace("{{", "").replace("}}", "")
    if "{" in unescaped or "}" in unescaped:
        raise RouteTemplateError(
            f"segment {text!r} mixes literal text and parameters (a complex segment), which devhost does not support"
        )
    if "?" in text:
        raise RouteTemplateError(f"literal segment {text!r} must not contain '?'")
    return LiteralSegment(text.replace("{{", "{").replace("}}", "}"))


@dataclass(frozen=True)
class RouteTemplate:
    text: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, text: str) -> RouteTemplate:
        trimmed = text.removeprefix("~").strip("/")
        parts = trimmed.split("/") if trimmed else []
        if any(part == "" for part in parts):
            raise RouteTemplateError(f"route {text!r} has an empty segment ('//')")
        try:
            segments = tuple(_parse_segment(part) for part in parts)
        except RouteTemplateError as error:
            raise RouteTemplateError(f"route {text!r}: {error}") from None
        cls._validate(text, segments)
        return cls(text, segments)

    @staticmethod
    def _validate(text: str, segments: Sequence[Segment]) -> None:
        names = [s.name.lower() for s in segments if isinstance(s, ParameterSegment)]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise RouteTemplateError(f"route {text!r} repeats parameter(s) {', '.join(duplicates)}")
        for index, segment in enumerate(segments):
            later = segments[index + 1 :]
            if not isinstance(segment, ParameterSegment):
                continue
            if segment.catch_all and later:
                raise RouteTemplateError(f"route {text!r}: catch-all '{segment.name}' must be the last segment")
            if segment.may_be_absent and not all(isinstance(s, ParameterSegment) and s.may_be_absent for s in later):
                raise RouteTemplateError(
                    f"route {text!r}: optional '{segment.name}' may only be followed by optional parameters"
                )

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(segment.rank for segment in self.segments)

    @property
    def shape(self) -> tuple[object, ...]:
        """Equal for templates that match exactly the same paths (used to find duplicates)."""
        return tuple(
            s.text.lower() if isinstance(s, LiteralSegment) else (s.constraints, s.may_be_absent, s.catch_all)
            for s in self.segments
        )

    def match(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Route values for already percent-decoded path segments, or None when the path does not match."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if isinstance(segment, ParameterSegment) and segment.catch_all:
                rest = "/".join(path_segments[index:])
                if rest:
                    if not segment.accepts(rest):
                        return None
                    values[segment.name] = rest
                elif segment.default is not None:
                    values[segment.name] = segment.default
                return values
            if index >= len(path_segments):
                return self._fill_absent(index, values)
            value = path_segments[index]
            if isinstance(segment, LiteralSegment):
                if value.lower() != segment.text.lower():
                    return None
            elif value == "" or not segment.accepts(value):
                return None
            else:
                values[segment.name] = value
        return values if len(path_segments) == len(self.segments) else None

    def _fill_absent(self, index: int, values: dict[str, str]) -> dict[str, str] | None:
        for segment in self.segments[index:]:
            if not isinstance(segment, ParameterSegment) or not segment.may_be_absent:
                return None
            if segment.default is not None:
                values[segment.name] = segment.default
        return values


def split_path(raw_path: str) -> list[str]:
    """Percent-encoded URL path → decoded segments; a trailing slash is ignored, as in ASP.NET."""
    trimmed = raw_path.strip("/")
    return [unquote(part) for part in trimmed.split("/")] if trimmed else []


@dataclass(frozen=True)
class Route(Generic[T]):
    template: RouteTemplate
    #: Upper-case method names, or None for every method.
    methods: frozenset[str] | None
    target: T

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    route: Route[T]
    values: dict[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    #: Methods some matching route would accept (for the Allow header); None means any.
    allowed: frozenset[str]


class RouteTable(Generic[T]):
    """Routes under one prefix (host.json `extensions.http.routePrefix`, "" for none)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix_segments = tuple(segment.lower() for segment in split_path(prefix))
        self._routes: list[Route[T]] = []

    def add(self, template: str | RouteTemplate, methods: Sequence[str] | None, target: T) -> Route[T]:
        parsed = RouteTemplate.parse(template) if isinstance(template, str) else template
        allowed = None if methods is None else frozenset(m.upper() for m in methods)
        route = Route(parsed, allowed, target)
        for existing in self._routes:
            overlap = existing.methods is None or allowed is None or bool(existing.methods & allowed)
            if existing.template.shape == parsed.shape and overlap:
                raise RouteTemplateError(
                    f"route {parsed.text!r} conflicts with {existing.template.text!r}: same paths and methods"
                )
        self._routes.append(route)
        # Stable sort: equally specific routes keep a deterministic order by template text.
        self._routes.sort(key=lambda r: (r.template.precedence, r.template.text.lower()))
        return route

    @property
    def routes(self) -> tuple[Route[T], ...]:
        return tuple(self._routes)

    def resolve(self, raw_path: str, method: str) -> RouteMatch[T] | MethodNotAllowed | None:
        """The route for a request: a match, a 405 (path known, method not), or None (404)."""
        segments = split_path(raw_path)
        prefix_length = len(self.prefix_segments)
        if tuple(s.lower() for s in segments[:prefix_length]) != self.prefix_segments:
            return None
        segments = segments[prefix_length:]
        allowed: set[str] = set()
        for route in self._routes:
            values = route.template.match(segments)
            if values is None:
                continue
            if route.allows(method):
                return RouteMatch(route, values)
            allowed |= route.methods or set()
        return MethodNotAllowed(frozenset(allowed)) if allowed else None
