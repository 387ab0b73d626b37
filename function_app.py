"""The Functions app: create it and register the blueprints. Nothing else lives here."""

import azure.functions as func

from blueprints import (
    alerts,
    audit,
    control,
    engine,
    failures,
    identity,
    ingest,
    integrations,
    jobs,
    operability,
    pickup,
    recovery,
    timeline,
    ui,
)

# Every HTTP route states its own level (blueprints/api.py); this is the fallback, the strict one.
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(operability.bp)
app.register_functions(integrations.bp)
app.register_functions(failures.bp)
app.register_functions(ingest.bp)
app.register_functions(engine.bp)
app.register_functions(jobs.bp)
app.register_functions(recovery.bp)
app.register_functions(pickup.bp)
app.register_functions(control.bp)
app.register_functions(alerts.bp)
app.register_functions(ui.bp)
app.register_functions(identity.bp)
app.register_functions(audit.bp)
app.register_functions(timeline.bp)
