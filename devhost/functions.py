"""Import the app and turn its functions into what devhost runs, validated as the worker would.

Enumeration goes through the library's own API (`app.get_functions()`), so route
defaults, auth-level inheritance and duplicate-name checks are exactly the library's.
On top of that devhost checks what the Python worker checks when it loads functions
(every binding has a parameter and every parameter a binding) and what the host checks
when it creates listeners (settings behind `%NAME%` and connections exist, queue names
are valid, schedules parse), so a mistake fails start-up instead of the first invocation.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol

from azure.functions import AuthLevel

from devhost.app_settings import resolve_expression
from devhost.errors import StartupError
from devhost.routes import RouteTemplate, RouteTemplateError
from devhost.schedules import Schedule, parse_schedule

logger = logging.getLogger(__name__)

APP_MODULE = "function_app"
APP_ATTRIBUTE = "app"
DEFAULT_CONNECTION = "AzureWebJobsStorage"
#: The binding name of an HTTP function's return value.
RETURN_BINDING = "$return"
#: The worker passes func.Context to a parameter of this name; devhost does not implement Context.
CONTEXT_PARAMETER = "context"
#: The library's setting name for `@app.retry(...)`.
RETRY_POLICY_SETTING = "retry_policy"

_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")


class TriggerType(StrEnum):
    HTTP = "httpTrigger"
    QUEUE = "queueTrigger"
    TIMER = "timerTrigger"


class FunctionLike(Protocol):
    """The part of azure.functions' Function that devhost reads."""

    def get_function_name(self) -> str | None: ...

    def get_trigger(self) -> Any: ...

    def get_bindings(self) -> Sequence[Any]: ...

    def get_user_function(self) -> Callable[..., Any]: ...

    def get_setting(self, setting_name: str) -> Any: ...


class AppLike(Protocol):
    def get_functions(self) -> Sequence[FunctionLike]: ...


@dataclass(frozen=True)
class FunctionEntry:
    """What every trigger kind shares: the name, the user's callable and its trigger argument."""

    name: str
    user_function: Callable[..., Any] = field(repr=False)
    trigger_arg: str
    trigger_type: ClassVar[TriggerType]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


@dataclass(frozen=True)
class HttpFunction(FunctionEntry):
    trigger_type: ClassVar[TriggerType] = TriggerType.HTTP
    route: RouteTemplate
    #: Upper-case methods, or None for every method.
    methods: tuple[str, ...] | None
    auth_level: AuthLevel


@dataclass(frozen=True)
class QueueFunction(FunctionEntry):
    trigger_type: ClassVar[TriggerType] = TriggerType.QUEUE
    queue_name: str
    #: The setting that held the connection string (for messages; the value itself is secret).
    connection_setting: str
    connection_string: str = field(repr=False)

    @property
    def poison_queue_name(self) -> str:
        return f"{self.queue_name}-poison"


@dataclass(frozen=True)
class TimerFunction(FunctionEntry):
    trigger_type: ClassVar[TriggerType] = TriggerType.TIMER
    schedule: Schedule
    run_on_startup: bool


AnyFunction = HttpFunction | QueueFunction | TimerFunction


def load_function_app(app_dir: Path) -> AppLike:
    """Import `<app_dir>/function_app.py` the way the worker does and return its `app`."""
    app_dir = app_dir.resolve()
    script = app_dir / f"{APP_MODULE}.py"
    if not script.is_file():
        raise StartupError(f"{script} not found: the app directory needs a {APP_MODULE}.py")
    if sys.path[:1] != [str(app_dir)]:
        sys.path.insert(0, str(app_dir))
    try:
        module = importlib.import_module(APP_MODULE)
    except Exception as error:
        logger.error("importing %s failed", script, exc_info=True)
        raise StartupError(f"importing {script} failed: {type(error).__name__}: {error}") from error
    if Path(module.__file__ or "").resolve() != script.resolve():
        raise StartupError(f"imported {module.__file__}, not {script}: another '{APP_MODULE}' module shadows it")
    app = getattr(module, APP_ATTRIBUTE, None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise StartupError(f"{script} must define `{APP_ATTRIBUTE} = func.FunctionApp(...)`")
    return app


def validate_binding_names(function_name: str, binding_names: Iterable[str], user_function: Callable[..., Any]) -> None:
    """Every binding needs a parameter of its name and every parameter a binding (the worker's rule)."""
    parameters = [
        p.name
        for p in inspect.signature(user_function).parameters.values()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    bound = [name for name in binding_names if name != RETURN_BINDING]
    if CONTEXT_PARAMETER in parameters and CONTEXT_PARAMETER not in bound:
        raise StartupError(
            f"function '{function_name}': parameter '{CONTEXT_PARAMETER}' asks for func.Context, "
            "which devhost does not provide; remove it or take what you need from the trigger"
        )
    without_parameter = [name for name in bound if name not in parameters]
    without_binding = [name for name in parameters if name not in bound]
    if without_parameter:
        raise StartupError(
            f"function '{function_name}': binding(s) {', '.join(without_parameter)} have no parameter of that name "
            f"in {user_function.__qualname__}({', '.join(parameters)}); the decorator's arg_name must match"
        )
    if without_binding:
        raise StartupError(
            f"function '{function_name}': parameter(s) {', '.join(without_binding)} of "
            f"{user_function.__qualname__} have no binding; every parameter must be bound by a decorator"
        )


def resolve_connection(name: str | None, settings: Mapping[str, str], *, where: str) -> tuple[str, str]:
    """(setting name, connection string) for a binding's `connection`, with the host's fallbacks.

    The host reads setting `<name>`, then `AzureWebJobs<name>`; an empty name means
    AzureWebJobsStorage.
    """
    setting = resolve_expression(name, settings, where=where) if name else DEFAULT_CONNECTION
    for candidate in (setting, f"AzureWebJobs{setting}"):
        value = settings.get(candidate, "").strip()
        if value:
            return candidate, value
    if any(key.startswith(f"{setting}__") for key in settings):
        raise StartupError(
            f"{where}: connection '{setting}' is identity-based ({setting}__...); devhost needs a connection "
            "string (e.g. Azurite's) in that setting"
        )
    raise StartupError(f"{where}: connection setting '{setting}' is not set (expected a storage connection string)")


def validate_queue_name(name: str, *, where: str) -> str:
    """Lower-case and check a queue name as the host's queue binding does."""
    normalized = name.lower()
    if not _QUEUE_NAME.match(normalized):
        raise StartupError(
            f"{where}: {name!r} is not a valid queue name (3-63 characters: letters, digits and single hyphens, "
            "starting and ending with a letter or digit)"
        )
    return normalized


@dataclass
class _TriggerSource:
    """Per-function inputs to the builders below."""

    name: str
    user_function: Callable[..., Any]
    trigger: Any
    settings: Mapping[str, str]
    time_zone: tzinfo


def _build_http(ctx: _TriggerSource) -> HttpFunction:
    trigger = ctx.trigger
    try:
        route = RouteTemplate.parse(trigger.route if trigger.route is not None else ctx.name)
    except RouteTemplateError as error:
        raise StartupError(f"function '{ctx.name}': {error}") from None
    methods = tuple(str(getattr(m, "value", m)).upper() for m in trigger.methods) if trigger.methods else None
    level = trigger.auth_level
    auth_level = level if isinstance(level, AuthLevel) else AuthLevel(str(level or AuthLevel.FUNCTION.value).lower())
    return HttpFunction(ctx.name, ctx.user_function, trigger.name, route, methods, auth_level)


def _build_queue(ctx: _TriggerSource) -> QueueFunction:
    where = f"function '{ctx.name}'"
    queue_name = resolve_expression(ctx.trigger.queue_name or "", ctx.settings, where=f"{where} queue_name")
    queue_name = validate_queue_name(queue_name, where=f"{where} queue_name")
    setting, connection_string = resolve_connection(ctx.trigger.connection, ctx.settings, where=f"{where} connection")
    return QueueFunction(ctx.name, ctx.user_function, ctx.trigger.name, queue_name, setting, connection_string)


def _build_timer(ctx: _TriggerSource) -> TimerFunction:
    where = f"function '{ctx.name}' schedule"
    text = resolve_expression(ctx.trigger.schedule or "", ctx.settings, where=where)
    try:
        schedule = parse_schedule(text, ctx.time_zone)
    except ValueError as error:
        raise StartupError(f"{where}: {error}") from None
    return TimerFunction(ctx.name, ctx.user_function, ctx.trigger.name, schedule, bool(ctx.trigger.run_on_startup))


_BUILDERS: dict[str, Callable[[_TriggerSource], AnyFunction]] = {
    TriggerType.HTTP: _build_http,
    TriggerType.QUEUE: _build_queue,
    TriggerType.TIMER: _build_timer,
}


def _check_other_bindings(name: str, trigger: Any, bindings: Sequence[Any]) -> None:
    for binding in bindings:
        if binding is trigger:
            continue
        if trigger.type == TriggerType.HTTP and binding.type == "http" and binding.name == RETURN_BINDING:
            continue
        raise StartupError(
            f"function '{name}': binding '{binding.name}' of type '{binding.type}' is not supported by devhost "
            "(only the trigger and an HTTP function's return value are); use the Azure SDK in the function instead"
        )


def build_function(function: FunctionLike, settings: Mapping[str, str], time_zone: tzinfo) -> AnyFunction:
    """Validate one library Function and resolve its trigger against the app settings."""
    name = function.get_function_name() or function.get_user_function().__name__
    trigger = function.get_trigger()
    builder = _BUILDERS.get(getattr(trigger, "type", None) or "")
    if trigger is None or builder is None:
        supported = ", ".join(_BUILDERS)
        raise StartupError(
            f"function '{name}': trigger type '{getattr(trigger, 'type', None)}' is not supported by devhost "
            f"(supported: {supported})"
        )
    bindings = function.get_bindings()
    _check_other_bindings(name, trigger, bindings)
    user_function = function.get_user_function()
    validate_binding_names(name, [b.name for b in bindings], user_function)
    if function.get_setting(RETRY_POLICY_SETTING) is not None:
        logger.warning("function '%s': host-level retry policy is ignored by devhost", name)
    return builder(_TriggerSource(name, user_function, trigger, settings, time_zone))


def discover_functions(app: AppLike, settings: Mapping[str, str], time_zone: tzinfo) -> list[AnyFunction]:
    """All functions of the app, validated; `get_functions()` is called once (a second call raises)."""
    try:
        library_functions = app.get_functions()
    except ValueError as error:
        raise StartupError(f"the app's functions are invalid: {error}") from error
    functions = [build_function(function, settings, time_zone) for function in library_functions]
    if not functions:
        logger.warning("the app defines no functions")
    return functions
