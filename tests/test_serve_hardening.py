"""``bonsai serve`` under hostile or unlucky clients: malformed bodies, huge prompts, idle and
trickling connections, clients that hang up, a database held by another program."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import openai
import pytest
from serve_support import API_KEY, ServerProcess, tiny_garden

from bonsai.chat import store
from bonsai.db import connect
from bonsai.garden import Garden

QUESTION = "What does Mochi eat every day?"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    garden = tiny_garden(tmp_path_factory.mktemp("hardening") / "garden", tiny_model_dir)
    server = ServerProcess(garden, "--queue", "4", "--max-body", "400000", "--db-wait", "1")
    with server:
        yield garden, server
    garden.close()


@pytest.fixture(scope="module")
def client(served) -> openai.OpenAI:
    _, server = served
    return openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0, timeout=120)


def turns(garden: Garden, **filters: str) -> list[store.TurnLog]:
    conn = connect(garden.db_path)
    try:
        found = store.list_turns(conn, limit=None)
    finally:
        conn.close()
    return [t for t in found if all(getattr(t, k) == v for k, v in filters.items())]


def wait_for_turns(garden: Garden, timeout: float = 60, **filters: str) -> list[store.TurnLog]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = turns(garden, **filters)
        if found:
            return found
        time.sleep(0.2)
    return []


def chat_body(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "base",
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 8,
    }
    body.update(extra)
    return body


def post(server: ServerProcess, path: str, body: object, **kw) -> httpx.Response:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return httpx.post(f"{server.url}{path}", content=data, headers=HEADERS, timeout=60, **kw)


class LongAnswer:
    """A streamed answer of up to 1000 tokens that keeps the model thread busy until closed."""

    def __init__(self, client: openai.OpenAI, session: str) -> None:
        self.stream = client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=1000,
            stream=True,
            extra_body={"session": session, "seed": 5},
        )
        self.first = next(iter(self.stream))

    def close(self) -> None:
        self.stream.close()


# -- malformed bodies: each a 4xx with an OpenAI error body ---------------------------------------

BAD_CHAT = {
    "seed 10^30": (chat_body(seed=10**30), 400, "seed"),
    "negative seed": (chat_body(seed=-1), 400, "seed"),
    "seed as text": (chat_body(seed="7"), 400, "seed"),
    "deterministic as text": (chat_body(deterministic="false"), 400, "deterministic"),
    "deterministic as 0": (chat_body(deterministic=0), 400, "deterministic"),
    "stream as text": (chat_body(stream="true"), 400, "stream"),
    "rag as 1": (chat_body(rag=1), 400, "rag"),
    "stream_options not an object": (chat_body(stream_options=[1]), 400, "stream_options"),
    "include_usage as text": (
        chat_body(stream=True, stream_options={"include_usage": "yes"}),
        400,
        "include_usage",
    ),
    "user not text": (chat_body(user=5), 400, "user"),
    "session not text": (chat_body(session={"a": 1}), 400, "session"),
    "top_k 10^30": (chat_body(top_k=10**30), 400, "top_k"),
    "temperature 1e400": (
        '{"model": "base", "messages": [{"role": "user", "content": "q"}], "temperature": 1e400}',
        400,
        "temperature",
    ),
    "NaN temperature": (
        '{"model": "base", "messages": [{"role": "user", "content": "q"}], "temperature": NaN}',
        400,
        None,
    ),
    "max_tokens 0": (chat_body(max_tokens=0), 400, "max_tokens"),
    "max_tokens 2.5": (chat_body(max_tokens=2.5), 400, "max_tokens"),
    "max_tokens as text": (chat_body(max_tokens="8"), 400, "max_tokens"),
    "top_p 0": (chat_body(top_p=0), 400, "top_p"),
    "context_weight 3": (chat_body(context_weight=3), 400, "context_weight"),
    "context_weight as text": (chat_body(context_weight="0.5"), 400, "context_weight"),
    "temperature -1": (chat_body(temperature=-1), 400, "temperature"),
    "stop list of numbers": (chat_body(stop=[1, 2]), 400, "stop"),
    "five stops": (chat_body(stop=["a", "b", "c", "d", "e"]), 400, "stop"),
    "messages not a list": (chat_body(messages="hi"), 400, "messages"),
    "message not an object": (chat_body(messages=["hi"]), 400, "messages"),
    "unknown role": (chat_body(messages=[{"role": "wizard", "content": "q"}]), 400, "messages"),
    "tool message": (chat_body(messages=[{"role": "tool", "content": "q"}]), 400, "messages"),
    "image part": (
        chat_body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        400,
        "messages",
    ),
    "text part not text": (
        chat_body(messages=[{"role": "user", "content": [{"type": "text", "text": 5}]}]),
        400,
        "messages",
    ),
    "content a number": (chat_body(messages=[{"role": "user", "content": 5}]), 400, "messages"),
    "blank question": (chat_body(messages=[{"role": "user", "content": " \n"}]), 400, "messages"),
    "201 messages": (chat_body(messages=[{"role": "user", "content": "q"}] * 201), 400, "messages"),
    "model missing": ({"messages": [{"role": "user", "content": "q"}]}, 400, "model"),
    "model a number": (chat_body(model=3), 400, "model"),
    "unknown model": (chat_body(model="gpt-4o"), 404, "model"),
    "n 2": (chat_body(n=2), 400, "n"),
    "tools": (chat_body(tools=[{"type": "function"}]), 400, "tools"),
    "mode unknown": (chat_body(mode="poem"), 400, "mode"),
    "mode a number": (chat_body(mode=2), 400, "mode"),
    "not JSON": (b'{"model": "base", "messages": [', 400, None),
    "not UTF-8": (b'{"model": "\xff\xfe"}', 400, None),
    "a JSON list": ("[1, 2]", 400, None),
    "a JSON string": ('"hello"', 400, None),
    "empty body": (b"", 400, None),
    "nested 100k deep": ("[" * 100_000 + "]" * 100_000, 400, None),
}

BAD_OTHER = {
    "embeddings: token arrays": ("/embeddings", {"model": "hashing-256", "input": [[1, 2]]}, 400),
    "embeddings: empty list": ("/embeddings", {"model": "hashing-256", "input": []}, 400),
    "embeddings: bad encoding": (
        "/embeddings",
        {"model": "hashing-256", "input": "x", "encoding_format": "int8"},
        400,
    ),
    "embeddings: unknown model": ("/embeddings", {"model": "ada", "input": "x"}, 404),
    "feedback: no kind": ("/feedback", {"text": "x"}, 400),
    "feedback: unknown kind": ("/feedback", {"kind": "meh", "text": "x"}, 400),
    "feedback: kind a number": ("/feedback", {"kind": 1}, 400),
    "feedback: user a number": ("/feedback", {"kind": "experience", "text": "x", "user": 1}, 400),
    "feedback: unknown turn": ("/feedback", {"kind": "good", "turn_id": "chatcmpl-x"}, 404),
    "feedback: correction without text": (
        "/feedback",
        {"kind": "correction", "turn_id": "chatcmpl-x"},
        400,
    ),
    "feedback: text too long": ("/feedback", {"kind": "experience", "text": "x" * 20_001}, 400),
}


def assert_openai_error(answer: httpx.Response, status: int, param: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["message"] and error["type"]
    if param is not None:
        assert error["param"] == param, error


@pytest.mark.parametrize("case", sorted(BAD_CHAT))
def test_malformed_chat_bodies_get_a_clear_4xx(served, case: str) -> None:
    _, server = served
    body, status, param = BAD_CHAT[case]
    assert_openai_error(post(server, "/chat/completions", body), status, param)


@pytest.mark.parametrize("case", sorted(BAD_OTHER))
def test_malformed_embedding_and_feedback_bodies_get_a_clear_4xx(served, case: str) -> None:
    _, server = served
    path, body, status = BAD_OTHER[case]
    assert_openai_error(post(server, path, body), status)


def test_a_refused_seed_keeps_the_connection(served) -> None:
    _, server = served
    with httpx.Client(headers=HEADERS, timeout=60) as http:
        refused = http.post(f"{server.url}/chat/completions", json=chat_body(seed=10**30))
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "seed"
        again = http.post(f"{server.url}/chat/completions", json=chat_body(seed=2**63 - 1))
        assert again.status_code == 200, again.text


def test_deterministic_false_as_json_is_false(served, client: openai.OpenAI) -> None:
    garden, _ = served
    client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=4,
        extra_body={"deterministic": False, "session": "not-deterministic"},
    )
    (logged,) = turns(garden, session="not-deterministic")
    assert logged.settings["generate"]["deterministic"] is False


# -- what is open without the key ---------------------------------------------------------------


def test_health_is_open_and_says_nothing_about_the_garden(served) -> None:
    _, server = served
    answer = httpx.get(f"{server.base}/health", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_the_schema_needs_the_key_and_there_are_no_docs_pages(served) -> None:
    _, server = served
    assert httpx.get(f"{server.base}/openapi.json", timeout=10).status_code == 401
    schema = httpx.get(f"{server.base}/openapi.json", headers=HEADERS, timeout=10)
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
    for page in ("/docs", "/redoc"):
        assert httpx.get(f"{server.base}{page}", timeout=10).status_code == 404


# -- a prompt too long for the model is refused before it queues ---------------------------------


def test_an_overlong_prompt_is_refused_at_once_even_while_the_model_is_busy(
    served, client: openai.OpenAI
) -> None:
    _, server = served
    busy = LongAnswer(client, "busy-for-long-prompt")
    try:
        started = time.monotonic()
        answer = post(server, "/chat/completions", chat_body(messages=[
            {"role": "user", "content": "Mochi eats wet food. " * 5_000}
        ]))  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        busy.close()
    assert_openai_error(answer, 400, "messages")
    assert answer.json()["error"]["code"] == "context_length_exceeded"
    assert elapsed < 10, f"took {elapsed:.1f} s: it waited for the model"


# -- connections -------------------------------------------------------------------------------


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """True when the server closes ``sock`` within ``seconds`` (sending ``trickle`` a byte a
    second meanwhile)."""
    deadline = time.monotonic() + seconds
    sock.settimeout(1.0)
    sent = 0
    while time.monotonic() < deadline:
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent : sent + 1])
            except OSError:
                return True
            sent += 1
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed(served) -> None:
    _, server = served
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert closed_within(sock, 15)


def test_a_request_head_trickled_byte_by_byte_is_cut_off(served) -> None:
    _, server = served
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 60
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert closed_within(sock, 20, trickle=head)


def test_a_body_cut_short_leaves_no_traceback(served) -> None:
    _, server = served
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {API_KEY}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            + b'{"model": "base", "mess'
        )
        time.sleep(0.5)
    time.sleep(1.0)
    assert server.alive()
    log = server.log.read_text()
    assert "Traceback" not in log and "ClientDisconnect" not in log


# -- clients that leave -------------------------------------------------------------------------


def test_a_client_that_leaves_after_the_first_chunk_while_queued_is_logged(
    served, client: openai.OpenAI
) -> None:
    garden, _ = served
    busy = LongAnswer(client, "busy-while-queued")
    try:
        leaver = client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=50,
            stream=True,
            extra_body={"session": "left-while-queued"},
        )
        first = next(iter(leaver))  # the role chunk, sent while the job waits in the queue
        leaver.close()
    finally:
        busy.close()
    (logged,) = wait_for_turns(garden, session="left-while-queued")
    assert logged.id == first.id and logged.status == "cancelled"
    assert logged.prompt == QUESTION
    (busy_turn,) = wait_for_turns(garden, session="busy-while-queued")
    assert busy_turn.status == "cancelled"


def test_every_leaver_is_logged(served, client: openai.OpenAI) -> None:
    garden, _ = served
    ids = []
    for i in range(6):
        stream = client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=200,
            stream=True,
            extra_body={"session": "leavers", "seed": i},
        )
        ids.append(next(iter(stream)).id)
        stream.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(turns(garden, session="leavers")) < len(ids):
        time.sleep(0.2)
    assert sorted(t.id for t in turns(garden, session="leavers")) == sorted(ids)


# -- user text that is not what it seems -----------------------------------------------------------

HOSTILE_PROMPTS = [
    "What does [/bold] Mochi eat?",
    "[bold red]shout[/] [link=https://evil.example]click[/link]",
    "Mochi \x1b[2J\x1b[H\x1b]0;pwned\x07 eats",
    "8-bit \x9b31m CSI and \x9d OSC",
    "NUL \x00 and DEL \x7f and bidi \u202e olleh",
]


def test_hostile_prompts_are_answered_and_logs_show_them_literally(
    served, client: openai.OpenAI, cli
) -> None:
    garden, _ = served
    for prompt in HOSTILE_PROMPTS:
        reply = client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=4,
            extra_body={"session": "hostile"},
        )
        assert reply.choices[0].message.content is not None
    shown = cli("logs", "--session", "hostile", "--garden", garden.root)
    assert shown.exit_code == 0, shown.output
    assert "[/bold]" in shown.stdout and "\\x1b[2J" in shown.stdout
    assert not any(c in shown.stdout for c in "\x1b\x9b\x9d\x00\x7f")


# -- a database held by another program ----------------------------------------------------------


def test_a_locked_database_keeps_the_answer_and_says_503_for_feedback(
    served, client: openai.OpenAI
) -> None:
    garden, server = served
    holder = sqlite3.connect(garden.db_path, timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program in a long write
    try:
        started = time.monotonic()
        reply = client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=6,
            extra_body={"session": "locked"},
        )
        assert time.monotonic() - started < 20
        assert reply.choices[0].message.content is not None
        rated = post(server, "/feedback", {"kind": "good", "turn_id": reply.id})
        assert_openai_error(rated, 503)
        assert rated.headers["retry-after"].isdigit()
        remembered = post(server, "/feedback", {"kind": "experience", "text": "Mochi naps."})
        assert_openai_error(remembered, 503)
        assert "busy" in remembered.json()["error"]["message"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    (logged,) = wait_for_turns(garden, session="locked")
    assert logged.id == reply.id and logged.answer == reply.choices[0].message.content
    assert post(server, "/feedback", {"kind": "good", "turn_id": reply.id}).status_code == 200


def test_the_server_log_has_no_traceback(served) -> None:
    _, server = served
    assert server.alive()
    assert "Traceback" not in server.log.read_text()


def test_the_probe_covers_at_least_25_kinds() -> None:
    assert len(BAD_CHAT) + len(BAD_OTHER) + len(HOSTILE_PROMPTS) >= 25
