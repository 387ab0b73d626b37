"""The Functions app: create it and register the blueprints. Nothing else lives here."""

import azure.functions as func

from blueprints import portal_api

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(portal_api.bp)
