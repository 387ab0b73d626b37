"""Start and stop everything for one app: settings, host.json, functions, HTTP, queues, timers.

The start-up order follows the real host: settings are in place before the app is
imported, every function is validated before anything listens, and the HTTP port is
bound before the listeners start, so a busy port fails start-up without side effects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devhost.app_settings import AppSettings, LocalSettings, apply_to_environ, merge_settings, read_local_settings
from devhost.easy_auth import (
    LOGIN_PATH,
    MARKER_SETTING,
    MARKER_VALUE,
    USERS_SETTING,
    EasyAuth,
    parse_users,
    plays_easy_auth,
)
from devhost.errors import StartupError
from devhost.functions import HttpFunction, QueueFunction, TimerFunction, discover_functions, load_function_app
from devhost.host_config import load_host_config
from devhost.http_server import KEY_HEADER, HttpServer
from devhost.invocation import Invoker, thread_count
from devhost.progress import ProgressReporter, progress_interval_s
from devhost.queue_listener import QueueListener, lease_seconds
from devhost.schedules import schedule_time_zone
from devhost.timer_scheduler import TimerScheduler

logger = logging.getLogger(__name__)

#: Core Tools' default port.
DEFAULT_PORT = 7071
#: Seconds running invocations get to finish on shutdown.
DEFAULT_GRACE_S = 10.0
#: The setting holding the key for FUNCTION- and ADMIN-level HTTP functions.
FUNCTION_KEY_SETTING = "DEVHOST_FUNCTION_KEY"
#: Per-function keys (JSON function name → key): each opens its own FUNCTION-level function only.
FUNCTION_KEYS_SETTING = "DEVHOST_FUNCTION_KEYS"


@dataclass(frozen=True)
class HostOptions:
    app_dir: Path
    host: str = "127.0.0.1"
    #: None: local.settings.json Host.LocalHttpPort, else 7071. 0: any free port.
    port: int | None = None
    grace_s: float = DEFAULT_GRACE_S
    #: False: ignore local.settings.json and take settings from the environment only (hermetic tests).
    use_local_settings: bool = True


def function_key(settings: Mapping[str, str]) -> str:
    key = settings.get(FUNCTION_KEY_SETTING, "").strip()
    if key:
        return key
    key = secrets.token_urlsafe(24)
    # A throwaway key for this local run only; showing it once is how a developer can call the API.
    logger.warning(
        "%s is not set; generated a key for this run (send it as %s or ?code=): %s",
        FUNCTION_KEY_SETTING,
        KEY_HEADER,
        key,
    )
    return key


def function_keys(settings: Mapping[str, str], function_names: Iterable[str]) -> dict[str, str]:
    """`DEVHOST_FUNCTION_KEYS`, checked against the functions there are (names ignore case, as in the host)."""
    text = settings.get(FUNCTION_KEYS_SETTING, "").strip()
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise StartupError(f"{FUNCTION_KEYS_SETTING} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise StartupError(f'{FUNCTION_KEYS_SETTING} must be a JSON object like {{"ingest_message": "<key>"}}')
    by_lower_name = {name.lower(): name for name in function_names}
    keys: dict[str, str] = {}
    for name, key in document.items():
        function_name = by_lower_name.get(name.lower())
        if function_name is None:
            raise StartupError(f"{FUNCTION_KEYS_SETTING} names {name!r}, which is no HTTP function of this app")
        if not isinstance(key, str) or not key.strip():
            raise StartupError(f"{FUNCTION_KEYS_SETTING}: the key of {name!r} must be a non-empty string")
        keys[function_name] = key.strip()
    return keys


def easy_auth(settings: Mapping[str, str], environ: dict[str, str] | None = None) -> EasyAuth | None:
    """devhost's Easy Auth when AUTH_MODE=dev, else None; marks (or unmarks) the app's environment to match.

    The marker is devhost's to set: one inherited from the shell or local.settings.json is removed
    unless devhost plays Easy Auth, or the app would trust principal headers nobody vouched for.
    """
    target = os.environ if environ is None else environ
    if not plays_easy_auth(settings):
        target.pop(MARKER_SETTING, None)
        return None
    users = parse_users(settings.get(USERS_SETTING, ""))
    if not users:
        logger.warning("AUTH_MODE=dev, but %s defines no users: nobody can sign in", USERS_SETTING)
    target[MARKER_SETTING] = MARKER_VALUE
    return EasyAuth(users)


class Host:
    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.base_url = ""
        self.function_count = 0
        self._invoker: Invoker | None = None
        self._http: HttpServer | None = None
        self._listeners: list[QueueListener] = []
        self._timers: list[TimerScheduler] = []
        self._progress: ProgressReporter | None = None

    @property
    def ready_line(self) -> str:
        return f"devhost ready: {self.base_url} ({self.function_count} functions)"

    @property
    def abandoned_invocations(self) -> int:
        """Sync invocations still running in threads after stop (they cannot be cancelled)."""
        return self._invoker.threads_busy if self._invoker else 0

    async def start(self) -> None:
        app_dir = self.options.app_dir.resolve()
        local = read_local_settings(app_dir) if self.options.use_local_settings else LocalSettings(values={})
        merged = merge_settings(local.values, os.environ)
        apply_to_environ(merged)
        settings = AppSettings(merged)
        # Before the app is imported: it may read the marker at import.
        front_end = easy_auth(settings)
        config = load_host_config(app_dir)
        time_zone = schedule_time_zone(settings)
        lease_s = lease_seconds(settings)
        functions = discover_functions(load_function_app(app_dir), settings, time_zone)
        self.function_count = len(functions)
        invoker = self._invoker = Invoker(thread_count(settings))

        http_functions = [f for f in functions if isinstance(f, HttpFunction)]
        self._http = HttpServer(
            http_functions,
            route_prefix=config.http.route_prefix,
            invoker=invoker,
            function_key=function_key(settings) if http_functions else "",
            shutdown_timeout_s=self.options.grace_s,
            function_keys=function_keys(settings, [f.name for f in http_functions]),
            easy_auth=front_end,
        )
        port = self.options.port
        if port is None:
            port = local.local_http_port if local.local_http_port is not None else DEFAULT_PORT
        try:
            bound_port = await self._http.start(self.options.host, port)
        except OSError as error:
            invoker.close()
            raise StartupError(f"cannot listen on {self.options.host}:{port}: {error.strerror or error}") from None
        prefix = f"/{config.http.route_prefix}" if config.http.route_prefix else ""
        self.base_url = f"http://{self.options.host}:{bound_port}{prefix}"

        self._listeners = [
            QueueListener(function, config.queues, invoker, lease_s=lease_s)
            for function in functions
            if isinstance(function, QueueFunction)
        ]
        await asyncio.gather(*(listener.start() for listener in self._listeners))
        self._timers = [
            TimerScheduler(function, invoker) for function in functions if isinstance(function, TimerFunction)
        ]
        for timer in self._timers:
            timer.start()
        self._progress = ProgressReporter(invoker, self._listeners, progress_interval_s(settings))
        self._progress.start()
        self._log_functions(http_functions, config.queues.max_concurrency)
        if front_end is not None:
            logger.info(
                "easy auth: AUTH_MODE=dev, devhost plays App Service Authentication for dev users %s; "
                "sign in at http://%s:%d%s or send Authorization: Bearer dev:<user>",
                ", ".join(sorted(front_end.users)) or "(none)",
                self.options.host,
                bound_port,
                LOGIN_PATH,
            )

    def _log_functions(self, http_functions: list[HttpFunction], queue_concurrency: int) -> None:
        for function in http_functions:
            methods = ",".join(function.methods) if function.methods else "*"
            logger.info(
                "function %s: [%s] %s/%s (auth %s)",
                function.name,
                methods,
                self.base_url,
                function.route.text.strip("/"),
                function.auth_level.value,
            )
        for listener in self._listeners:
            logger.info(
                "function %s: queue %s via %s (up to %d at once)",
                listener.function.name,
                listener.function.queue_name,
                listener.function.connection_setting,
                queue_concurrency,
            )
        for timer in self._timers:
            logger.info(
                "function %s: timer %r%s",
                timer.function.name,
                timer.function.schedule.text,
                " (runs on start-up)" if timer.function.run_on_startup else "",
            )

    async def stop(self) -> None:
        """Stop listening everywhere at once; running invocations share one grace period."""
        grace_s = self.options.grace_s
        if self._progress is not None:
            await self._progress.stop()
        stopping = [listener.stop(grace_s) for listener in self._listeners]
        stopping += [timer.stop(grace_s) for timer in self._timers]
        if self._http is not None:
            stopping.append(self._http.stop())
        results = await asyncio.gather(*stopping, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                logger.error("error while stopping", exc_info=result)
        if self._invoker is not None:
            self._invoker.close()
