"""Jobs surface: start, list, read and cancel retry/delete jobs, and the `jobs` queue runner."""

from __future__ import annotations

import azure.functions as func

from blueprints.api import Body, HttpApi, Reply
from blueprints.http import FAILURES_INTEGRATION, RECORD_ID, json_response, query_params, read_json, route_id
from blueprints.schemas import (
    BAD_BODY,
    BAD_PARAMETER,
    FAILURE_INTEGRATION,
    INVALID,
    JOB_ID,
    NO_JOB,
    NOT_JSON,
    Error,
    JobList,
)
from shared.audit.models import Actor
from shared.auth import Principal, Role, RouteKind
from shared.jobs.models import Job, JobRequest
from shared.services import get_services
from shared.validation import parse_model
from shared.values import utc_now

bp = func.Blueprint()
api = HttpApi(bp, tag="jobs")

# `# fmt: skip` keeps name, route, method, kind and role on one line: they are read together.


@api.route(
    "start_job", "integrations/{integration}/jobs", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Start a retry or delete job",
    params=(FAILURE_INTEGRATION,),
    body=Body("what to do with which failures", JobRequest),
    responses={
        202: Reply("accepted; runs page by page", Job),
        400: BAD_BODY,
        404: Reply("the integration has neither a config nor failures", Error),
        409: Reply("a job is already active; `details.active_job_id` names it", Error),
        413: Reply("the body is over 64 KiB", Error),
        415: NOT_JSON,
        422: INVALID,
    },
)  # fmt: skip
async def start_job(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    request = parse_model(JobRequest, read_json(req))
    job = await get_services().jobs.start(integration, request, actor=Actor.of(caller), now=utc_now())
    return json_response(job, status=202)


@api.route(
    "list_jobs", "integrations/{integration}/jobs", "GET", kind=RouteKind.API, role=Role.READER,
    summary="The integration's jobs",
    params=(FAILURE_INTEGRATION,),
    responses={200: Reply("", JobList), 400: BAD_PARAMETER},
)  # fmt: skip
async def list_jobs(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    query_params(req)
    return json_response(JobList(items=await get_services().jobs.list(integration, now=utc_now())))


@api.route(
    "get_job", "integrations/{integration}/jobs/{job_id}", "GET", kind=RouteKind.API, role=Role.READER,
    summary="A job's status",
    params=(FAILURE_INTEGRATION, JOB_ID),
    responses={200: Reply("the job", Job), 400: BAD_PARAMETER, 404: NO_JOB},
)  # fmt: skip
async def get_job(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    job_id = route_id(req, "job_id", RECORD_ID)
    query_params(req)
    return json_response(await get_services().jobs.get(integration, job_id, now=utc_now()))


@api.route(
    "cancel_job", "integrations/{integration}/jobs/{job_id}/cancel", "POST", kind=RouteKind.API, role=Role.OPERATOR,
    summary="Cancel a job (it stops at the next page boundary)",
    params=(FAILURE_INTEGRATION, JOB_ID),
    responses={
        202: Reply("cancel requested", Job),
        400: BAD_PARAMETER,
        404: NO_JOB,
        409: Reply("the job has already finished", Error),
    },
)  # fmt: skip
async def cancel_job(req: func.HttpRequest, caller: Principal) -> func.HttpResponse:
    integration = route_id(req, "integration", FAILURES_INTEGRATION)
    job_id = route_id(req, "job_id", RECORD_ID)
    query_params(req)
    job = await get_services().jobs.cancel(integration, job_id, actor=Actor.of(caller), now=utc_now())
    return json_response(job, status=202)


@bp.function_name("run_job_page")
@bp.queue_trigger(arg_name="msg", queue_name="%REBOUND_PREFIX%jobs", connection="AzureWebJobsStorage")
async def run_job_page(msg: func.QueueMessage) -> None:
    await get_services().job_runner.run_page(msg.get_body(), message_id=msg.id or "", now=utc_now())
