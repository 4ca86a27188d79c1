"""The Records page: browse, search, filter, edit, add, delete, undo, import, export, check.

Every change is one changeset of :class:`~bonsai.store.RecordStore` (history and undo exactly as
``bonsai data history|undo``); import and export call the CLI's own functions.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from bonsai.curate.formats import EXPORT_FORMATS, EXPORT_SUFFIXES, IMPORT_FORMATS
from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, EDITABLE_FIELDS, Record, content_id
from bonsai.store import Change, RecordStore
from bonsai.web import views
from bonsai.web.render import is_htmx, render
from bonsai.web.state import MB

router = APIRouter()

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _query(request: Request, datasets: list[str]) -> views.RecordQuery:
    p = request.query_params
    dataset = p.get("dataset") or (datasets[0] if datasets else "")
    try:
        page = int(p.get("page") or 1)
    except ValueError:
        page = 1
    return views.RecordQuery(
        dataset=dataset,
        q=p.get("q", ""),
        category=p.get("category", ""),
        language=p.get("language", ""),
        split=p.get("split", ""),
        shard=p.get("shard", ""),
        finding=p.get("finding", ""),
        page=page,
    )


def findings_for(web: Any, dataset: str) -> dict[str, list[dict[str, Any]]] | None:
    """The latest ``data check`` findings of the dataset by record id, if it was checked since
    its last change (None otherwise)."""
    conn = web.garden().db
    key = (dataset, views.latest_change(conn, dataset))
    return web.check_cache.get(key)


def run_check(web: Any, dataset: str) -> dict[str, list[dict[str, Any]]]:
    from bonsai.curate.check import check_records

    garden = web.garden()
    records = RecordStore(garden.db).records(dataset)
    report = check_records(records, None, dataset=dataset)
    by_record: dict[str, list[dict[str, Any]]] = {}
    for finding in report.findings:
        for record_id in finding.record_ids:
            others = [r for r in finding.record_ids if r != record_id]
            by_record.setdefault(record_id, []).append(
                {
                    "severity": finding.severity,
                    "code": finding.code,
                    "message": finding.message,
                    "others": others[:8],
                }
            )
    for items in by_record.values():
        items.sort(key=lambda f: SEVERITY_ORDER.get(f["severity"], 3))
    web.check_cache[(dataset, views.latest_change(garden.db, dataset))] = by_record
    return by_record


def _facets(web: Any, dataset: str) -> dict[str, list[str]]:
    """The filter menus' values, kept until the dataset changes (four scans of 16k rows)."""
    conn = web.garden().db
    key = ("facets", dataset, views.latest_change(conn, dataset))
    if key not in web.check_cache:
        web.check_cache[key] = views.facets(conn, dataset)
    return web.check_cache[key]


def _table(request: Request, query: views.RecordQuery, **extra: Any) -> dict[str, Any]:
    web = request.app.state.web
    conn = web.garden().db
    findings = findings_for(web, query.dataset) if query.dataset else None
    only = None
    if query.finding and findings is not None:
        only = {
            rid
            for rid, items in findings.items()
            if query.finding == "any" or any(f["code"] == query.finding for f in items)
        }
    page = views.query_records(conn, query, only_ids=only)
    codes = sorted({f["code"] for items in (findings or {}).values() for f in items})
    return {
        "query": query,
        "page": page,
        "findings": findings,
        "finding_codes": codes,
        "facets": _facets(web, query.dataset) if query.dataset else {},
        **extra,
    }


@router.get("/records", response_class=HTMLResponse)
def records_page(request: Request) -> HTMLResponse:
    web = request.app.state.web
    store = RecordStore(web.garden().db)
    datasets = store.dataset_names()
    query = _query(request, datasets)
    context = _table(request, query)
    if is_htmx(request) and request.headers.get("hx-target") == "records-table":
        return render(request, "records_table.html", **context)
    history = store.history(query.dataset)[-8:][::-1] if query.dataset in datasets else []
    return render(
        request,
        "records.html",
        active="records",
        datasets=datasets,
        history=history,
        import_formats=IMPORT_FORMATS,
        export_formats=EXPORT_FORMATS,
        categories=CATEGORIES,
        **context,
    )


def _message(request: Request, text: str, kind: str = "ok", **headers: str) -> HTMLResponse:
    response = render(request, "message.html", kind=kind, text=text)
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _form_record(form: Any, base: Record) -> Record:
    values: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        if name in form:
            value = str(form.get(name) or "")
            value = value.replace("\r\n", "\n")
            if name in ("instruction", "input", "output"):
                values[name] = value
            else:
                values[name] = value.strip() or None
    record = replace(base, **values)
    if record.category is not None and record.category not in CATEGORIES:
        raise BonsaiError(
            f"unknown category '{record.category}'",
            field="category",
            hint=f"one of: {', '.join(CATEGORIES)}",
        )
    if not record.instruction.strip():
        raise BonsaiError("the instruction is empty", field="instruction")
    # A person's edit is a person's label.
    if record.category != base.category:
        record = replace(record, category_source="human" if record.category else None)
        record = replace(record, category_confidence=None)
    if record.language != base.language:
        record = replace(record, language_source="human" if record.language else None)
    return record


@router.get("/records/row", response_class=HTMLResponse)
def record_row(request: Request, dataset: str, id: str, edit: int = 0) -> HTMLResponse:
    web = request.app.state.web
    record = RecordStore(web.garden().db).get(dataset, id)
    if record is None:
        return _message(request, f"no record '{id}' in {dataset}", "error")
    findings = (findings_for(web, dataset) or {}).get(id, [])
    template = "record_edit.html" if edit else "record_row.html"
    return render(
        request, template, dataset=dataset, r=record, findings=findings, categories=CATEGORIES
    )


@router.post("/records/save", response_class=HTMLResponse)
async def record_save(request: Request) -> HTMLResponse:
    web = request.app.state.web
    form = await request.form()
    dataset, record_id = str(form.get("dataset") or ""), str(form.get("id") or "")
    store = RecordStore(web.garden().db)
    before = store.get(dataset, record_id)
    if before is None:
        return _message(request, f"no record '{record_id}' in {dataset}", "error")
    try:
        after = _form_record(form, before)
    except BonsaiError as exc:
        response = render(
            request, "record_edit.html", dataset=dataset, r=before, findings=[],
            categories=CATEGORIES, error=str(exc),
        )  # fmt: skip
        return response
    changed = [n for n in EDITABLE_FIELDS if getattr(before, n) != getattr(after, n)]
    change_id = store.apply(
        dataset,
        [Change(before, after)],
        kind="edit",
        description=f"edit {record_id} ({', '.join(changed)}) in the web page",
    )
    response = render(
        request,
        "record_row.html",
        dataset=dataset,
        r=after,
        findings=(findings_for(web, dataset) or {}).get(record_id, []),
        saved=change_id,
    )
    response.headers["HX-Trigger"] = "history-changed"
    return response


@router.post("/records/add", response_class=HTMLResponse)
async def record_add(request: Request) -> HTMLResponse:
    web = request.app.state.web
    form = await request.form()
    dataset = str(form.get("dataset") or "").strip()
    if not dataset:
        return _message(request, "which dataset? type a name", "error")
    instruction = str(form.get("instruction") or "")
    base = Record(id="new", instruction=instruction)
    try:
        record = _form_record(form, base)
    except BonsaiError as exc:
        return _message(request, str(exc), "error")
    record_id = str(form.get("id") or "").strip() or content_id(
        record.instruction, record.input, record.output
    )
    record = replace(record, id=record_id)
    store = RecordStore(web.garden().db)
    if dataset in store.dataset_names() and store.get(dataset, record_id) is not None:
        return _message(request, f"a record '{record_id}' is already in {dataset}", "error")
    change_id = store.apply(
        dataset,
        [Change(None, record)],
        kind="edit",
        description=f"add {record_id} in the web page",
    )
    return _message(
        request,
        f"Added {record_id} to {dataset} as change #{change_id}.",
        "ok",
        **{"HX-Trigger": "records-changed"},
    )


@router.post("/records/delete", response_class=HTMLResponse)
async def record_delete(request: Request) -> HTMLResponse:
    web = request.app.state.web
    form = await request.form()
    dataset, record_id = str(form.get("dataset") or ""), str(form.get("id") or "")
    store = RecordStore(web.garden().db)
    before = store.get(dataset, record_id)
    if before is None:
        return _message(request, f"no record '{record_id}' in {dataset}", "error")
    change_id = store.apply(
        dataset,
        [Change(before, None)],
        kind="edit",
        description=f"delete {record_id} in the web page",
    )
    return _message(
        request,
        f"Deleted {record_id} (change #{change_id}; Undo brings it back).",
        "ok",
        **{"HX-Trigger": "history-changed"},
    )


@router.post("/records/undo", response_class=HTMLResponse)
async def record_undo(request: Request) -> HTMLResponse:
    web = request.app.state.web
    form = await request.form()
    dataset = str(form.get("dataset") or "")
    change = str(form.get("change") or "").strip()
    store = RecordStore(web.garden().db)
    try:
        undo_id = store.undo(dataset, int(change) if change.isdigit() else None)
    except BonsaiError as exc:
        return _message(request, str(exc), "error")
    (undone,) = [c for c in store.history(dataset) if c.undone_by == undo_id]
    return _message(
        request,
        f"Undid change #{undone.id} ({undone.description}): {undone.records:,} records restored."
        f" Recorded as change #{undo_id}.",
        "ok",
        **{"HX-Trigger": "records-changed"},
    )


@router.get("/records/history", response_class=HTMLResponse)
def record_history(request: Request, dataset: str) -> HTMLResponse:
    store = RecordStore(request.app.state.web.garden().db)
    history = store.history(dataset)[-8:][::-1] if dataset in store.dataset_names() else []
    return render(request, "records_history.html", dataset=dataset, history=history)


@router.post("/records/check", response_class=HTMLResponse)
async def record_check(request: Request) -> HTMLResponse:
    from starlette.concurrency import run_in_threadpool

    web = request.app.state.web
    form = await request.form()
    dataset = str(form.get("dataset") or "")
    try:
        by_record = await run_in_threadpool(run_check, web, dataset)
    except BonsaiError as exc:
        return _message(request, str(exc), "error")
    n = sum(len(v) for v in by_record.values())
    text = (
        f"Checked {dataset}: {len(by_record):,} records have {n:,} findings; "
        "filter by finding to see them."
        if by_record
        else f"Checked {dataset}: no findings, the dataset is clean."
    )
    return _message(request, text, "ok", **{"HX-Trigger": "records-changed"})


# -- import and export ----------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[^\w.\-]+")


@router.post("/records/import", response_class=HTMLResponse)
async def record_import(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from bonsai.curate.importer import import_file

    web = request.app.state.web
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return _message(request, "the upload has no length; send it from the page", "error")
    if int(length) > web.max_upload_bytes:
        limit = web.max_upload_bytes // MB
        return _message(
            request,
            f"the file is larger than the upload limit ({limit} MB); "
            "import it with `bonsai data import FILE` instead",
            "error",
        )
    form = await request.form(max_files=1, max_fields=20)
    upload = form.get("file")
    dataset = str(form.get("dataset") or "").strip()
    fmt = str(form.get("format") or "").strip() or None
    if upload is None or isinstance(upload, str) or not upload.filename:
        return _message(request, "choose a file to import", "error")
    name = _SAFE_NAME.sub("_", Path(upload.filename).name) or "upload"
    folder = Path(tempfile.mkdtemp(prefix=".upload-", dir=web.root))
    try:
        path = folder / name
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out)
        delete_absent, dry_run = bool(form.get("delete_absent")), bool(form.get("dry_run"))

        def run() -> Any:
            return import_file(web.garden(), path, dataset, fmt, None, delete_absent, dry_run)

        try:
            report = await run_in_threadpool(run)
        except BonsaiError as exc:
            if exc.file is not None and Path(str(exc.file)).name == name:
                exc.file = upload.filename  # the person's file name, not our temporary copy
            return _message(request, f"Import refused: {exc}", "error")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    verb = "Would import" if report.dry_run else "Imported"
    text = (
        f"{verb} {upload.filename} ({report.format}, {report.records:,} records) into "
        f"{dataset}: {report.added:,} added, {report.changed:,} changed, "
        f"{report.unchanged:,} unchanged, {report.absent:,} absent from the file"
        + (f", {report.deleted:,} deleted" if report.deleted else "")
        + (f". Recorded as change #{report.changeset_id}." if report.changeset_id else ".")
    )
    for note in report.notes:
        text += f" Note: {note}"
    return _message(request, text, "ok", **{"HX-Trigger": "records-changed"})


@router.get("/records/export")
def record_export(
    request: Request, dataset: str, format: str = "jsonl", split: str = "", shard: str = ""
) -> Response:
    from bonsai.curate.exporter import ExportArgs, run_export

    web = request.app.state.web
    garden = web.garden()
    try:
        args = ExportArgs(
            dataset,
            format,
            None,
            split or None,
            int(shard) if shard.strip().isdigit() else None,
        )
        path, _ = run_export(garden, args)
    except BonsaiError as exc:
        return _message(request, str(exc), "error")
    path = web.inside(path)
    suffix = EXPORT_SUFFIXES[format]
    name = path.name if path.name.endswith(suffix) else path.stem + suffix
    return FileResponse(path, filename=name, media_type="application/octet-stream")
