"""Jobs surface: start, list, read and cancel retry/delete jobs, and the `jobs` queue runner."""

from __future__ import annotations

import azure.functions as func

from blueprints.http import handles_errors, json_response, read_json
from shared.models import JobRequest, utc_now
from shared.services import get_services
from shared.validation import parse_model

bp = func.Blueprint()


@bp.function_name("start_job")
@bp.route(route="integrations/{integration}/jobs", methods=["POST"])
@handles_errors
async def start_job(req: func.HttpRequest) -> func.HttpResponse:
    request = parse_model(JobRequest, read_json(req))
    job = await get_services().jobs.start(req.route_params["integration"], request, now=utc_now())
    return json_response(job, status=202)


@bp.function_name("list_jobs")
@bp.route(route="integrations/{integration}/jobs", methods=["GET"])
@handles_errors
async def list_jobs(req: func.HttpRequest) -> func.HttpResponse:
    jobs = await get_services().jobs.list(req.route_params["integration"], now=utc_now())
    return json_response({"items": jobs})


@bp.function_name("get_job")
@bp.route(route="integrations/{integration}/jobs/{job_id}", methods=["GET"])
@handles_errors
async def get_job(req: func.HttpRequest) -> func.HttpResponse:
    job = await get_services().jobs.get(req.route_params["integration"], req.route_params["job_id"], now=utc_now())
    return json_response(job)


@bp.function_name("cancel_job")
@bp.route(route="integrations/{integration}/jobs/{job_id}/cancel", methods=["POST"])
@handles_errors
async def cancel_job(req: func.HttpRequest) -> func.HttpResponse:
    job = await get_services().jobs.cancel(req.route_params["integration"], req.route_params["job_id"], now=utc_now())
    return json_response(job, status=202)


@bp.function_name("run_job_page")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%jobs", connection="AzureWebJobsStorage")
async def run_job_page(msg: func.QueueMessage) -> None:
    await get_services().jobs.run_page(msg.get_body(), message_id=msg.id or "", now=utc_now())
