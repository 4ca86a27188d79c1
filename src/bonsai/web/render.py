"""Templates: Jinja2 with autoescaping on, so every value a page shows is text, never markup."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bonsai import __version__

NAV = (
    ("garden", "/", "Garden"),
    ("records", "/records", "Records"),
    ("teach", "/teach", "Teach"),
    ("train", "/train", "Train"),
    ("chat", "/chat", "Chat"),
    ("feedback", "/feedback", "Feedback"),
    ("grow", "/grow", "Grow"),
    ("reports", "/reports", "Reports"),
)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cut(text: Any, size: int = 160) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= size else text[: size - 1] + "…"


def _duration(job: Any) -> str:
    start = job.started_at
    if not start:
        return ""
    end = job.finished_at or time.time()
    seconds = int(end - start)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bonsai.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["num"] = _num
    env.filters["cut"] = _cut
    env.filters["duration"] = _duration
    # For data handed to scripts inside <script type="application/json">: '<' is escaped, so
    # a value cannot close the element.
    env.filters["tojson_safe"] = lambda value: Markup(
        json.dumps(value, ensure_ascii=False, default=str)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    env.globals["nav"] = NAV
    env.globals["version"] = __version__
    return env


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    web = request.app.state.web
    context.setdefault("active", "")
    html = environment().get_template(name).render(request=request, csrf=web.csrf, **context)
    return HTMLResponse(html, status_code=status_code)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
