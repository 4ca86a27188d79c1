"""Reading a request body: bounded in size and in time, parsed into a JSON object."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from bonsai.serve.protocol import ApiError, parse_json

BODY_TIMEOUT_S = 30.0
"""A body that has not arrived whole by then is refused (a client trickling bytes would
otherwise hold a connection for ever)."""


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object: 413 above ``limit`` bytes, 408 when it is too slow."""
    too_big = ApiError(
        413, f"the request body is larger than {limit} bytes", code="request_too_large"
    )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_big
    body = bytearray()

    async def read() -> None:
        async for part in request.stream():
            body.extend(part)
            if len(body) > limit:
                raise too_big

    try:
        await asyncio.wait_for(read(), BODY_TIMEOUT_S)
    except TimeoutError:
        raise ApiError(
            408, f"the request body did not arrive within {BODY_TIMEOUT_S:.0f} s", code="timeout"
        ) from None
    return parse_json(bytes(body))
