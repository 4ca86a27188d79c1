"""Every failure becomes one OpenAI-style error body, and only a real bug prints a traceback.

A client that hangs up mid-request is not a bug (no traceback); a database held by another
program is a 503 with Retry-After, not a 500.
"""

from __future__ import annotations

import sqlite3
import sys
import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from bonsai.serve.protocol import ApiError
from bonsai.serve.turnlog import is_locked

RETRY_AFTER_LOCKED_S = 5


def database_busy() -> ApiError:
    return ApiError(
        503,
        "the garden's database is busy (another bonsai command is writing to it); try again "
        "shortly",
        type="server_error",
        code="database_busy",
        headers={"Retry-After": str(RETRY_AFTER_LOCKED_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, str(exc.detail), code=f"http_{exc.status_code}")
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = ApiError(400, "the request does not match this endpoint", code="invalid_request")
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, __: ClientDisconnect) -> Response:
        return Response(status_code=400)  # nobody reads it: the client has gone

    @app.exception_handler(sqlite3.OperationalError)
    async def _database(_: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        if is_locked(exc):
            busy = database_busy()
            return JSONResponse(busy.body(), status_code=busy.status, headers=busy.headers)
        return _internal(exc)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return _internal(exc)


def _internal(exc: BaseException) -> JSONResponse:
    traceback.print_exception(exc, file=sys.stderr)
    error = ApiError(500, "internal server error", type="server_error")
    return JSONResponse(error.body(), status_code=500)
