"""Engine surface: one queue trigger per inbound shard hands each message to the delivery engine.

The function returns normally for every decided outcome (delivered, requeued, failure
recorded), so the host deletes the message; it raises only when the engine itself could not
finish (storage unreachable), and then the host's retries and poison queue take over.

INBOUND_SHARDS (docs/scaling.md) is read when the worker imports the app, and one trigger is
registered per shard: `deliver_inbound` on `inbound` (shard 0, always there), `deliver_inbound_<n>`
on `inbound-<n>`. Changing the setting needs a restart, which changing an app setting is on Azure.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import azure.functions as func

from shared.messages.shards import INBOUND_QUEUE, shard_suffix
from shared.services import get_services
from shared.settings import STORAGE_SETTING, inbound_shards_from_environ

bp = func.Blueprint()

#: How many shard triggers this app registered (the same setting the services read).
INBOUND_SHARDS = inbound_shards_from_environ(os.environ)


def trigger_name(shard: int) -> str:
    return "deliver_inbound" if shard == 0 else f"deliver_inbound_{shard}"


def trigger_queue(shard: int) -> str:
    """The binding's queue name: the host resolves %REBOUND_PREFIX% from the app settings."""
    return f"%REBOUND_PREFIX%{INBOUND_QUEUE}{shard_suffix(shard)}"


async def deliver_inbound(msg: func.QueueMessage) -> None:
    await get_services().engine.process_message(msg.get_body(), queue_message_id=msg.id or "")


def register_shard_triggers(blueprint: func.Blueprint, shards: int) -> None:
    """One queue trigger per shard, each its own function (a function has one trigger), all one handler."""
    for shard in range(shards):
        handler = deliver_inbound if shard == 0 else _copy_of(deliver_inbound, trigger_name(shard))
        queue_trigger = blueprint.queue_trigger(
            arg_name="msg", queue_name=trigger_queue(shard), connection=STORAGE_SETTING
        )
        blueprint.function_name(trigger_name(shard))(queue_trigger(handler))


def _copy_of(
    handler: Callable[[func.QueueMessage], Awaitable[None]], name: str
) -> Callable[[func.QueueMessage], Awaitable[None]]:
    # The library keeps per-callable state while decorating: each trigger needs its own function object.
    async def deliver(msg: func.QueueMessage) -> None:
        await handler(msg)

    deliver.__name__ = deliver.__qualname__ = name
    return deliver


register_shard_triggers(bp, INBOUND_SHARDS)
