"""What a job writes to the audit trail: its start (the starter's), a cancel (the canceller's), its end
(the starter's again, or Rebound's for a job from before jobs named their creator)."""

from __future__ import annotations

from shared.audit.models import SYSTEM_ACTOR, Actor, AuditAction
from shared.audit.service import AuditTrail
from shared.jobs.models import Job, selection_summary, target_summary


async def record_start(audit: AuditTrail, job: Job, actor: Actor) -> None:
    details = {"action": job.action.value, "selection": selection_summary(job.selection), "total": job.total}
    if job.target is not None:
        details["target"] = target_summary(job.target)
    await audit.record(actor, AuditAction.JOB_START, integration=job.integration, target=job.id, details=details)


async def record_finish(audit: AuditTrail, job: Job) -> None:
    details = {
        "state": job.state.value, "total": job.total, "processed": job.processed, "succeeded": job.succeeded,
        "failed": job.failed, "skipped": job.skipped, "last_error": job.last_error,
    }  # fmt: skip
    await audit.record(
        job.created_by or SYSTEM_ACTOR, AuditAction.JOB_FINISH, integration=job.integration, target=job.id,
        details=details,
    )  # fmt: skip
