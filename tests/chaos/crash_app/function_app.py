"""The real Rebound app with one fault injected, for chaos tests only.

Every surface is the real blueprint, except `deliver_inbound`, which first crashes (raises)
on a message whose body names a flag file that exists: a function that keeps failing on a
message until "the crash cause is gone" (the test deletes the file). Everything after the
crash (host retries, poison queue, recovery sweep, catastrophic give-up, portal API) is the
product's own code.
"""

import os
from pathlib import Path

import azure.functions as func

# devhost runs from the project root, so the product's packages import as usual.
from blueprints import failures, ingest, integrations, jobs, operability, recovery
from shared.services import get_services

crash = func.Blueprint()


@crash.function_name("deliver_inbound")
@crash.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%inbound", connection="AzureWebJobsStorage")
async def deliver_inbound(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    flags = os.environ.get("CHAOS_CRASH_FLAG_DIR", "")
    if flags and b"crash-flag:" in body:
        name = body.split(b"crash-flag:")[1].split(b'"')[0].split(b"\\")[0].decode()
        if (Path(flags) / name).exists():
            raise RuntimeError(f"injected crash while {name} exists")
    await get_services().engine.process_message(body, queue_message_id=msg.id or "")


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (operability.bp, integrations.bp, failures.bp, ingest.bp, jobs.bp, recovery.bp, crash):
    app.register_functions(blueprint)
