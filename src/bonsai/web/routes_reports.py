"""Reports: the evaluation reports ``bonsai eval`` and ``bonsai grow`` wrote, and two runs side by
side (their headline score per category, from the same report data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bonsai.records import CATEGORIES
from bonsai.web import views
from bonsai.web.render import render

router = APIRouter()


def _headline(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """category → {metric, value, n} of the evaluated run (the report's primary model)."""
    from bonsai.evaluate.scoring import HEADLINE

    summary = (evaluation.get("summary") or {}).get("summary") or {}
    if not summary:
        return {}
    primary = next(iter(summary)) if "tuned" not in summary else "tuned"
    for key in ("tuned", "new", evaluation["run"]):
        if key in summary:
            primary = key
            break
    out = {}
    for category, cell in (summary.get(primary) or {}).items():
        metric = HEADLINE.get(category, (None, None))[0]
        value = ((cell.get("metrics") or {}).get(metric) or {}).get("mean") if metric else None
        out[category] = {"metric": metric, "value": value, "n": cell.get("n")}
    return out


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, a: str = "", b: str = "") -> HTMLResponse:
    web = request.app.state.web
    garden = web.garden()
    evaluations = views.evaluations(garden.db)
    for e in evaluations:
        try:
            e["path"] = web.inside(e["report"]).relative_to(web.root.resolve()).as_posix()
        except Exception:
            e["path"] = None
    by_id = {str(e["id"]): e for e in evaluations}
    left, right = by_id.get(a), by_id.get(b)
    if left is None and evaluations:
        left = evaluations[0]
    if right is None and len(evaluations) > 1:
        first = evaluations[0] if left is None else left
        right = next((e for e in evaluations if e["run"] != first["run"]), evaluations[1])
    compare = None
    if left:
        hl, hr = _headline(left), _headline(right) if right else {}
        cats = [c for c in CATEGORIES if c in hl or c in hr]
        rows = []
        for c in cats:
            va, vb = (hl.get(c) or {}).get("value"), (hr.get(c) or {}).get("value")
            rows.append(
                {
                    "category": c,
                    "metric": (hl.get(c) or hr.get(c) or {}).get("metric"),
                    "a": va,
                    "b": vb,
                    "na": (hl.get(c) or {}).get("n"),
                    "nb": (hr.get(c) or {}).get("n"),
                    "delta": None if va is None or vb is None else vb - va,
                }
            )
        compare = {"a": left, "b": right, "rows": rows}
    return render(
        request,
        "reports.html",
        active="reports",
        evaluations=evaluations,
        compare=compare,
        runs=[r for r in views.run_rows(garden) if r["status"] == "finished"],
    )
