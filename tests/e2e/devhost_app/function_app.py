"""A small Functions app that exercises devhost from the outside (tests/e2e/test_devhost.py).

It runs in the devhost process, so it reports what it saw through storage: each
observation is a JSON message on the `<REBOUND_PREFIX>observed` queue, which the test reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import azure.functions as func
from azure.storage.queue.aio import QueueClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

STORAGE_SETTING = "AzureWebJobsStorage"

_running_slow = 0


async def observe(kind: str, **fields: Any) -> None:
    queue_name = os.environ.get("REBOUND_PREFIX", "") + "observed"
    async with QueueClient.from_connection_string(os.environ[STORAGE_SETTING], queue_name) as client:
        await client.send_message(json.dumps({"kind": kind, "at": time.time(), **fields}))


@app.function_name("get_item")
@app.route(route="items/{category:alpha}/{item_id:int}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
    }
    return func.HttpResponse(
        json.dumps(body),
        mimetype="application/json",
        headers={"X-Item-Id": req.route_params["item_id"]},
    )


@app.function_name("hello")
@app.route(route="hello", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def hello(req: func.HttpRequest) -> str:
    return "hello"


@app.function_name("echo")
@app.route(route="echo", methods=["POST"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=201, mimetype="application/octet-stream")


@app.function_name("whoami")
@app.route(route="whoami", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def whoami(req: func.HttpRequest) -> func.HttpResponse:
    """The principal headers that reached the app, and devhost's Easy Auth marker."""
    names = ["X-MS-CLIENT-PRINCIPAL", *(f"X-MS-CLIENT-PRINCIPAL-{part}" for part in ("NAME", "ID", "IDP"))]
    body = {
        "headers": {name: req.headers.get(name) for name in names},
        "token_headers": sorted(name for name in req.headers if name.lower().startswith("x-ms-token-")),
        "authorization": req.headers.get("Authorization"),
        "marker": os.environ.get("DEVHOST_EASY_AUTH"),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.function_name("boom")
@app.route(route="boom", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.function_name("always_fails")
@app.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%failing", connection="AzureWebJobsStorage")
async def always_fails(msg: func.QueueMessage) -> None:
    await observe("failing", dequeue_count=msg.dequeue_count, body=msg.get_body().decode())
    raise RuntimeError("this function always fails")


@app.function_name("slow")
@app.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%slow", connection="AzureWebJobsStorage")
async def slow(msg: func.QueueMessage) -> None:
    global _running_slow
    _running_slow += 1
    try:
        running = _running_slow
        await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "0.5")))
    finally:
        _running_slow -= 1
    await observe("slow", running=running, dequeue_count=msg.dequeue_count, body=msg.get_body().decode())


@app.function_name("tick")
@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%")
async def tick(timer: func.TimerRequest) -> None:
    await observe("tick", past_due=timer.past_due)


@app.function_name("on_start")
@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
async def on_start(timer: func.TimerRequest) -> None:
    await observe("startup", past_due=timer.past_due)
