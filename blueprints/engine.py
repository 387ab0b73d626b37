"""Engine surface: the queue trigger on `inbound` hands each message to the delivery engine.

The function returns normally for every decided outcome (delivered, requeued, failure
recorded), so the host deletes the message; it raises only when the engine itself could not
finish (storage unreachable), and then the host's retries and poison queue take over.
"""

from __future__ import annotations

import azure.functions as func

from shared.services import get_services

bp = func.Blueprint()


@bp.function_name("deliver_inbound")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%inbound", connection="AzureWebJobsStorage")
async def deliver_inbound(msg: func.QueueMessage) -> None:
    await get_services().engine.process_message(msg.get_body(), queue_message_id=msg.id or "")
