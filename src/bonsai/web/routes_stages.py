"""Teach, Train (runs too) and Grow: forms that queue jobs, and what the jobs made."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bonsai.errors import BonsaiError
from bonsai.store import RecordStore
from bonsai.web import jobs, views
from bonsai.web.render import render
from bonsai.web.routes_garden import error_page

if TYPE_CHECKING:
    from bonsai.garden import Garden
    from bonsai.grow.feedback_to_records import FeedbackPlan

router = APIRouter()

TEACH_FIELDS = (
    "dataset", "backend", "base_url", "model", "api_key_env", "only_missing", "limit",
    "language_policy", "concurrency",
)  # fmt: skip
TRAIN_FIELDS = ("dataset", "layout", "from_run", "shard", "epochs", "max_steps", "lr", "lora_rank")
GROW_FIELDS = (
    "dataset", "steps", "epochs", "max_val_loss_increase", "judge_creative",
    "experiences_as_records", "dismiss_reviews", "eval_max_items", "eval_max_probes",
    "eval_max_new_tokens",
)  # fmt: skip


def _params(form: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: str(form.get(n)).strip() for n in names if form.get(n) not in (None, "")}


def _queued(job: jobs.Job) -> Response:
    response = HTMLResponse("")
    response.headers["HX-Redirect"] = f"/jobs/{job.id}"
    return response


def _refuse(request: Request, text: str) -> HTMLResponse:
    return render(request, "message.html", kind="error", text=text)


# -- teach ----------------------------------------------------------------------------------------


@router.get("/teach", response_class=HTMLResponse)
def teach_page(request: Request) -> HTMLResponse:
    garden = request.app.state.web.garden()
    return render(
        request,
        "teach.html",
        active="teach",
        datasets=views.dataset_summaries(garden.db),
        teacher=garden.config.teacher,
        jobs=jobs.list_jobs(garden.db, kind="teach", limit=10),
    )


@router.post("/teach", response_class=HTMLResponse)
async def teach_start(request: Request) -> Response:
    from bonsai.web.tasks import teach_args

    web = request.app.state.web
    params = _params(await request.form(), TEACH_FIELDS)
    try:
        args = teach_args(web.garden(), params)  # the same checks as the CLI, before queueing
    except BonsaiError as exc:
        return _refuse(request, str(exc))
    title = f"teach {args.dataset} ({args.backend}{' ' + args.model if args.model else ''})"
    return _queued(jobs.enqueue(web.garden().db, "teach", params, title))


# -- train and runs -------------------------------------------------------------------------------


@router.get("/train", response_class=HTMLResponse)
def train_page(request: Request) -> HTMLResponse:
    garden = request.app.state.web.garden()
    runs = views.run_rows(garden)
    return render(
        request,
        "train.html",
        active="train",
        datasets=RecordStore(garden.db).dataset_names(),
        runs=runs,
        finished=[r for r in runs if r["status"] == "finished"],
        unfinished=[r for r in runs if r["status"] in ("interrupted", "failed") and not r["live"]],
        jobs=jobs.list_jobs(garden.db, kind="train", limit=10),
    )


@router.post("/train/preview", response_class=HTMLResponse)
async def train_preview(request: Request) -> HTMLResponse:
    from bonsai.web.tasks import train_preview as preview

    web = request.app.state.web
    params = _params(await request.form(), TRAIN_FIELDS)
    try:
        text = await run_in_threadpool(lambda: preview(web.garden(), params))
    except BonsaiError as exc:
        return _refuse(request, str(exc))
    return render(request, "preview.html", text=text)


@router.post("/train", response_class=HTMLResponse)
async def train_start(request: Request) -> Response:
    web = request.app.state.web
    form = await request.form()
    if form.get("resume"):
        run = str(form.get("run") or "")
        params = {"resume": True, "run": run, "dataset": str(form.get("dataset") or "") or None}
        return _queued(jobs.enqueue(web.garden().db, "train", params, f"train: resume {run}"))
    params = _params(form, TRAIN_FIELDS)
    if not params.get("dataset"):
        return _refuse(request, "which dataset? choose one")
    budget = (
        f"{params['max_steps']} steps" if params.get("max_steps")
        else f"{params['epochs']} epochs" if params.get("epochs") else "derived"
    )  # fmt: skip
    title = f"train {params['dataset']} ({budget})"
    return _queued(jobs.enqueue(web.garden().db, "train", params, title))


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return train_page(request)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> HTMLResponse:
    from bonsai.runs import load_run

    web = request.app.state.web
    garden = web.garden()
    try:
        run = load_run(garden, run_id)
    except BonsaiError as exc:
        return error_page(request, exc, 404)
    promoted = garden.db.execute(
        "SELECT promoted FROM training_runs WHERE id = ?", (run.id,)
    ).fetchone()
    files = sorted(
        p.relative_to(garden.root).as_posix()
        for p in run.dir.rglob("*")
        if p.is_file() and "checkpoint" not in p.parts
    )
    adapter = run.adapter_dir.is_dir()
    evals = [e for e in views.evaluations(garden.db) if e["run"] == run.id]
    return render(
        request,
        "run.html",
        active="train",
        run=run,
        manifest=json.dumps(run.manifest.to_dict(), ensure_ascii=False, indent=2, default=str),
        promoted=bool(promoted and promoted[0]),
        files=files,
        adapter=adapter,
        evals=evals,
        others=[r["id"] for r in views.run_rows(garden) if r["id"] != run.id],
    )


@router.get("/runs/{run_id}/metrics")
def run_metrics(request: Request, run_id: str) -> JSONResponse:
    from bonsai.runs import load_run, read_metrics

    try:
        run = load_run(request.app.state.web.garden(), run_id)
    except BonsaiError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse({"run": run.id, "entries": read_metrics(run)})


@router.post("/runs/{run_id}/promote", response_class=HTMLResponse)
def run_promote(request: Request, run_id: str) -> HTMLResponse:
    from bonsai.runs import load_run, promote

    garden = request.app.state.web.garden()
    try:
        promote(garden, load_run(garden, run_id))
    except BonsaiError as exc:
        return _refuse(request, str(exc))
    response = render(
        request, "message.html", kind="ok", text=f"{run_id} is promoted: chat and serve use it."
    )
    response.headers["HX-Refresh"] = "true"
    return response


@router.post("/eval", response_class=HTMLResponse)
async def eval_start(request: Request) -> Response:
    web = request.app.state.web
    form = await request.form()
    run = str(form.get("run") or "").strip()
    if not run:
        return _refuse(request, "which run?")
    against = [str(a) for a in form.getlist("against") if str(a).strip()]
    params: dict[str, Any] = {"run": run, "against": against}
    for name in ("max_items", "max_probes", "max_new_tokens"):
        if form.get(name) not in (None, ""):
            params[name] = str(form.get(name))
    return _queued(jobs.enqueue(web.garden().db, "eval", params, f"eval {run}"))


# -- grow -----------------------------------------------------------------------------------------


def grow_plan(garden: Garden) -> FeedbackPlan:
    """What the pending feedback would become now (``bonsai grow --dry-run``), or the error."""
    from bonsai.grow.feedback_to_records import plan_feedback

    return plan_feedback(garden, "preview")


@router.get("/grow", response_class=HTMLResponse)
def grow_page(request: Request) -> HTMLResponse:
    from bonsai.grow.pipeline import current_run
    from bonsai.grow.rounds import list_rounds

    garden = request.app.state.web.garden()
    current = current_run(garden)
    rounds = list(reversed(list_rounds(garden.db)))[:10]
    return render(
        request,
        "grow.html",
        active="grow",
        current=current.id if current else "base",
        datasets=RecordStore(garden.db).dataset_names(),
        pending=views.pending_counts(garden.db),
        rounds=rounds,
        jobs=jobs.list_jobs(garden.db, kind="grow", limit=5),
    )


@router.post("/grow", response_class=HTMLResponse)
async def grow_start(request: Request) -> Response:
    web = request.app.state.web
    params = _params(await request.form(), GROW_FIELDS)
    title = "grow" + (f" {params['dataset']}" if params.get("dataset") else "")
    return _queued(jobs.enqueue(web.garden().db, "grow", params, title))
