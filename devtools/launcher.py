"""`make run`: Azurite (disk-persisted under .azurite/), a demo receiver, devhost, a seeded demo.

Prints the URLs (with `AUTH_MODE=dev`, the sample's, where to sign in as which dev user), streams
devhost's log, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from devtools.azurite import DEFAULT_PORTS, PROJECT_DIR, AzuritePorts, AzuriteProcess, port_open
from devtools.process import DevhostProcess

STATE_DIR = PROJECT_DIR / ".azurite"
DEVHOST_PORT = 7071
RECEIVER_PORT = 7072

DEMO_INTEGRATION = {
    "name": "Demo orders",
    "sender": "demo-webshop",
    "receiver": "demo-erp",
    "endpoint": {"kind": "http", "url": f"http://127.0.0.1:{RECEIVER_PORT}/orders", "timeout_s": 10},
    "retry": {"mode": "linear", "linear_count": 3},
}


def local_settings() -> dict[str, str]:
    path = PROJECT_DIR / "local.settings.json"
    if not path.exists():
        return {}
    values = json.loads(path.read_text()).get("Values", {})
    return {str(k): str(v) for k, v in values.items()}


def start_azurite() -> AzuriteProcess | None:
    blob, queue, table = DEFAULT_PORTS
    if all(port_open(p) for p in DEFAULT_PORTS):
        print(f"Azurite already listening on {DEFAULT_PORTS}; reusing it")
        return None
    azurite = AzuriteProcess(
        ports=AzuritePorts(blob=blob, queue=queue, table=table),
        location=STATE_DIR / "data",
        log_path=STATE_DIR / "azurite.log",
    )
    azurite.start()
    print(f"Azurite listening on {DEFAULT_PORTS}, data in {STATE_DIR / 'data'}")
    return azurite


def start_receiver() -> subprocess.Popen[bytes]:
    log = open(STATE_DIR / "demo-receiver.log", "ab")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo_receiver", "--port", str(RECEIVER_PORT)],
        cwd=PROJECT_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 15
    while not port_open(RECEIVER_PORT):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"demo receiver did not start; see {STATE_DIR / 'demo-receiver.log'}")
        time.sleep(0.1)
    return process


@dataclass(frozen=True)
class Access:
    """How the launcher calls the API, and what it tells the developer, in the mode local.settings.json sets."""

    mode: str
    key: str
    #: The dev users and their roles (AUTH_MODE=dev).
    users: dict[str, list[str]]
    #: What a sender would hold: the senders' route's own key (DEVHOST_FUNCTION_KEYS), else the host key.
    sender_key: str

    @classmethod
    def of(cls, settings: dict[str, str]) -> Access:
        users: dict[str, list[str]] = {}
        mode = settings.get("AUTH_MODE", "").strip() or "entra"
        if mode == "dev":
            try:
                users = {
                    str(k): [str(r) for r in v] for k, v in json.loads(settings.get("DEVHOST_USERS") or "{}").items()
                }
            except (ValueError, AttributeError, TypeError):
                users = {}  # devhost refuses the setting at start and says why
        try:
            own_keys = json.loads(settings.get("DEVHOST_FUNCTION_KEYS") or "{}")
        except ValueError:
            own_keys = {}  # devhost refuses the setting at start and says why
        host_key = settings.get("DEVHOST_FUNCTION_KEY", "local-dev-key")
        sender_key = own_keys.get("ingest") if isinstance(own_keys, dict) else None
        return cls(mode, host_key, users, str(sender_key or host_key))

    @property
    def admin(self) -> str | None:
        """A dev user holding Rebound.Admin, who seeds the demo."""
        return next((name for name, roles in self.users.items() if "Rebound.Admin" in roles), None)

    def headers(self) -> dict[str, str]:
        """The host key opens ingest (and, in key mode, everything); in dev mode the admin signs the rest in."""
        headers = {"x-functions-key": self.key}
        if self.mode == "dev" and self.admin is not None:
            headers["Authorization"] = f"Bearer dev:{self.admin}"
        return headers


def seed(base_url: str, access: Access, demo: Mapping[str, Any] = DEMO_INTEGRATION) -> None:
    if access.mode == "dev" and access.admin is None:
        raise RuntimeError("AUTH_MODE=dev, but DEVHOST_USERS defines no user with Rebound.Admin to seed the demo")
    if access.mode not in ("dev", "key"):
        raise RuntimeError(
            f"AUTH_MODE={access.mode}: make run needs dev (sign in as a dev user) or key (the function key); "
            "entra works behind App Service Authentication only"
        )
    with httpx.Client(base_url=base_url, headers=access.headers(), timeout=30, trust_env=False) as client:
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("devhost did not report healthy within 60 s: " + client.get("/health").text)
            time.sleep(0.5)
        created = client.put("/integrations/demo", json=demo)
        if created.status_code == 422:
            raise RuntimeError(f"the demo integration was refused: {created.text}")
        created.raise_for_status()
        for number in range(1, 21):
            order = {"order": number, "valid": number % 7 != 0}
            response = client.post(
                "/ingest/demo",
                json=order,
                headers={"X-Sender": "demo-webshop", "X-Correlation-Id": f"demo-order-{number}"},
            )
            response.raise_for_status()


def main() -> None:
    STATE_DIR.mkdir(exist_ok=True)
    settings = local_settings()
    access = Access.of(settings)
    key = access.key
    azurite = start_azurite()
    receiver = start_receiver()
    # The demo receiver is on 127.0.0.1: a local.settings.json copied before ALLOW_PRIVATE_ENDPOINTS
    # existed must still run the demo; one that sets it keeps its value (and then the demo PUT says why).
    allow_private = settings.get("ALLOW_PRIVATE_ENDPOINTS", "true")
    # Likewise the timers' schedules: without them the host cannot start the timers (or the app).
    schedules = {
        name: settings.get(name) or default
        for name, default in (
            ("PICKUP_SCHEDULE", "*/15 * * * * *"),
            ("CONTROL_SCHEDULE", "*/10 * * * * *"),
            ("ALERT_SCHEDULE", "0 * * * * *"),
        )
    }
    devhost = DevhostProcess(
        PROJECT_DIR,
        env={"DEVHOST_FUNCTION_KEY": key, "ALLOW_PRIVATE_ENDPOINTS": allow_private, **schedules},
        port=DEVHOST_PORT,
        log_path=STATE_DIR / "devhost.log",
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # Installed explicitly: a launcher started in the background inherits SIGINT as ignored.
    signal.signal(signal.SIGINT, stop)
    try:
        devhost.start()
        seed(devhost.base_url, access)
        print_urls(devhost.base_url, access)
        follow(devhost.log_path)
    except KeyboardInterrupt:
        print("\nstopping ...")
    finally:
        devhost.stop()
        receiver.send_signal(signal.SIGINT)
        receiver.wait(timeout=10)
        if azurite is not None:
            azurite.stop()
        print("stopped")


def print_urls(base_url: str, access: Access) -> None:
    key = access.key
    origin = base_url.removesuffix("/api")
    print()
    print("Rebound is running.")
    if access.mode == "dev":
        print(f"  portal:        {base_url}/portal  (sign in there, or at the link below)")
        print(f"  sign in:       {origin}/.auth/login/dev?post_login_redirect_uri=/api/portal")
        for name, roles in access.users.items():
            print(f"                   {name}: {', '.join(roles) or 'no role'}")
        print(f"  integrations:  curl -H 'Authorization: Bearer dev:{access.admin}' {base_url}/integrations")
    else:
        print(f"  portal:        {base_url}/portal?code={key}")
        print(f"  integrations:  {base_url}/integrations?code={key}")
    print(f"  health:        {base_url}/health")
    ingest = f"{base_url}/ingest/demo"
    print(f"  ingest:        curl -X POST -H 'x-functions-key: {access.sender_key}' -d '{{\"order\": 1}}' {ingest}")
    print(f"  demo receiver: http://127.0.0.1:{RECEIVER_PORT}/stats")
    print("devhost log follows; Ctrl-C stops everything.")
    print()
    sys.stdout.flush()


def follow(path: Path) -> None:
    with open(path, encoding="utf-8", errors="replace") as log:
        log.seek(0, 2)
        while True:
            line = log.readline()
            if line:
                sys.stdout.write(line)
                sys.stdout.flush()
            else:
                time.sleep(0.2)


if __name__ == "__main__":
    main()
