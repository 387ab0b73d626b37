"""`python -m devhost [--port 7071] [--host 127.0.0.1] [--app-dir .]`: run a Functions app locally.

Prints one line to stdout when ready (`devhost ready: <base url> (<n> functions)`); logs
go to stderr. The first SIGINT/SIGTERM shuts down gracefully (exit 0); a second one
exits at once. A start-up problem exits 1 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from devhost.errors import StartupError
from devhost.host import DEFAULT_GRACE_S, Host, HostOptions

logger = logging.getLogger("devhost")

EXIT_STARTUP_FAILED = 1
EXIT_FORCED = 130


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description="Run an Azure Functions Python app locally.")
    parser.add_argument(
        "--app-dir", type=Path, default=Path("."), help="directory holding function_app.py and host.json"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port (default: local.settings.json Host.LocalHttpPort, else 7071)"
    )
    parser.add_argument(
        "--grace-s", type=float, default=DEFAULT_GRACE_S, help="seconds running invocations get on shutdown"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--no-local-settings",
        action="store_true",
        help="ignore local.settings.json: settings come from the environment only (tests)",
    )
    return parser.parse_args(argv)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # The Azure SDK and httpx log every request at INFO (httpx with full URLs); the invocation
    # and delivery-decision lines are what matters here.
    for noisy in ("azure", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


async def serve(host: Host) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop_requested.is_set():
            logger.warning("second %s: exiting without waiting", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(EXIT_FORCED)
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await host.start()
    except StartupError as error:
        logger.error("start-up failed: %s", error)
        await host.stop()
        return EXIT_STARTUP_FAILED
    print(host.ready_line, flush=True)
    await stop_requested.wait()
    await host.stop()
    logger.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.log_level)
    options = HostOptions(
        app_dir=args.app_dir,
        host=args.host,
        port=args.port,
        grace_s=args.grace_s,
        use_local_settings=not args.no_local_settings,
    )
    host = Host(options)
    exit_code = asyncio.run(serve(host))
    abandoned = host.abandoned_invocations
    if abandoned:
        # Python joins thread-pool threads at exit, so a hung sync function would keep us alive forever.
        logger.warning("%d sync invocation(s) still running; abandoning them", abandoned)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
