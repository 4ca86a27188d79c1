"""``/health`` (open, and it says nothing about the garden) and ``/openapi.json`` (behind the
API key, like everything that describes or uses the garden)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bonsai.serve.state import require_key

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/openapi.json", dependencies=[Depends(require_key)], include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
