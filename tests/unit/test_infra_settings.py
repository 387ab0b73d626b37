"""The Bicep's app settings and the code's settings agree, both ways.

The templates are parsed with pycep (no Bicep CLI here) and the app settings of the Function
App are read out of them by following the expressions that build them: object literals,
`union(...)`, conditionals, variables, parameters, and module parameters back to the
`module` call in main.bicep. Conditionals on a bool parameter follow the value given for it
(`deployServiceBus`), so each deployment shape is checked as it would be deployed.

The settings model is read dynamically (`Settings.model_fields` and their aliases), so a
setting added to `shared/settings.py` fails here until the Bicep sets it too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

import function_app
from devhost.schedules import parse_schedule
from shared.settings import RECOVERY_STORAGE_SETTING, STORAGE_SETTING, Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
MAIN = INFRA / "main.bicep"

#: Settings the Bicep sets that the settings model does not read: the platform or a library reads them.
PLATFORM_SETTINGS = {
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "read by the Functions host and by the Azure Monitor "
    "OpenTelemetry exporter (shared/telemetry.py passes no credential, so the exporter takes it from here): "
    "Entra ID-authenticated ingestion as the user-assigned identity, as the component has local auth disabled",
}

#: Model settings whose deployed value Azure fills in at deployment time (a resource property).
DEPLOY_TIME_VALUES = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "the Application Insights component's connection string",
    "ALERT_EMAIL_SENDER": "DoNotReply@ the Azure managed email domain's generated sender domain",
    "ALERT_ACS_ENDPOINT": "the Communication Services resource's host name",
    "ALERT_ACS_CLIENT_ID": "the app's user-assigned identity's client id",
}

#: Settings the code reads that the Bicep must not set, and why.
NOT_SET_IN_AZURE: dict[str, str] = {
    # Devhost-only settings (DEVHOST_*) are read by devhost, not by the model.
    "ALERT_SMTP_HOST": "SMTP is the local email backend; in Azure email alerts go through ACS (or are off)",
    "ALERT_SMTP_PORT": "as ALERT_SMTP_HOST",
    "PORTAL_URL": "on App Service alerts link to https://<WEBSITE_HOSTNAME>/api/portal, which the platform sets",
}

#: What the identity form of each connection must carry in Azure, and which services the code uses on it.
IDENTITY_PARTS = ("credential", "clientId")
STORAGE_SERVICES = {
    STORAGE_SETTING: ("queue", "table", "blob"),  # host + app queues, every table, payloads and host blobs
    RECOVERY_STORAGE_SETTING: ("queue", "blob"),  # recovery queue and recoverypayloads; no tables
}

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
UNRESOLVED = "unresolved"


# ---------------------------------------------------------------------------------------------
# Reading the templates


@cache
def parse(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=path))


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@dataclass(frozen=True)
class Scope:
    """One template instance: its parsed file, and the module call (in the parent scope) that feeds its parameters."""

    path: Path
    params: Mapping[str, Any] = field(default_factory=dict)  # overrides of main.bicep parameters
    caller: tuple[Scope, Mapping[str, Any]] | None = None
    loop: Mapping[str, Any] = field(default_factory=dict)  # a for-loop's item variable and its value

    @property
    def template(self) -> dict[str, Any]:
        return parse(self.path)

    def variables(self) -> dict[str, Any]:
        return dict(self.template.get("variables", {}))

    def parameters(self) -> dict[str, Any]:
        return dict(self.template.get("parameters", {}))

    def lookup(self, name: str) -> tuple[Any, Scope] | None:
        """The expression an identifier stands for, and the scope to evaluate it in; None if not a var/param."""
        if name in self.loop:
            return self.loop[name], Scope(self.path)  # a literal: no scope needed
        variables = self.variables()
        if name in variables:
            return variables[name]["value"], self
        parameters = self.parameters()
        if name not in parameters:
            return None
        if self.caller is not None:
            caller, args = self.caller
            if name in args:
                return args[name], caller
        elif name in self.params:
            return self.params[name], Scope(self.path)  # a literal: no scope needed
        if parameters[name].get("default") is not None:
            return parameters[name]["default"], self
        return UNRESOLVED, self


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's properties, also when it is conditional (`= if (...) {...}`)."""
    config: dict[str, Any] = declaration["config"]
    return config["config"] if set(config) == {"condition", "config"} else config


def _node(expr: Any, kind: str) -> dict[str, Any] | None:
    if isinstance(expr, dict) and set(expr) == {kind} and isinstance(expr[kind], dict) and "type" in expr[kind]:
        node: dict[str, Any] = expr[kind]
        return node
    return None


def evaluate(expr: Any, scope: Scope) -> Any:
    """The value of an expression where it can be known without Azure; `UNRESOLVED` where it cannot."""
    if isinstance(expr, bool | int | float) or expr is None:
        return expr
    if isinstance(expr, list):
        return [evaluate(item, scope) for item in expr]
    if isinstance(expr, str):
        found = scope.lookup(expr)
        if found is not None:
            return evaluate(*found)
        return _INTERPOLATION.sub(lambda match: _interpolate(match.group(1).strip(), scope), expr)
    if (function := _node(expr, "function")) is not None:
        return _call(function["type"], [evaluate(a, scope) for a in (function.get("parameters") or {}).values()])
    if (operator := _node(expr, "operator")) is not None:
        if operator["type"] == "conditional":
            operands = operator["operands"]
            condition = evaluate(operands["condition"], scope)
            if not isinstance(condition, bool):
                return UNRESOLVED
            return evaluate(operands["true_value" if condition else "false_value"], scope)
        if operator["type"] == "add":
            left, right = (evaluate(v, scope) for v in operator["operands"].values())
            return left + right if isinstance(left, int) and isinstance(right, int) else UNRESOLVED
        return UNRESOLVED
    return UNRESOLVED


def _call(name: str, arguments: list[Any]) -> Any:
    """The Bicep functions the templates use to build settings, on values known without Azure."""
    if UNRESOLVED in arguments:
        return UNRESOLVED
    if name == "string":
        return _as_text(arguments[0])
    if name == "empty":
        return len(arguments[0]) == 0
    if name == "split":
        return arguments[0].split(arguments[1])
    if name == "replace":
        return arguments[0].replace(arguments[1], arguments[2])
    if name == "join":
        return arguments[1].join(arguments[0])
    return UNRESOLVED


def _interpolate(inner: str, scope: Scope) -> str:
    found = scope.lookup(inner)
    return _as_text(evaluate(*found)) if found is not None else UNRESOLVED


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_of(expr: Any, scope: Scope) -> dict[str, tuple[Any, Scope]]:
    """App setting name → (value expression, scope) for an expression that builds the settings."""
    if isinstance(expr, str):
        found = scope.lookup(expr)
        assert found is not None, f"{scope.path.name}: cannot follow {expr!r} to the settings it names"
        return settings_of(*found)
    if isinstance(expr, list):  # the array form: [{name: ..., value: ...}]
        return {evaluate(item["name"], scope): (item["value"], scope) for item in expr}
    if (function := _node(expr, "function")) is not None:
        # union() of objects, concat() of arrays: later arguments win, as in Bicep.
        assert function["type"] in ("union", "concat"), f"{scope.path.name}: settings built with {function['type']}()"
        merged: dict[str, tuple[Any, Scope]] = {}
        for argument in function["parameters"].values():
            merged.update(settings_of(argument, scope))
        return merged
    if (operator := _node(expr, "operator")) is not None:
        assert operator["type"] == "conditional", f"{scope.path.name}: settings built with {operator['type']}"
        operands = operator["operands"]
        condition = evaluate(operands["condition"], scope)
        assert isinstance(condition, bool), f"{scope.path.name}: cannot decide {operands['condition']!r}"
        return settings_of(operands["true_value" if condition else "false_value"], scope)
    if isinstance(expr, dict) and "loop_type" in expr:
        loop = expr["loop_type"]["detail"]
        items = _node(loop["array_name"], "function")
        if items is not None:  # [for setting in items(x): {name: setting.key, ...}]
            assert items["type"] == "items", f"{scope.path.name}: unsupported settings loop"
            return settings_of(items["parameters"]["arg_1"], scope)
        # [for name in names: {name: name, value: ...}], over an array the parameters decide
        names = evaluate(loop["array_name"], scope)
        assert isinstance(names, list), f"{scope.path.name}: cannot list {loop['array_name']!r}"
        settings = {}
        for item in names:
            item_scope = Scope(scope.path, scope.params, scope.caller, {**scope.loop, loop["item_name"]: item})
            settings[evaluate(expr["config"]["name"], item_scope)] = (expr["config"]["value"], item_scope)
        return settings
    assert isinstance(expr, dict), f"{scope.path.name}: cannot read settings from {expr!r}"
    return {name: (value, scope) for name, value in expr.items()}


def function_app_resources(scope: Scope) -> Iterator[tuple[dict[str, Any], Scope]]:
    """The Microsoft.Web/sites resources of a template and of the local modules it calls."""
    for resource in scope.template.get("resources", {}).values():
        if resource["type"] == "Microsoft.Web/sites" and not resource["existing"]:
            yield resource, scope
    for module in scope.template.get("modules", {}).values():
        if module["type"] == "local":
            child = Scope(scope.path.parent / module["detail"]["path"], caller=(scope, body(module)["params"]))
            yield from function_app_resources(child)


def bicep_app_settings(**params: Any) -> dict[str, tuple[Any, Scope]]:
    """The Function App's app settings as main.bicep deploys them with these parameter values."""
    apps = list(function_app_resources(Scope(MAIN, params=params)))
    assert len(apps) == 1, f"expected one Function App in infra/, found {len(apps)}"
    resource, scope = apps[0]
    settings: dict[str, tuple[Any, Scope]] = {}
    site_config = body(resource)["properties"].get("siteConfig", {})
    if "appSettings" in site_config:
        settings.update(settings_of(site_config["appSettings"], scope))
    # The other way to write them: a `config` child named 'appsettings' (object form).
    for config in scope.template.get("resources", {}).values():
        if config["type"] == "Microsoft.Web/sites/config" and evaluate(body(config)["name"], scope) == "appsettings":
            settings.update(settings_of(body(config)["properties"], scope))
    assert settings, "the Function App sets no app settings"
    return settings


def bicep_environment(**params: Any) -> dict[str, str]:
    """The app settings as the app would see them (values Azure fills in at deploy time are placeholders)."""
    return {name: _as_text(evaluate(value, scope)) for name, (value, scope) in bicep_app_settings(**params).items()}


def model_settings() -> dict[str, str]:
    """Env name → field name, for every field of the settings model."""
    names = {}
    for field_name, info in Settings.model_fields.items():
        alias = info.validation_alias
        assert isinstance(alias, str), f"Settings.{field_name} has no single env name ({alias!r})"
        names[alias] = field_name
    return names


#: Secrets a deployment with a Key Vault lets endpoint headers reference (ENDPOINT_SECRET_SETTINGS).
ENDPOINT_SECRETS = "ORDERS_TOKEN, ERP_API_KEY"

SHAPES = [
    pytest.param({"deployServiceBus": False}, id="storage-recovery"),
    pytest.param({"deployServiceBus": True}, id="service-bus-recovery"),
    pytest.param({"deployKeyVault": True, "endpointSecretSettings": ENDPOINT_SECRETS}, id="key-vault"),
    pytest.param({"deployAlertEmail": True}, id="alert-email"),
]


# ---------------------------------------------------------------------------------------------
# The cross-check


@pytest.mark.parametrize("params", SHAPES)
def test_every_setting_the_code_reads_is_set_by_the_bicep(params):
    # Given the settings model and what the Bicep deploys
    deployed = bicep_app_settings(**params)

    # Then every setting the model reads is deployed (unless it is documented as local-only)
    missing = sorted(set(model_settings()) - set(deployed) - set(NOT_SET_IN_AZURE))
    assert not missing, f"set by no appSetting in infra/*.bicep: {', '.join(missing)} (add them to main.bicep)"


@pytest.mark.parametrize("params", SHAPES)
def test_every_app_setting_the_bicep_sets_is_read_by_the_code_or_the_platform(params):
    # Given what the Bicep deploys
    environ = bicep_environment(**params)
    settings = Settings.from_env(environ)
    connections = _connection_names(settings)

    # Then each one is a model setting, part of a connection the code resolves, a platform setting,
    # or a secret endpoint headers may reference (the code reads those by the names the allowlist gives)
    unexplained = [
        name
        for name in environ
        if name not in model_settings()
        and name not in PLATFORM_SETTINGS
        and name not in settings.endpoint_secret_settings
        and not any(name.startswith(f"{connection}__") for connection in connections)
    ]
    assert not unexplained, f"app settings nothing reads: {', '.join(sorted(unexplained))}"


@pytest.mark.parametrize("params", SHAPES)
def test_the_values_the_bicep_sets_are_valid_settings(params):
    # Given the deployed values of the model's settings
    environ = bicep_environment(**params)
    deployed = {name: value for name, value in environ.items() if name in model_settings()}
    unknown = [name for name, value in deployed.items() if UNRESOLVED in value and name not in DEPLOY_TIME_VALUES]
    assert not unknown, f"values the cross-check cannot read statically: {unknown}"

    # Then the settings model accepts each of them (the error names the setting otherwise)
    for name, value in deployed.items():
        Settings.from_env({name: value})
    Settings.from_env(environ)


def test_the_prefix_is_never_empty_in_azure():
    # Given the value REBOUND_PREFIX gets
    value, scope = bicep_app_settings(deployServiceBus=False)["REBOUND_PREFIX"]

    # Then it comes from a parameter that has a non-empty default and cannot be set empty
    # (queue triggers name %REBOUND_PREFIX%inbound; the host does not resolve an empty setting).
    parameter = Scope(MAIN).parameters().get(value)
    assert parameter is not None, "REBOUND_PREFIX must be set from a main.bicep parameter"
    assert parameter.get("default"), "the prefix parameter needs a non-empty default"
    min_length = [d["argument"] for d in parameter["decorators"] if d["type"] == "min_length"]
    assert min_length and min_length[0] >= 1, "the prefix parameter needs @minLength(1)"
    assert Settings.from_env({"REBOUND_PREFIX": parameter["default"]}).prefix == parameter["default"]


@pytest.mark.parametrize("params", SHAPES)
def test_storage_connections_are_identity_based_with_the_services_the_code_uses(params):
    # Given the deployed settings
    environ = bicep_environment(**params)
    settings = Settings.from_env(environ)

    for name, services in STORAGE_SERVICES.items():
        # Then no connection string is deployed, only the identity form
        assert name not in environ, f"{name} is a connection string; Azure uses {name}__* (identity)"
        for part in IDENTITY_PARTS:
            assert environ.get(f"{name}__{part}"), f"{name}__{part} is not set"
        assert environ[f"{name}__credential"] == "managedidentity"
        # And the code resolves exactly the endpoints the roles in modules/rbac.bicep cover
        connection = settings.connection(name)
        assert connection.name == name
        assert connection.uses_identity
        assert sorted(connection.service_uris) == sorted(services), f"{name}: {sorted(connection.service_uris)}"
        assert connection.credential == "managedidentity"
        assert connection.client_id == environ[f"{name}__clientId"]


def test_the_service_bus_connection_exists_exactly_when_service_bus_is_the_backend():
    # Given both deployment shapes
    with_bus = Settings.from_env(bicep_environment(deployServiceBus=True))
    without_bus = bicep_environment(deployServiceBus=False)

    # Then with Service Bus, the connection RECOVERY_SERVICE_BUS_CONNECTION names is identity-based
    assert with_bus.recovery_backend.value == "servicebus"
    connection = with_bus.connection(with_bus.recovery_service_bus_connection)
    assert connection.uses_identity
    assert connection.fully_qualified_namespace
    assert connection.credential == "managedidentity"
    assert connection.client_id
    # And without it, the backend is storage and no Service Bus setting is deployed
    assert without_bus["RECOVERY_BACKEND"] == "storage"
    name = Settings.from_env(without_bus).recovery_service_bus_connection
    assert not [key for key in without_bus if key.startswith(f"{name}__")]


@pytest.mark.parametrize("params", SHAPES)
def test_every_trigger_expression_and_connection_resolves_from_the_bicep(params):
    # Given the triggers the app registers and the deployed settings
    environ = bicep_environment(**params)
    checked: set[str] = set()

    for function in registered_functions():
        trigger = function.get_trigger()
        where = f"function {function.get_function_name()}"
        # Then every %SETTING% in a queue name or schedule is deployed and not empty
        for text in (getattr(trigger, "queue_name", None), getattr(trigger, "schedule", None)):
            for setting in re.findall(r"%([^%]+)%", text or ""):
                assert environ.get(setting), f"{where}: %{setting}% is not set (or empty) in the Bicep"
                checked.add(setting)
        if getattr(trigger, "schedule", None):
            parse_schedule(re.sub(r"%([^%]+)%", lambda m: environ[m.group(1)], trigger.schedule))
        # And a queue trigger's connection is deployed in identity form with a queue endpoint
        if getattr(trigger, "queue_name", None):
            connection = trigger.connection or STORAGE_SETTING
            assert environ.get(f"{connection}__queueServiceUri"), f"{where}: {connection}__queueServiceUri"
            assert environ.get(f"{connection}__credential") == "managedidentity", where

    # And the loop saw the expressions the queue triggers and timers are known to use
    assert checked >= {"REBOUND_PREFIX", "RECOVERY_SCHEDULE", "RETENTION_SCHEDULE"}, checked


def test_platform_settings_are_each_documented_with_a_reason():
    for name, reason in PLATFORM_SETTINGS.items():
        assert len(reason) > 40, name
        assert name not in model_settings(), f"{name} is read by the code: it is not platform-only"


def registered_functions() -> list[Any]:
    """The app's functions. get_functions() records names in the app and refuses a second call (another
    test makes the first), so ask a shallow copy with its own record."""
    app = copy.copy(function_app.app)
    app.functions_bindings = {}
    return list(app.get_functions())


def _connection_names(settings: Settings) -> set[str]:
    """The connection settings the code resolves by name."""
    return {STORAGE_SETTING, RECOVERY_STORAGE_SETTING, settings.recovery_service_bus_connection}
