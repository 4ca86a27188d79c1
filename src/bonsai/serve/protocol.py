"""The OpenAI wire format: reading requests into BONSAI's settings, writing responses.

Requests are checked by hand rather than by a schema library so that every problem becomes one
OpenAI-style error (``{"error": {"message", "type", "param", "code"}}``) with a 4xx status that
says what to fix, never a stack trace or a validation dump.
"""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bonsai.chat.prompts import normalise_mode
from bonsai.errors import BonsaiError
from bonsai.generate.args import GenerateArgs

MAX_MESSAGES = 200
MAX_USER_STOPS = 4
MAX_EMBED_INPUTS = 256
MAX_INT = 2**63 - 1
"""Largest integer setting (a seed is a 64-bit number; nothing else is near it)."""
FINISH_REASON = {"stop": "stop", "loop": "stop", "length": "length", "cancelled": "stop"}
"""BONSAI's reasons in OpenAI's words (a loop that was cut off ended the answer: "stop")."""


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def _no_constant(name: str) -> Any:
    raise ApiError(
        400, f"the request body is not valid JSON: {name} is not a number", code="invalid_json"
    )


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return data


def _number(data: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"'{name}' must be a number", param=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, f"'{name}' must be a finite number", param=name)
    if kind is int:
        if not float(value).is_integer():
            raise ApiError(400, f"'{name}' must be an integer", param=name)
        if not -MAX_INT <= value <= MAX_INT:
            raise ApiError(400, f"'{name}' is out of range (at most {MAX_INT})", param=name)
        return int(value)
    return float(value)


def _flag(data: dict[str, Any], name: str, default: bool | None) -> bool | None:
    """A JSON boolean: ``"false"`` or ``0`` is an error, never quietly true or false."""
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false", param=name)
    return value


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"'{name}' must be text", param=name)
    return value


def _text_of(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ApiError(400, f"{where}: only text content is supported", param="messages")
            text = part.get("text", "")
            if not isinstance(text, str):
                raise ApiError(400, f"{where}: a text part's 'text' must be text", param="messages")
            texts.append(text)
        return "".join(texts)
    raise ApiError(400, f"{where}: 'content' must be text", param="messages")


def _seed(data: dict[str, Any]) -> int | None:
    seed = _number(data, "seed", int, None)
    if seed is not None and seed < 0:
        raise ApiError(400, f"'seed' must be 0 or more (at most {MAX_INT})", param="seed")
    return seed


@dataclass
class ChatRequest:
    model: str
    question: str
    system: str
    history: list[tuple[str, str]]
    messages: list[dict[str, Any]]
    args: GenerateArgs
    stream: bool
    include_usage: bool
    mode: str | None
    rag: bool | None
    session: str | None
    user: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_chat(data: dict[str, Any], *, max_tokens: int, default_max_tokens: int) -> ChatRequest:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required", param="model")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise ApiError(400, f"at most {MAX_MESSAGES} messages", param="messages")
    system: list[str] = []
    history: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{i}] must be an object", param="messages")
        role = message.get("role")
        text = _text_of(message.get("content"), f"messages[{i}]")
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            history.append((role, text))
        elif role == "tool":
            raise ApiError(400, "tool messages are not supported", param="messages")
        else:
            raise ApiError(400, f"messages[{i}] has an unknown role {role!r}", param="messages")
    if not history or history[-1][0] != "user" or not history[-1][1].strip():
        raise ApiError(400, "the last message must be a non-empty user message", param="messages")
    n = _number(data, "n", int, 1)
    if n != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    if data.get("tools") or data.get("functions"):
        raise ApiError(400, "tools are not supported", param="tools")
    tokens = _number(data, "max_completion_tokens", int, None)
    tokens = _number(data, "max_tokens", int, tokens)
    if tokens is None:
        tokens = default_max_tokens
    if not 1 <= tokens <= max_tokens:
        raise ApiError(400, f"'max_tokens' must be between 1 and {max_tokens}", param="max_tokens")
    stop = data.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is None:
        stop = []
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "'stop' must be a string or a list of strings", param="stop")
    if len(stop) > MAX_USER_STOPS:
        raise ApiError(400, f"at most {MAX_USER_STOPS} stop sequences", param="stop")
    defaults = GenerateArgs()
    try:
        args = GenerateArgs(
            max_new_tokens=tokens,
            temperature=_number(data, "temperature", float, defaults.temperature),
            top_p=_number(data, "top_p", float, defaults.top_p),
            top_k=_number(data, "top_k", int, defaults.top_k),
            repetition_penalty=_number(
                data, "repetition_penalty", float, defaults.repetition_penalty
            ),
            no_repeat_ngram_size=_number(
                data, "no_repeat_ngram_size", int, defaults.no_repeat_ngram_size
            ),
            context_weight=_number(data, "context_weight", float, defaults.context_weight),
            stop=tuple(stop),
            seed=_seed(data),
            deterministic=bool(_flag(data, "deterministic", False)),
        )
    except BonsaiError as exc:
        raise ApiError(400, str(exc), param=exc.field) from None
    mode = data.get("mode")
    if mode is not None:
        if not isinstance(mode, str):
            raise ApiError(400, "'mode' must be 'answer' or 'q2q'", param="mode")
        try:
            mode = normalise_mode(mode)
        except BonsaiError as exc:
            raise ApiError(400, str(exc), param="mode") from None
    rag = _flag(data, "rag", None)
    stream = bool(_flag(data, "stream", False))
    options = data.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", param="stream_options")
    include_usage = bool(_flag(options, "include_usage", False))
    session = _optional_text(data, "session")
    user = _optional_text(data, "user")
    return ChatRequest(
        model=model,
        question=history[-1][1],
        system="\n".join(s for s in system if s.strip()),
        history=history[:-1],
        messages=messages,
        args=args,
        stream=stream,
        include_usage=include_usage,
        mode=mode,
        rag=rag,
        session=session,
        user=user,
    )


def completion_body(turn: Any, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished :class:`~bonsai.chat.session.ChatTurn`."""
    message: dict[str, Any] = {"role": "assistant", "content": turn.answer}
    if turn.reasoning:
        message["reasoning_content"] = turn.reasoning
    generation = turn.generation
    return {
        "id": turn.id,
        "object": "chat.completion",
        "created": int(turn.log.created_at),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": FINISH_REASON.get(generation.finish_reason, "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage(generation),
        "bonsai": bonsai_extra(turn),
    }


def usage(generation: Any) -> dict[str, int]:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


def bonsai_extra(turn: Any) -> dict[str, Any]:
    """What an OpenAI client ignores and a BONSAI client uses: the turn to give feedback on,
    the mode, the notes the answer was given, and BONSAI's own finish reason."""
    return {
        "turn_id": turn.id,
        "mode": turn.log.mode,
        "run": turn.log.run_id,
        "sources": turn.log.retrieved,
        "finish_reason": turn.generation.finish_reason,
    }


def chunk(turn_id: str, model: str, created: int, delta: dict[str, Any], **extra: Any) -> str:
    body = {
        "id": turn_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": extra.pop("finish", None)}],
        **extra,
    }
    return sse(body)


def sse(body: dict[str, Any] | str) -> str:
    data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return f"data: {data}\n\n"


@dataclass
class EmbeddingRequest:
    model: str
    inputs: list[str]
    base64: bool


def parse_embeddings(data: dict[str, Any]) -> EmbeddingRequest:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "'model' is required", param="model")
    raw = data.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs:
        raise ApiError(
            400, "'input' must be a string or a non-empty list of strings", param="input"
        )
    if not all(isinstance(item, str) for item in inputs):
        raise ApiError(400, "'input' must be text (token arrays are not supported)", param="input")
    if len(inputs) > MAX_EMBED_INPUTS:
        raise ApiError(400, f"at most {MAX_EMBED_INPUTS} inputs per request", param="input")
    encoding = data.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise ApiError(
            400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )
    return EmbeddingRequest(model=model, inputs=inputs, base64=encoding == "base64")


def embeddings_body(vectors: np.ndarray, request: EmbeddingRequest, model: str) -> dict[str, Any]:
    data = []
    for i, vector in enumerate(np.asarray(vectors, dtype=np.float32)):
        if request.base64:
            value: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
        else:
            value = [float(x) for x in vector]
        data.append({"object": "embedding", "index": i, "embedding": value})
    tokens = sum(max(1, len(text.split())) for text in request.inputs)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def model_card(model_id: str, created: float) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": int(created), "owned_by": "bonsai"}


def now() -> int:
    return int(time.time())
