"""Jobs on the pages: the list, one job's page, its live events (SSE), stop and retry."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from bonsai.errors import BonsaiError
from bonsai.web import jobs
from bonsai.web.render import render
from bonsai.web.routes_garden import error_page

router = APIRouter()

LOG_TAIL_BYTES = 64 * 1024
"""A page opened on a long job starts with the end of its log."""
EVENT_POLL_S = 0.5


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request) -> HTMLResponse:
    conn = request.app.state.web.garden().db
    return render(request, "jobs.html", active="", jobs=jobs.list_jobs(conn, limit=100))


@router.get("/jobs/pill", response_class=HTMLResponse)
def jobs_pill(request: Request) -> HTMLResponse:
    conn = request.app.state.web.garden().db
    running = jobs.active(conn)
    if not running:
        return HTMLResponse("jobs: idle")
    first = running[0]
    done, total = first.progress.get("done"), first.progress.get("total")
    where = f" {done}/{total}" if done is not None and total else ""
    more = f" +{len(running) - 1} queued" if len(running) > 1 else ""
    from markupsafe import escape

    return HTMLResponse(
        f'<span class="state {escape(first.state)}">{escape(first.title)}{escape(where)}</span>'
        f"{escape(more)}"
    )


@router.get("/jobs/{job_id}.json")
def job_json(request: Request, job_id: int) -> JSONResponse:
    job = jobs.get(request.app.state.web.garden().db, job_id)
    if job is None:
        return JSONResponse({"error": f"no job {job_id}"}, status_code=404)
    return JSONResponse(job.to_dict())


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: int) -> HTMLResponse:
    web = request.app.state.web
    job = jobs.get(web.garden().db, job_id)
    if job is None:
        return error_page(request, BonsaiError(f"no job {job_id}"), 404)
    return render(request, "job.html", active=_active_tab(job.kind), job=job)


def _active_tab(kind: str) -> str:
    return {"eval": "reports"}.get(kind, kind)


@router.post("/jobs/{job_id}/stop", response_class=HTMLResponse)
def job_stop(request: Request, job_id: int) -> HTMLResponse:
    try:
        job = jobs.request_stop(request.app.state.web.garden().db, job_id)
    except BonsaiError as exc:
        return render(request, "message.html", kind="error", text=str(exc))
    text = (
        "Stopping: the job stops at its next safe point (training saves a checkpoint first)."
        if job.state == "running"
        else f"Job {job.id} is {job.state}."
    )
    return render(request, "message.html", kind="ok", text=text)


@router.post("/jobs/{job_id}/retry", response_class=HTMLResponse)
def job_retry(request: Request, job_id: int) -> HTMLResponse:
    """Queue the same job again: a teach run asks only what is not cached, a stopped training
    run is resumed from its checkpoint."""
    conn = request.app.state.web.garden().db
    job = jobs.get(conn, job_id)
    if job is None:
        return render(request, "message.html", kind="error", text=f"no job {job_id}")
    params = dict(job.params)
    title = job.title
    if job.kind == "train" and job.progress.get("run") and job.state == "interrupted":
        params = {"resume": True, "dataset": params.get("dataset"), "run": job.progress["run"]}
        title = f"train: resume {job.progress['run']}"
    new = jobs.enqueue(conn, job.kind, params, title)
    response = HTMLResponse("")
    response.headers["HX-Redirect"] = f"/jobs/{new.id}"
    return response


def _read_new(path: Path, offset: int) -> tuple[str, int]:
    """Text appended to ``path`` since ``offset`` (whole lines only, so UTF-8 stays whole)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "", offset
    if size <= offset:
        return "", size if size < offset else offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(size - offset)
    end = data.rfind(b"\n")
    if end == -1:
        return "", offset
    return data[: end + 1].decode("utf-8", errors="replace"), offset + end + 1


def _run_of(garden: Any, job: jobs.Job) -> str | None:
    """The training run a job's worker started (a grow's new run), found by its process."""
    from bonsai.runs import list_runs

    if not job.worker_pid or not job.started_at:
        return None
    for run in reversed(list_runs(garden)):
        manifest = run.manifest
        if manifest.pid == job.worker_pid and manifest.created_at >= job.started_at:
            return run.id
    return None


def _next_line(path: Path, offset: int) -> int:
    with path.open("rb") as handle:
        handle.seek(offset)
        rest = handle.read(4096)
    at = rest.find(b"\n")
    return offset + at + 1 if at >= 0 else offset


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


@router.get("/jobs/{job_id}/events")
async def job_events(request: Request, job_id: int) -> StreamingResponse:
    """The job as it runs: 'job' (state and progress), 'log' (new lines), 'metric' (a training
    run's metrics, from the start: a reloaded page redraws its curves), then 'end'."""
    web = request.app.state.web
    log_file = jobs.log_path(web.root, job_id)
    try:
        start = max(0, log_file.stat().st_size - LOG_TAIL_BYTES)
    except FileNotFoundError:
        start = 0

    def poll(log_offset: int, metric_offset: int, run_id: str | None):
        job = jobs.get(web.garden().db, job_id)
        text, log_offset = _read_new(log_file, log_offset)
        metrics: list[Any] = []
        run = (job.progress.get("run") if job else None) or run_id
        if job is not None and not run and job.kind in ("train", "grow"):
            run = job.result.get("new_run") or _run_of(web.garden(), job)
        if run:
            chunk, metric_offset = _read_new(
                web.root / "runs" / run / "metrics.jsonl", metric_offset
            )
            for line in chunk.splitlines():
                try:
                    metrics.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return job, text, log_offset, metrics, metric_offset, run

    async def stream():
        log_offset, metric_offset, run_id, last = start, 0, None, None
        if start:
            log_offset = _next_line(log_file, start)
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            job, text, log_offset, metrics, metric_offset, run_id = await run_in_threadpool(
                poll, log_offset, metric_offset, run_id
            )
            if job is None:
                yield _sse("error", {"message": f"no job {job_id}"})
                return
            current = job.to_dict()
            if current != last:
                last = current
                yield _sse("job", current)
            if text:
                yield _sse("log", {"text": text})
            if metrics:
                yield _sse("metric", {"run": run_id, "entries": metrics})
            if not job.active and not text and not metrics:
                yield _sse("end", {"state": job.state})
                return
            await asyncio.sleep(EVENT_POLL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
