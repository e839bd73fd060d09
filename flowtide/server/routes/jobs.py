"""``/api/jobs``: enqueue a standalone function, look at, retry or delete a job."""

from __future__ import annotations

from fastapi import APIRouter

from flowtide._util.durations import parse_duration
from flowtide.engine.orchestrator import Conflict
from flowtide.engine.runs import NotFound
from flowtide.server.deps import ServiceDep
from flowtide.server.errors import ApiError
from flowtide.server.models import EnqueueJob
from flowtide.server.responses import JSONResponse, json_response

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=201, summary="Enqueue a standalone function")
async def enqueue(body: EnqueueJob, service: ServiceDep) -> JSONResponse:
    if body.delay is not None:
        try:
            parse_duration(body.delay)
        except (TypeError, ValueError) as exc:
            error = {"loc": ["body", "delay"], "msg": str(exc), "type": "duration"}
            raise ApiError(
                422, "validation_error", "the request is invalid", errors=[error]
            ) from None
    job_id = await service.enqueue(body.function, body.input, delay=body.delay, key=body.key)
    return json_response({"job_id": job_id}, 201)


@router.get("/{job_id}", summary="One job")
async def get_job(job_id: str, service: ServiceDep) -> JSONResponse:
    job = await service.backend.get_job(job_id)
    if job is None:
        raise NotFound(f"unknown job {job_id!r}")
    return json_response(job.to_json())


@router.post("/{job_id}/retry", summary="Run a failed or canceled job again; 409 otherwise")
async def retry(job_id: str, service: ServiceDep) -> JSONResponse:
    await service.retry_job(job_id)
    job = await service.backend.get_job(job_id)
    return json_response({"job_id": job_id, "state": job.state if job else None})


@router.delete("/{job_id}", summary="Delete a job that is not active; 409 if it is")
async def delete(job_id: str, service: ServiceDep) -> JSONResponse:
    try:
        deleted = await service.backend.delete_job(job_id)
    except ValueError as exc:
        raise Conflict(str(exc)) from None
    if not deleted:
        raise NotFound(f"unknown job {job_id!r}")
    return json_response({"job_id": job_id, "deleted": True})
