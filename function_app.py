"""The Functions app: create it and register the blueprints. Nothing else lives here."""

import azure.functions as func

from blueprints import engine, ingest, jobs, pickup, portal_api, recovery, ui

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(portal_api.bp)
app.register_functions(ingest.bp)
app.register_functions(engine.bp)
app.register_functions(jobs.bp)
app.register_functions(recovery.bp)
app.register_functions(pickup.bp)
app.register_functions(ui.bp)
