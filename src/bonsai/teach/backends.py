"""Teachers behind one small Protocol: an OpenAI-compatible endpoint, a local model, templates.

A teacher turns one prompt into one answer, or raises :class:`TeacherError` saying what went wrong
and whether asking again may help. Retries, backoff, validation and concurrency live in the runner,
so that every backend gets the same, visible behaviour.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from bonsai.config import GardenConfig
from bonsai.errors import BonsaiError
from bonsai.records import Record
from bonsai.teach.args import TeachArgs
from bonsai.teach.compose import VERSION as COMPOSE_VERSION
from bonsai.teach.compose import compose_reasoning
from bonsai.util.text import redact_secrets


@dataclass
class TeachRequest:
    """One question to the teacher."""

    record: Record
    prompt: str
    """The full prompt: the rendered template, plus why the previous answer was rejected."""
    language: str | None
    """Code of the language the reasoning must be in (None: unknown)."""


@dataclass
class Answer:
    text: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


# What went wrong, and what the runner does about it.
RETRYABLE = frozenset({"rate_limit", "server", "timeout", "connection", "bad_reply"})
FATAL = frozenset({"auth", "not_found"})
"""Errors that no other record would escape either: the run stops."""


class TeacherError(Exception):
    """A failed request. ``kind`` is one of: auth, not_found, rate_limit, server, timeout,
    connection, bad_reply, bad_request."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        # A message may quote the endpoint (a connection error names it), credentials and all.
        message = redact_secrets(message)
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


class Teacher(Protocol):
    """What the runner needs from a backend."""

    backend: str
    """'openai', 'local' or 'template'."""
    model: str
    """What wrote the answers (part of the cache key and of each record's provenance)."""
    written_by: str
    """'teacher' for a language model, 'template' for composed text."""
    max_concurrency: int | None
    """Most requests this backend can serve at once (None: as many as asked)."""
    deterministic: bool
    """True when asking again gives the same answer (so an invalid one is not asked again)."""

    async def answer(self, request: TeachRequest) -> Answer: ...

    async def aclose(self) -> None: ...


# -- template -------------------------------------------------------------------------------------


class TemplateTeacher:
    """Offline and deterministic: composes the reasoning from rules, not a language model."""

    backend = "template"
    model = COMPOSE_VERSION
    written_by = "template"
    max_concurrency: int | None = None
    deterministic = True

    async def answer(self, request: TeachRequest) -> Answer:
        return Answer(compose_reasoning(request.record, request.language))

    async def aclose(self) -> None:
        return None


# -- openai ---------------------------------------------------------------------------------------


def split_query(base_url: str | None) -> tuple[str | None, dict[str, str]]:
    """The endpoint without its query, and the query's parameters (``?key=…`` for servers that
    take the key that way), which the client then sends with every request."""
    if not base_url or "?" not in base_url:
        return base_url, {}
    endpoint, _, query = base_url.partition("?")
    return endpoint, dict(parse_qsl(query, keep_blank_values=True))


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(getattr(exc, "message", exc))


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: rare, and the backoff covers it
        return None


def _malformed(why: str) -> TeacherError:
    return TeacherError("bad_reply", f"malformed reply: {why}")


def parse_chat_completion(content: bytes) -> Answer:
    """The answer in a ``chat.completion`` body; :class:`TeacherError` when it is not one."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed(f"not JSON ({exc})") from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise _malformed("no choices")
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        raise _malformed("no message in the first choice")
    text = message.get("content")
    if isinstance(text, list):  # content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    elif text is not None and not isinstance(text, str):
        raise _malformed("message content is not text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Answer(
        text=text,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


class OpenAITeacher:
    """Any OpenAI-compatible chat endpoint, through the official ``openai`` client.

    The client's own retries are off (``max_retries=0``): the runner retries, with backoff it
    shows and tests can see.
    """

    backend = "openai"
    written_by = "teacher"
    max_concurrency: int | None = None
    deterministic = False

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str,
        timeout: float,
        max_tokens: int,
        temperature: float,
    ) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.base_url = base_url
        self.max_tokens = max_tokens
        self.temperature: float | None = temperature
        self._token_param = "max_tokens"
        endpoint, query = split_query(base_url)
        self.client = AsyncOpenAI(
            base_url=endpoint,
            api_key=api_key,
            max_retries=0,
            timeout=timeout,
            default_query=query or None,
        )

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {self._token_param: self.max_tokens}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def _adapt(self, message: str) -> bool:
        """Adapt to a server that refuses a parameter (newer OpenAI models refuse
        ``max_tokens`` and sometimes ``temperature``); True when there is something to retry."""
        lowered = message.lower()
        if "max_tokens" in lowered and self._token_param == "max_tokens":
            self._token_param = "max_completion_tokens"
            return True
        if "temperature" in lowered and self.temperature is not None:
            self.temperature = None
            return True
        return False

    async def answer(self, request: TeachRequest) -> Answer:
        import httpx2  # the openai client's HTTP library
        import openai

        messages = [{"role": "user", "content": request.prompt}]
        for _ in range(3):  # parameter adaptations, at most one of each kind
            body = {"model": self.model, "messages": messages, **self._params()}
            try:
                # The client's documented raw call: same auth, errors and timeouts as
                # `chat.completions.create`, without its typed request transform, which costs
                # about a millisecond of CPU per call (a fifth of the overhead budget).
                response = await self.client.post(
                    "/chat/completions", body=body, cast_to=httpx2.Response
                )
            except openai.BadRequestError as exc:
                message = _server_message(exc)
                if self._adapt(message):
                    continue
                raise TeacherError("bad_request", message, status=400) from None
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise TeacherError("auth", _server_message(exc), status=exc.status_code) from None
            except openai.NotFoundError as exc:
                raise TeacherError("not_found", _server_message(exc), status=404) from None
            except openai.RateLimitError as exc:
                raise TeacherError(
                    "rate_limit", _server_message(exc), status=429, retry_after=_retry_after(exc)
                ) from None
            except openai.InternalServerError as exc:
                raise TeacherError(
                    "server",
                    _server_message(exc),
                    status=exc.status_code,
                    retry_after=_retry_after(exc),
                ) from None
            except openai.APITimeoutError as exc:
                if "ConnectTimeout" in type(exc.__cause__).__name__:
                    # Nothing answered at that address at all: as good as unreachable.
                    raise TeacherError("connection", "connection timed out") from None
                raise TeacherError("timeout", "no answer before the timeout") from None
            except openai.APIConnectionError as exc:
                cause = exc.__cause__ or exc
                raise TeacherError("connection", f"cannot connect: {cause}") from None
            except openai.APIStatusError as exc:
                kind = "server" if exc.status_code in (408, 409) else "bad_request"
                raise TeacherError(kind, _server_message(exc), status=exc.status_code) from None
            return parse_chat_completion(response.content)
        raise TeacherError("bad_request", "the server refused every parameter set")

    async def aclose(self) -> None:
        await self.client.close()


# -- local ----------------------------------------------------------------------------------------


class LocalTeacher:
    """A causal LM on this machine through transformers (the student, or any model folder).

    Loaded on the first request, in a worker thread; one generation at a time (the CPU has no
    room for two).
    """

    backend = "local"
    written_by = "teacher"
    max_concurrency: int | None = 1
    deterministic = False  # greedy, but a retry's prompt carries the reason: a new answer

    def __init__(self, *, model: str, max_tokens: int) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                from bonsai.student import load_model, load_tokenizer, resolve_base_model

                # A wrong name fails here, before transformers takes seconds to import.
                source = resolve_base_model(self.model)
                self._loaded = (load_tokenizer(source), load_model(source))
            return self._loaded

    def _generate(self, prompt: str) -> Answer:
        import torch

        tokenizer, model = self._load()
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        else:  # a base model: the prompt, then the place for the answer
            ids = tokenizer(f"{prompt}\n\nReasoning:\n", return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=self.max_tokens,
                do_sample=False,
                repetition_penalty=1.2,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        return Answer(
            text=tokenizer.decode(new, skip_special_tokens=True),
            prompt_tokens=int(ids["input_ids"].shape[1]),
            completion_tokens=int(new.shape[0]),
        )

    async def answer(self, request: TeachRequest) -> Answer:
        return await asyncio.to_thread(self._generate, request.prompt)

    async def aclose(self) -> None:
        self._loaded = None


# -- registry -------------------------------------------------------------------------------------


def api_key_for(args: TeachArgs) -> tuple[str, str | None]:
    """The API key and the variable it came from (local servers need none: a placeholder)."""
    if args.api_key_env:
        value = os.environ.get(args.api_key_env, "").strip()
        if not value:
            raise BonsaiError(
                f"the environment variable {args.api_key_env} is not set",
                field="api_key_env",
                hint=f"export {args.api_key_env}=… with the key of the teacher's endpoint",
            )
        return value, args.api_key_env
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ["OPENAI_API_KEY"], "OPENAI_API_KEY"
    return "not-needed", None


def make_teacher(args: TeachArgs, config: GardenConfig | None = None) -> Teacher:
    """The teacher ``args.backend`` names, set up from ``args`` (and the garden's student)."""
    if args.backend == "template":
        return TemplateTeacher()
    if args.backend == "openai":
        # A dry run sends nothing, so it needs no key.
        api_key = "unused-in-dry-run" if args.dry_run else api_key_for(args)[0]
        assert args.model is not None  # TeachArgs checks it
        return OpenAITeacher(
            model=args.model,
            base_url=args.base_url,
            api_key=api_key,
            timeout=args.timeout,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
        )
    if args.backend == "local":
        model = args.model or (config.student.base_model if config else None)
        if not model:
            raise BonsaiError("the local backend needs a model", field="model")
        return LocalTeacher(model=model, max_tokens=min(args.max_tokens, 200))
    raise BonsaiError(f"unknown teacher backend '{args.backend}'", field="backend")
