"""Test support: a scripted OpenAI-compatible chat server on 127.0.0.1, for tests and benchmarks.

No stage of BONSAI uses it; a real teacher is never this server.

It speaks real HTTP/1.1 (keep-alive) on a free port, one thread per connection, so a client under
test talks to it exactly as it would to vLLM, Ollama or a hosted API. Each reply can be scripted:
the answer text, a delay, a status code (401, 404, 429, 500, …) or a raw body (malformed JSON).

In a thread, with full scripting::

    with ScriptedServer(["You should …", Reply(status=429), Reply(content="You should …")]) as s:
        client = AsyncOpenAI(base_url=s.url, api_key="x")
        ...
        assert s.count == 3

In a subprocess (so that the server does not compete with the client for the GIL), answering
every request with :func:`default_reasoning` after a fixed latency::

    with SubprocessServer(latency=0.2) as s: ...

or from a shell: ``python -m bonsai.testing.server --latency 0.2``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"


@dataclass
class Reply:
    """One scripted answer to a chat request."""

    content: str | None = None
    """The assistant message; None with status 200 sends a message whose content is null."""
    status: int = 200
    """HTTP status; anything but 200 sends an OpenAI-style error body (unless ``body`` is set)."""
    delay: float | None = None
    """Seconds to wait before answering; None uses the server's ``latency``."""
    body: str | None = None
    """A raw response body sent as is (for malformed JSON); overrides ``content``."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"Retry-After": "0"}``."""
    error: str | None = None
    """Message of the error body for a non-200 status."""


@dataclass
class ChatRequest:
    """A chat request as the server received it."""

    model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float

    @property
    def prompt(self) -> str:
        """The text of the last user message."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):  # content parts
                    return "".join(p.get("text", "") for p in content if isinstance(p, dict))
                return str(content or "")
        return ""


Script = Callable[[ChatRequest], "Reply | str"]


def default_reasoning(request: ChatRequest) -> Reply:
    """A valid short reasoning in the sentence form the prompt asks for."""
    subject = "Creator" if "Creator should" in request.prompt else "You"
    text = (
        f"{subject} should read the instruction and any given input closely.\n"
        f"{subject} should work out the few steps that lead to the answer, in order.\n"
        f"{subject} should check the result against what was asked before writing it."
    )
    return Reply(content=text)


def _words(text: str) -> int:
    return len(text.split())


class ScriptedServer:
    """An OpenAI-compatible ``/v1/chat/completions`` server in a background thread.

    ``script`` is either a callable that gets each :class:`ChatRequest` and returns a
    :class:`Reply` (or a plain string answer), or a sequence of replies used in order, after
    which :func:`default_reasoning` answers. ``api_key`` makes every request without
    ``Authorization: Bearer <api_key>`` fail with 401; ``models`` makes any other model 404.
    """

    def __init__(
        self,
        script: Script | Iterable[Reply | str] | None = None,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        models: Iterable[str] | None = None,
    ) -> None:
        self.latency = latency
        self.api_key = api_key
        self.models = set(models) if models is not None else None
        self._script: Script | None = script if callable(script) else None
        queued = () if script is None or callable(script) else script
        self._queue: deque[Reply | str] = deque(queued)
        self._lock = threading.Lock()
        self.requests: list[ChatRequest] = []
        """Every chat request received, in order of arrival (also those answered with errors)."""
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests the server was answering at the same moment."""
        self._httpd: ThreadingHTTPServer | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "server not started"
        return self._port

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client (ends in ``/v1``)."""
        return f"http://{HOST}:{self.port}/v1"

    def start(self) -> ScriptedServer:
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _Server((HOST, 0), handler)
        self._httpd.daemon_threads = True
        self._port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and statistics ------------------------------------------------------------

    @property
    def count(self) -> int:
        """Number of chat requests received."""
        with self._lock:
            return len(self.requests)

    def prompts(self) -> list[str]:
        with self._lock:
            return [r.prompt for r in self.requests]

    def count_containing(self, text: str) -> int:
        """Number of requests whose prompt contains ``text`` (e.g. a record's instruction)."""
        return sum(text in p for p in self.prompts())

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": len(self.requests), "max_in_flight": self.max_in_flight}

    def _reply_for(self, request: ChatRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            scripted: Reply | str | None = self._queue.popleft() if self._queue else None
        authorization = request.headers.get("authorization")
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return Reply(status=401, error="Incorrect API key provided.")
        if self.models is not None and request.model not in self.models:
            return Reply(status=404, error=f"The model `{request.model}` does not exist.")
        if scripted is None:
            scripted = self._script(request) if self._script else default_reasoning(request)
        return Reply(content=scripted) if isinstance(scripted, str) else scripted

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when many clients connect at once; a dropped
    # SYN is retried by the kernel only after a second, which would distort any timing.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes a kept-alive connection while the handler waits for its next
        # request is not an error; socketserver would print its traceback on stderr, which
        # then shows up in the output of whatever command the test is running.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


_ERROR_TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every answer.
    disable_nagle_algorithm = True
    owner: ScriptedServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout under test): nothing to answer.
            self.close_connection = True

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode(), headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            names = sorted(self.owner.models or {"scripted"})
            data = [{"id": n, "object": "model", "created": 0, "owned_by": "bonsai"} for n in names]
            self._send_json(200, {"object": "list", "data": data})
        elif self.path == "/_stats":
            self._send_json(200, self.owner.stats())
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        # A query (``?key=…``, as some servers take the key) is not part of the route.
        if not self.path.partition("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        request = ChatRequest(
            model=str(body.get("model", "")),
            messages=list(body.get("messages") or []),
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            received_at=time.time(),
        )
        owner = self.owner
        owner._enter()
        try:
            reply = owner._reply_for(request)
            delay = owner.latency if reply.delay is None else reply.delay
            if delay > 0:
                time.sleep(delay)
            self._answer(request, reply)
        finally:
            owner._leave()

    def _answer(self, request: ChatRequest, reply: Reply) -> None:
        if reply.body is not None:
            self._send(reply.status, reply.body.encode(), reply.headers)
            return
        if reply.status != 200:
            error = {
                "message": reply.error or f"scripted error {reply.status}",
                "type": _ERROR_TYPES.get(reply.status, "server_error"),
                "code": None,
            }
            self._send_json(reply.status, {"error": error}, reply.headers)
            return
        prompt_tokens = sum(_words(str(m.get("content") or "")) for m in request.messages)
        completion_tokens = _words(reply.content or "")
        data = {
            "id": f"chatcmpl-{int(request.received_at * 1e6)}",
            "object": "chat.completion",
            "created": int(request.received_at),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        self._send_json(200, data, reply.headers)


class SubprocessServer:
    """The server in a child process, answering with :func:`default_reasoning` after ``latency``.

    Use it where the client's own timing matters (benchmarks): a server thread would share the
    client's interpreter lock.
    """

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SubprocessServer:
        code = "from bonsai.testing.server import main; main()"
        cmd = [sys.executable, "-c", code, "--latency", str(self.latency)]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self._proc.kill()
            raise RuntimeError(f"test server did not start: {line!r}")
        self.url = line.removeprefix("READY ")
        return self

    def stats(self) -> dict[str, int]:
        root = self.url.removesuffix("/v1")
        with urllib.request.urlopen(f"{root}/_stats", timeout=5) as response:
            return json.loads(response.read())

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted OpenAI-compatible test server.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    args = parser.parse_args(argv)
    server = ScriptedServer(latency=args.latency).start()
    print(f"READY {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
