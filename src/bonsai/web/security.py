"""Who may use the pages, and what a foreign site cannot make a browser do.

- **Loopback by default.** On any other address the server requires its access token: opened
  once as ``/?token=…`` (printed at start), it is kept in an HttpOnly, SameSite=Strict cookie;
  API clients may send it as ``Authorization: Bearer …``.
- **Cross-site requests.** A request that changes something must come from a page of this
  server: its ``Origin`` (when the browser sends one) must be this host, and page requests must
  carry the ``X-CSRF-Token`` header, which a foreign page cannot set. The OpenAI-compatible API
  (``/v1/…``) is for programs; it keeps its own API-key check and gets the Origin check.
- **Headers.** Pages may not be framed by other sites, scripts only come from this server.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bonsai.web.state import WebState

COOKIE = "bonsai_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; "
    "base-uri 'none'; form-action 'self'"
)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def install(app: FastAPI, web: WebState) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]):
        path = request.url.path
        if web.token is not None and path != "/health":
            given = request.query_params.get("token")
            if _same(given, web.token) and request.method == "GET":
                # Keep the token in a cookie and take it out of the address bar (and history).
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = path + (f"?{urlencode(rest)}" if rest else "")
                redirect = RedirectResponse(target, status_code=303)
                redirect.set_cookie(
                    COOKIE, web.token, httponly=True, samesite="strict", max_age=30 * 24 * 3600
                )
                return redirect
            if not (
                _same(request.cookies.get(COOKIE), web.token) or _same(_bearer(request), web.token)
            ):
                return PlainTextResponse(
                    "This BONSAI server needs its access token: open the address with ?token=… "
                    "that `bonsai ui` printed when it started.",
                    status_code=401,
                )
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if (
                origin
                and origin != "null"
                and urlsplit(origin).netloc != request.headers.get("host")
            ):
                return PlainTextResponse("cross-site request refused", status_code=403)
            if origin == "null":
                return PlainTextResponse("cross-site request refused", status_code=403)
            if not path.startswith("/v1/") and not _same(
                request.headers.get("x-csrf-token"), web.csrf
            ):
                return PlainTextResponse(
                    "missing or wrong CSRF token: reload the page and try again", status_code=403
                )
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not path.startswith("/v1/"):
            response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response
