"""Jobs surface: start, list, read and cancel retry/delete jobs, and the `jobs` queue runner."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import (
    FAILURES_INTEGRATION,
    RECORD_ID,
    handles_errors,
    json_response,
    query_params,
    read_json,
    route_id,
)
from shared.jobs.models import JobRequest
from shared.services import get_services
from shared.validation import parse_model
from shared.values import utc_now

bp = func.Blueprint()


@bp.function_name("start_job")
@bp.route(route="integrations/{integration}/jobs", methods=["POST"])
@handles_errors
async def start_job(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    request = parse_model(JobRequest, read_json(req))
    job = await get_services().jobs.start(integration, request, now=utc_now())
    return json_response(job, status=202)


@bp.function_name("list_jobs")
@bp.route(route="integrations/{integration}/jobs", methods=["GET"])
@handles_errors
async def list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    jobs = await get_services().jobs.list(integration, now=utc_now())
    return json_response({"items": jobs})


@bp.function_name("get_job")
@bp.route(route="integrations/{integration}/jobs/{job_id}", methods=["GET"])
@handles_errors
async def get_job(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    job_id = route_id(req, "job_id", RECORD_ID)
    query_params(req)
    job = await get_services().jobs.get(integration, job_id, now=utc_now())
    return json_response(job)


@bp.function_name("cancel_job")
@bp.route(route="integrations/{integration}/jobs/{job_id}/cancel", methods=["POST"])
@handles_errors
async def cancel_job(req: func.HttpRequest) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    job_id = route_id(req, "job_id", RECORD_ID)
    query_params(req)
    job = await get_services().jobs.cancel(integration, job_id, now=utc_now())
    return json_response(job, status=202)


@bp.function_name("run_job_page")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%jobs", connection="AzureWebJobsStorage")
async def run_job_page(msg: func.QueueMessage) -> None:
    await get_services().jobs.run_page(msg.get_body(), message_id=msg.id or "", now=utc_now())
