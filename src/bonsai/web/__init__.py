"""``bonsai ui``: the garden in a browser, on the same server as the OpenAI-compatible API.

- :mod:`bonsai.web.security`: the access token off loopback, CSRF and cross-site checks, headers.
- :mod:`bonsai.web.jobs`, :mod:`bonsai.web.worker`, :mod:`bonsai.web.supervisor`: teach, train,
  eval and grow run as jobs in one worker process, one at a time, recorded in the garden.
- ``routes_*``: the pages (garden, records, teach/train/grow/eval jobs, chat and feedback,
  reports); each calls the same functions as the CLI.
- ``templates/`` (Jinja2, autoescaped) and ``static/`` (htmx, uPlot, our CSS and script; no
  Node.js needed).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from bonsai.web.state import WebState

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["STATIC_DIR", "WebState", "add_pages"]


def add_pages(app: FastAPI, web: WebState) -> None:
    """Mount the pages, their static files and their security checks on ``app``."""
    from bonsai.web import (
        routes_chat,
        routes_garden,
        routes_jobs,
        routes_records,
        routes_reports,
        routes_stages,
    )
    from bonsai.web.security import install

    app.state.web = web
    install(app, web)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (
        routes_garden,
        routes_records,
        routes_jobs,
        routes_stages,
        routes_chat,
        routes_reports,
    ):
        app.include_router(module.router)
