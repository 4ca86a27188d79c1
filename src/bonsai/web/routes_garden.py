"""The Garden page (what is here, what to do next), notes, and files of the garden."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from bonsai.errors import BonsaiError
from bonsai.web import jobs, views
from bonsai.web.render import render

router = APIRouter()


def error_page(request: Request, exc: BonsaiError, status: int = 400) -> HTMLResponse:
    return render(request, "error.html", status_code=status, message=str(exc), active="")


@router.get("/", response_class=HTMLResponse)
def garden_page(request: Request) -> HTMLResponse:
    web = request.app.state.web
    garden = web.garden()
    conn = garden.db
    datasets = views.dataset_summaries(conn)
    runs = views.run_rows(garden)
    pending = views.pending_counts(conn)
    turns = views.chat_turn_count(conn)
    step = views.next_step(datasets, runs, turns, sum(pending.values()))
    return render(
        request,
        "garden.html",
        active="garden",
        garden=garden,
        datasets=datasets,
        runs=runs,
        notes=views.notes(conn),
        pending=pending,
        pending_total=sum(pending.values()),
        turns=turns,
        step=step,
        jobs=jobs.list_jobs(conn, limit=8),
    )


@router.get("/notes/view", response_class=HTMLResponse)
def note_page(request: Request, source: str, chunk: int | None = None) -> HTMLResponse:
    """A note of the knowledge base, as retrieval sees it (its chunks), the cited one marked."""
    conn = request.app.state.web.garden().db
    doc = conn.execute(
        "SELECT id, source, title FROM knowledge_documents WHERE source = ?", (source,)
    ).fetchone()
    if doc is None:
        return error_page(request, BonsaiError(f"no note '{source}' in the knowledge base"), 404)
    chunks = conn.execute(
        "SELECT id, heading, text FROM knowledge_chunks WHERE document_id = ? ORDER BY ordinal",
        (doc[0],),
    ).fetchall()
    return render(
        request,
        "note.html",
        active="garden",
        source=doc[1],
        title=doc[2],
        chunks=[{"id": c[0], "heading": c[1], "text": c[2]} for c in chunks],
        marked=chunk,
    )


@router.get("/files")
def garden_file(request: Request, path: str):
    """A file of the garden (an export, a plot, a report), never one outside it."""
    web = request.app.state.web
    try:
        resolved = web.inside(path)
    except BonsaiError as exc:
        return error_page(request, exc, 403)
    if not resolved.is_file():
        return error_page(request, BonsaiError("no such file in the garden", file=path), 404)
    media, _ = mimetypes.guess_type(resolved.name)
    inline = media in ("image/png", "image/svg+xml", "text/html", "application/json", "text/plain")
    headers = {}
    if media == "text/html":
        # A report is self-contained: its own styles and script, nothing fetched.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; frame-ancestors 'self'"
        )
    return FileResponse(
        resolved,
        media_type=media or "application/octet-stream",
        filename=None if inline else resolved.name,
        headers=headers,
    )
