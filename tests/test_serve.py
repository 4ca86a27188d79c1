"""``bonsai serve`` as a real process on 127.0.0.1, driven by the official ``openai`` client."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from serve_support import API_KEY, ServerProcess, tiny_garden

from bonsai.chat import store
from bonsai.db import connect
from bonsai.garden import Garden

QUESTION = "What does Mochi eat every day?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    garden = tiny_garden(tmp_path_factory.mktemp("serve") / "garden", tiny_model_dir)
    with ServerProcess(garden, "--queue", "4", "--max-body", "65536") as server:
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


def ask(client: openai.OpenAI, **kwargs):
    args = dict(model="base", messages=[{"role": "user", "content": QUESTION}], max_tokens=12)
    args.update(kwargs)
    return client.chat.completions.create(**args)


def test_models_lists_the_run_and_the_embedding_model(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["base", "hashing-256"]


def test_chat_completion_is_answered_and_logged_once(served, client: openai.OpenAI) -> None:
    garden, _ = served
    reply = ask(client, extra_body={"session": "plain"})
    assert reply.id.startswith("chatcmpl-") and reply.model == "base"
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage.completion_tokens >= 1 and reply.usage.prompt_tokens > 5
    extra = reply.model_extra["bonsai"]
    assert extra["turn_id"] == reply.id and extra["mode"] == "answer"
    (logged,) = turns(garden, session="plain")
    assert logged.id == reply.id and logged.answer == choice.message.content
    assert logged.client == "serve 127.0.0.1" and logged.messages[0]["content"] == QUESTION


def test_streaming_sends_the_answer_in_chunks(served, client: openai.OpenAI) -> None:
    garden, _ = served
    stream = ask(
        client,
        stream=True,
        max_tokens=20,
        stream_options={"include_usage": True},
        extra_body={"session": "streamed", "seed": 3},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    assert len({c.id for c in chunks}) == 1
    (logged,) = turns(garden, session="streamed")
    assert logged.id == chunks[0].id and logged.answer == text.strip()
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1


def test_modes_and_settings_come_through(served, client: openai.OpenAI) -> None:
    garden, _ = served
    ask(
        client,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "猫の健康について知りたいです。"},
        ],
        temperature=0,
        extra_body={"mode": "q2q", "rag": False, "session": "q2q"},
    )
    (logged,) = turns(garden, session="q2q")
    assert logged.mode == "question_to_question" and logged.language == "ja"
    assert "Be brief." in logged.rendered_prompt
    assert logged.settings["rag"] is False and logged.settings["generate"]["temperature"] == 0


def test_embeddings_in_floats_and_base64(client: openai.OpenAI) -> None:
    texts = ["Mochi eats wet food.", "もちはウェットフードを食べます。"]
    packed = client.embeddings.create(model="hashing-256", input=texts)  # the client asks base64
    plain = client.embeddings.create(model="hashing-256", input=texts, encoding_format="float")
    for result in (packed, plain):
        vectors = np.array([item.embedding for item in result.data])
        assert vectors.shape == (2, 256)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose([i.embedding for i in packed.data], [i.embedding for i in plain.data])
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="x")


def post(server: ServerProcess, path: str, body: object, *, key: str | None = API_KEY, **kw):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return httpx.post(
        f"{server.url}{path}",
        content=data,
        headers={**headers, "Content-Type": "application/json"},
        timeout=60,
        **kw,
    )


def test_feedback_endpoint_stores_it(served, client: openai.OpenAI) -> None:
    garden, server = served
    reply = ask(client, extra_body={"session": "feedback"})
    for body in (
        {"turn_id": reply.id, "kind": "bad", "reason": "too short"},
        {"turn_id": reply.id, "kind": "correction", "text": "Wet food, twice a day."},
        {"kind": "experience", "text": "Mochi drinks from a fountain."},
    ):
        answer = post(server, "/feedback", body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending" and answer.json()["kind"] == body["kind"]
    conn = connect(garden.db_path)
    try:
        got = store.feedback_for(conn, [reply.id])[reply.id]
    finally:
        conn.close()
    assert [(f.kind, f.reason, f.text) for f in got] == [
        ("bad", "too short", ""),
        ("correction", "", "Wet food, twice a day."),
    ]
    unknown = post(server, "/feedback", {"turn_id": "chatcmpl-nope", "kind": "good"})
    assert unknown.status_code == 404 and "no chat turn" in unknown.json()["error"]["message"]
    wrong = post(server, "/feedback", {"turn_id": reply.id, "kind": "meh"})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "kind"


def test_bad_requests_get_clear_4xx(served, client: openai.OpenAI) -> None:
    garden, server = served
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url, api_key="wrong", max_retries=0).models.list()
    assert httpx.get(f"{server.url}/models").status_code == 401  # no key at all
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        ask(client, model="gpt-4o")
    malformed = post(server, "/chat/completions", b'{"model": "base", "messages": [')
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]["message"]
    assert post(server, "/chat/completions", "[1, 2]").status_code == 400
    big = {"model": "base", "messages": [{"role": "user", "content": "x" * 100_000}]}
    too_big = post(server, "/chat/completions", big)
    assert too_big.status_code == 413 and "larger than 65536" in too_big.json()["error"]["message"]
    cases = [
        ({"model": "base"}, "messages"),
        ({"model": "base", "messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"model": "base", "messages": [{"role": "user", "content": "q"}], "max_tokens": 10**6},
         "max_tokens"),
        ({"model": "base", "messages": [{"role": "user", "content": "q"}], "n": 2}, "n"),
        ({"model": "base", "messages": [{"role": "user", "content": "q"}], "temperature": "hot"},
         "temperature"),
        ({"model": "base", "messages": [{"role": "user", "content": "q"}], "mode": "poem"}, "mode"),
    ]  # fmt: skip
    for body, param in cases:
        answer = post(server, "/chat/completions", body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error"]["param"] == param
    assert httpx.get(f"{server.base}/nowhere").status_code == 404
    assert turns(garden, session="serve") == []  # none of these reached the model


def test_fifty_concurrent_requests_are_answered_or_refused(served, client: openai.OpenAI) -> None:
    garden, server = served
    started = time.monotonic()

    def one(i: int) -> tuple[str, str]:
        try:
            reply = ask(client, max_tokens=6, extra_body={"session": "crowd", "seed": i})
            return "ok", reply.id
        except openai.RateLimitError as exc:
            assert "busy" in exc.message
            return "busy", ""
        except openai.InternalServerError as exc:  # 503 is allowed too, with its message
            assert exc.status_code == 503
            return "busy", ""

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(one, range(50)))
    elapsed = time.monotonic() - started
    answered = [turn_id for status, turn_id in results if status == "ok"]
    assert answered and all(status in ("ok", "busy") for status, _ in results)
    assert elapsed < 120
    assert server.alive() and client.models.list().data
    logged = [t.id for t in turns(garden, session="crowd")]
    assert sorted(logged) == sorted(answered)  # every answer logged exactly once


def test_a_client_that_leaves_mid_stream_is_logged_once_as_cancelled(
    served, client: openai.OpenAI
) -> None:
    garden, server = served
    stream = ask(client, stream=True, max_tokens=1000, extra_body={"session": "leaver", "seed": 1})
    first = next(iter(stream))
    stream.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not turns(garden, session="leaver"):
        time.sleep(0.2)
    (logged,) = turns(garden, session="leaver")
    assert logged.id == first.id and logged.status == "cancelled"
    assert (logged.completion_tokens or 0) < 1000
    assert server.alive()


def test_acknowledged_feedback_survives_a_killed_server(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    garden = tiny_garden(tmp_path / "garden", tiny_model_dir)
    server = ServerProcess(garden, api_key=False).wait_ready()
    try:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
        reply = ask(client)
        acknowledged = [
            post(server, "/feedback", {"turn_id": reply.id, "kind": "good", "reason": str(i)})
            for i in range(5)
        ]
        assert all(a.status_code == 200 for a in acknowledged)
        ids = {a.json()["id"] for a in acknowledged}
        streaming = threading.Event()

        def long_answer() -> None:
            try:
                for _ in ask(client, stream=True, max_tokens=1000, extra_body={"seed": 2}):
                    streaming.set()
            except (openai.APIError, httpx.HTTPError):
                pass  # the server dies under it

        worker = threading.Thread(target=long_answer, daemon=True)
        worker.start()
        assert streaming.wait(60)
        server.kill()  # SIGKILL mid-answer: no cleanup code runs
        worker.join(30)
    finally:
        server.stop()
    conn = connect(garden.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, reason FROM chat_feedback").fetchall()
        assert {row["id"] for row in rows} == ids
        assert [t.id for t in store.list_turns(conn)] == [reply.id]  # the cut one is not logged
    finally:
        conn.close()


def test_serve_refuses_a_missing_api_key_variable(cli, tmp_path: Path, tiny_model_dir: Path):
    garden = tiny_garden(tmp_path / "garden", tiny_model_dir)
    result = cli("serve", "--api-key-env", "BONSAI_NO_SUCH_KEY", "--garden", garden.root)
    assert result.exit_code == 2
    assert "BONSAI_NO_SUCH_KEY is not set" in result.stderr and "Traceback" not in result.output
