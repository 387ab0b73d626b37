"""App settings: local.settings.json `Values` overlaid by the environment, and `%NAME%` expressions.

Like Core Tools, a variable already set in the environment wins over the same name in
local.settings.json, so a test or a shell can override any setting without editing the file.
The merged values go into `os.environ` before the app is imported, because the app reads
its settings from the environment exactly as it does on Azure.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.errors import StartupError

logger = logging.getLogger(__name__)

LOCAL_SETTINGS_FILE = "local.settings.json"

_EXPRESSION = re.compile(r"%([^%]*)%")


class AppSettings(Mapping[str, str]):
    """Read-only settings with the host's lookup rule: exact name first, then case-insensitive.

    The real host reads settings through .NET configuration, which ignores case; Linux
    environment variables do not, so an exact match is preferred when both exist.
    """

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._by_lower_name = {name.lower(): name for name in self._values}

    def __getitem__(self, name: str) -> str:
        if name in self._values:
            return self._values[name]
        actual = self._by_lower_name.get(name.lower())
        if actual is None:
            raise KeyError(name)
        return self._values[actual]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        # Values hold connection strings and keys: never show them.
        return f"AppSettings({len(self._values)} settings)"


@dataclass(frozen=True)
class LocalSettings:
    """What devhost uses from local.settings.json."""

    values: dict[str, str]
    local_http_port: int | None = None


def read_local_settings(app_dir: Path) -> LocalSettings:
    """Parse `<app_dir>/local.settings.json`; a missing file is allowed (environment only)."""
    path = app_dir / LOCAL_SETTINGS_FILE
    if not path.exists():
        logger.warning("%s not found in %s; using environment variables only", LOCAL_SETTINGS_FILE, app_dir)
        return LocalSettings(values={})
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as error:
        raise StartupError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise StartupError(f"{path} must hold a JSON object")
    if document.get("IsEncrypted") is True:
        raise StartupError(f"{path} is encrypted (IsEncrypted: true); devhost reads plain values only")
    return LocalSettings(
        values=_string_values(path, document.get("Values") or {}),
        local_http_port=_local_http_port(path, document.get("Host") or {}),
    )


def _string_values(path: Path, values: Any) -> dict[str, str]:
    if not isinstance(values, dict):
        raise StartupError(f"{path}: Values must be an object of setting name to string")
    result: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            result[name] = value
        elif isinstance(value, bool | int | float):
            # Core Tools stringifies JSON scalars; keep the JSON spelling (true, not True).
            result[name] = json.dumps(value)
        else:
            raise StartupError(f"{path}: Values.{name} must be a string")
    return result


def _local_http_port(path: Path, host_section: Any) -> int | None:
    if not isinstance(host_section, dict) or "LocalHttpPort" not in host_section:
        return None
    port = host_section["LocalHttpPort"]
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise StartupError(f"{path}: Host.LocalHttpPort must be a port number")
    return port


def merge_settings(file_values: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """local.settings.json values overridden by the environment, plus the rest of the environment."""
    overridden = sorted(name for name in file_values if name in environ and environ[name] != file_values[name])
    if overridden:
        logger.info("environment overrides local.settings.json for: %s", ", ".join(overridden))
    return {**file_values, **environ}


def apply_to_environ(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> None:
    """Publish the merged settings where the app reads them: the process environment."""
    target = os.environ if environ is None else environ
    for name, value in values.items():
        if target.get(name) != value:
            target[name] = value


def resolve_expression(text: str, settings: Mapping[str, str], *, where: str) -> str:
    """Replace every `%NAME%` in `text` with the setting NAME, as the host does for binding properties.

    `where` names the property for the error message (e.g. "function 'ingest' queue_name").
    An empty setting resolves to an empty string; a missing one is a start-up error.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name:
            raise StartupError(f"{where}: empty %% expression in {text!r}")
        try:
            value = settings[name]
        except KeyError:
            raise StartupError(
                f"{where}: {text!r} refers to app setting %{name}% which is not set "
                f"(add it to {LOCAL_SETTINGS_FILE} Values or the environment)"
            ) from None
        if not value:
            # The host's resolver accepts "", but Core Tools drops empty local.settings.json values
            # (setting an environment variable to "" deletes it in .NET), so `func start` would
            # fail with "'%NAME%' does not resolve to a value".
            logger.warning(
                "%s: %%%s%% is empty; devhost accepts that, but Core Tools drops empty settings and would fail",
                where,
                name,
            )
        return value

    resolved = _EXPRESSION.sub(substitute, text)
    if "%" in _EXPRESSION.sub("", text):
        raise StartupError(f"{where}: unbalanced % in {text!r}")
    return resolved
