"""The teach runner with the real openai client over real HTTP to the scripted local server."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from teach_support import (
    add_records,
    calls,
    free_port,
    make_records,
    openai_args,
    reasonings,
    run_teach,
)

from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import RecordStore
from bonsai.teach.backends import make_teacher
from bonsai.teach.runner import TeachRun, plan_run, teach
from bonsai.testing import ChatRequest, Reply, ScriptedServer, default_reasoning

VALID = "You should read what is asked.\nYou should find the fact that decides it."


def test_teaches_every_record_and_keeps_provenance(garden: Garden) -> None:
    add_records(garden, "cats", make_records(6))
    with ScriptedServer() as server:
        summary = run_teach(garden, openai_args("cats", server.url))
        assert server.count == 6
        assert {r.model for r in server.requests} == {"scripted"}
    assert (summary.done, summary.cached, summary.failed) == (6, 0, [])
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0
    records = RecordStore(garden.db).records("cats")
    for record in records:
        assert record.reasoning and record.reasoning.startswith(
            "Creator should" if record.category == "brainstorming" else "You should"
        )
        meta = record.reasoning_meta or {}
        assert meta["written_by"] == "teacher"
        assert (meta["backend"], meta["model"], meta["attempts"]) == ("openai", "scripted", 1)
        assert meta["template"] == f"{record.category}.j2" and len(meta["template_hash"]) == 16
        assert meta["run_id"] == summary.run_id
    # Each prompt carried its own record.
    prompts = server.prompts()
    assert all(any(r.instruction in p for p in prompts) for r in records)
    log = calls(garden, run_id=summary.run_id)
    assert [c["status"] for c in log] == ["ok"] * 6
    assert all(c["prompt_tokens"] and c["latency_s"] > 0 and c["answer"] for c in log)
    # One undoable change in the history.
    store = RecordStore(garden.db)
    assert store.history("cats")[-1].kind == "teach"
    store.undo("cats")
    assert set(reasonings(garden, "cats").values()) == {None}
    assert summary.manifest is not None and summary.manifest.is_file()


def test_second_run_sends_no_request(garden: Garden) -> None:
    add_records(garden, "cats", make_records(5))
    with ScriptedServer() as server:
        first = run_teach(garden, openai_args("cats", server.url))
        before = reasonings(garden, "cats")
        second = run_teach(garden, openai_args("cats", server.url))
        assert server.count == 5
    assert (first.done, second.done, second.cached, second.requests) == (5, 0, 5, 0)
    assert second.changeset is None and reasonings(garden, "cats") == before
    # After an undo the cache puts the reasoning back, still without a request.
    RecordStore(garden.db).undo("cats")
    with ScriptedServer() as server:
        third = run_teach(garden, openai_args("cats", server.url))
        assert server.count == 0
    assert third.written == 5 and reasonings(garden, "cats") == before


def test_another_model_is_asked_again(garden: Garden) -> None:
    add_records(garden, "cats", make_records(3))
    with ScriptedServer() as server:
        run_teach(garden, openai_args("cats", server.url))
        run_teach(garden, openai_args("cats", server.url, model="other"))
        assert server.count == 6


def test_wrong_key_stops_the_run(garden: Garden, monkeypatch: pytest.MonkeyPatch) -> None:
    add_records(garden, "cats", make_records(6))
    monkeypatch.setenv("TEACH_KEY", "wrong")
    with ScriptedServer(api_key="right") as server:
        summary = run_teach(garden, openai_args("cats", server.url, api_key_env="TEACH_KEY"))
        assert 1 <= server.count <= 4  # the workers' first requests, nothing after
    assert summary.aborted and "refused the API key" in summary.aborted
    assert "TEACH_KEY" in (summary.abort_hint or "")
    assert calls(garden)[0]["error"].startswith("auth: Incorrect API key")  # logged too
    assert set(reasonings(garden, "cats").values()) == {None}
    assert summary.changeset is None


def test_right_key_is_sent(garden: Garden, monkeypatch: pytest.MonkeyPatch) -> None:
    add_records(garden, "cats", make_records(2))
    monkeypatch.setenv("TEACH_KEY", "right")
    with ScriptedServer(api_key="right") as server:
        summary = run_teach(garden, openai_args("cats", server.url, api_key_env="TEACH_KEY"))
    assert summary.done == 2


def test_unknown_model_stops_the_run(garden: Garden) -> None:
    add_records(garden, "cats", make_records(3))
    with ScriptedServer(models=["llama3"]) as server:
        summary = run_teach(garden, openai_args("cats", server.url, concurrency=1))
        assert server.count == 1
    assert summary.aborted and "has no model 'scripted'" in summary.aborted
    assert "does not exist" in summary.aborted  # the server's own words


def test_unreachable_endpoint_fails_fast(garden: Garden) -> None:
    add_records(garden, "cats", make_records(3))
    started = time.perf_counter()
    summary = run_teach(garden, openai_args("cats", f"http://127.0.0.1:{free_port()}/v1"))
    assert time.perf_counter() - started < 5
    assert summary.aborted and "cannot reach the teacher" in summary.aborted
    assert summary.not_reached == 3


def test_rate_limit_is_retried_after_backoff(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    script = [Reply(status=429, headers={"Retry-After": "0.3"}), VALID]
    with ScriptedServer(script) as server:
        summary = run_teach(garden, openai_args("cats", server.url, backoff_max=1.0))
        gap = server.requests[1].received_at - server.requests[0].received_at
    assert summary.done == 1 and summary.requests == 2
    assert gap >= 0.3  # Retry-After honoured
    log = calls(garden)
    assert [c["status"] for c in log] == ["error", "ok"]
    assert log[0]["error"].startswith("rate_limit")


def test_server_error_backs_off_exponentially(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    script = [Reply(status=500), Reply(status=503), VALID]
    with ScriptedServer(script) as server:
        summary = run_teach(garden, openai_args("cats", server.url, backoff=0.1, backoff_max=1))
        times = [r.received_at for r in server.requests]
    assert summary.done == 1 and len(times) == 3
    # Equal jitter: at least half of 0.1 s, then half of 0.2 s.
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1


def test_persistent_errors_fail_one_record_and_finish_the_others(garden: Garden) -> None:
    add_records(garden, "cats", make_records(4))

    def script(request: ChatRequest) -> Reply:
        if "Record 2:" in request.prompt:
            return Reply(status=500, error="the GPU fell over")
        return default_reasoning(request)

    with ScriptedServer(script) as server:
        summary = run_teach(garden, openai_args("cats", server.url, max_retries=2))
        assert server.count_containing("Record 2:") == 3
    assert summary.done == 3
    [failure] = summary.failed
    assert failure.record_id == "r002" and "the GPU fell over" in failure.reason
    assert "3 tries" in failure.reason
    texts = reasonings(garden, "cats")
    assert texts["r002"] is None and all(texts[k] for k in ("r000", "r001", "r003"))


def test_timeout_is_retried(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    with ScriptedServer([Reply(content=VALID, delay=1.5), VALID]) as server:
        summary = run_teach(garden, openai_args("cats", server.url, timeout=0.3))
        assert server.count == 2
    assert summary.done == 1
    assert calls(garden)[0]["error"].startswith("timeout")


@pytest.mark.parametrize(
    "body", ["{not json", '{"choices": []}', "[1, 2]", '{"choices": [{"message": 7}]}']
)
def test_malformed_reply_is_retried(garden: Garden, body: str) -> None:
    add_records(garden, "cats", make_records(1))
    with ScriptedServer([Reply(body=body), VALID]) as server:
        summary = run_teach(garden, openai_args("cats", server.url))
        assert server.count == 2
    assert summary.done == 1
    assert calls(garden)[0]["error"].startswith("bad_reply")


def test_answer_that_always_fails_validation(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    with ScriptedServer(lambda request: "Here is what I think about it.") as server:
        summary = run_teach(garden, openai_args("cats", server.url, max_attempts=3))
        prompts = server.prompts()
    assert len(prompts) == 3
    [failure] = summary.failed
    assert "should start with" in failure.reason and failure.attempts == 3
    # The reason and the rejected reply go back to the teacher with the next attempt.
    assert "could not be used" not in prompts[0]
    assert all("could not be used" in p and "Here is what I think" in p for p in prompts[1:])
    assert reasonings(garden, "cats") == {"r000": None}  # never stored empty
    assert [c["status"] for c in calls(garden)] == ["invalid"] * 3
    assert garden.db.execute("SELECT COUNT(*) FROM teacher_cache").fetchone()[0] == 0


def test_invalid_answer_then_valid_one(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    wrong_form = "Creator should imagine the cat.\nCreator should write freely."
    with ScriptedServer([wrong_form, VALID]) as server:
        summary = run_teach(garden, openai_args("cats", server.url))
        assert "unique-answer category" in server.prompts()[1]
    assert summary.done == 1
    record = RecordStore(garden.db).get("cats", "r000")
    assert record is not None and record.reasoning == VALID
    assert record.reasoning_meta and record.reasoning_meta["attempts"] == 2


def test_answer_is_tidied_before_it_is_stored(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    messy = "<think>hmm</think>\nReasoning:\n- You should read what is asked.\n- You should answer."
    with ScriptedServer([messy]) as server:
        run_teach(garden, openai_args("cats", server.url))
    assert (
        reasonings(garden, "cats")["r000"] == "You should read what is asked.\nYou should answer."
    )


def test_requests_really_run_concurrently(garden: Garden) -> None:
    add_records(garden, "cats", make_records(16))
    with ScriptedServer(latency=0.15) as server:
        args = openai_args("cats", server.url, concurrency=8)
        teacher = make_teacher(args, garden.config)  # imports the client: not part of the timing
        started = time.perf_counter()
        summary = teach(garden, args, teacher)
        elapsed = time.perf_counter() - started
        assert server.max_in_flight == 8
    assert summary.done == 16
    assert elapsed < 16 * 0.15  # sequential takes 2.4 s at least; 8 at once about 0.3 s


def test_concurrency_one_is_sequential(garden: Garden) -> None:
    add_records(garden, "cats", make_records(4))
    with ScriptedServer(latency=0.02) as server:
        run_teach(garden, openai_args("cats", server.url, concurrency=1))
        assert server.max_in_flight == 1


def test_requests_per_minute_limit(garden: Garden) -> None:
    add_records(garden, "cats", make_records(4))
    with ScriptedServer() as server:
        run_teach(garden, openai_args("cats", server.url, requests_per_minute=600))
        times = sorted(r.received_at for r in server.requests)
    # Starts are scheduled 0.1 s apart: the last cannot arrive before 0.3 s after the first
    # (a single gap may look shorter when the one before it was sent late).
    assert len(times) == 4 and times[-1] - times[0] >= 0.29
    assert sum(b - a >= 0.05 for a, b in itertools.pairwise(times)) >= 2


def test_refused_parameter_is_adapted(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    refusal = Reply(
        status=400,
        error="Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead.",
    )
    with ScriptedServer([refusal, VALID]) as server:
        summary = run_teach(garden, openai_args("cats", server.url))
        second = server.requests[1].body
    assert summary.done == 1
    assert "max_completion_tokens" in second and "max_tokens" not in second


def test_bad_request_is_not_retried(garden: Garden) -> None:
    add_records(garden, "cats", make_records(1))
    with ScriptedServer([Reply(status=400, error="prompt is too long")]) as server:
        summary = run_teach(garden, openai_args("cats", server.url))
        assert server.count == 1
    assert "prompt is too long" in summary.failed[0].reason


def test_a_fatal_error_keeps_what_was_done(garden: Garden) -> None:
    add_records(garden, "cats", make_records(6))
    answered = []

    def script(request: ChatRequest) -> Reply:
        answered.append(request)
        if len(answered) > 3:
            return Reply(status=401, error="key revoked")
        return default_reasoning(request)

    with ScriptedServer(script) as server:
        summary = run_teach(garden, openai_args("cats", server.url, concurrency=1))
    assert summary.aborted and "key revoked" in summary.aborted
    assert (summary.done, summary.not_reached) == (3, 3)
    texts = reasonings(garden, "cats")
    assert [k for k, v in texts.items() if v] == ["r000", "r001", "r002"]
    assert RecordStore(garden.db).history("cats")[-1].kind == "teach"


def test_resume_after_cancel_asks_nothing_twice(garden: Garden) -> None:
    records = make_records(10)
    add_records(garden, "cats", records)
    with ScriptedServer(latency=0.03) as server:
        args = openai_args("cats", server.url, concurrency=2)

        async def cancelled_run() -> None:
            teacher = make_teacher(args, garden.config)
            run = TeachRun(garden, args, teacher)
            task = asyncio.create_task(run.run(plan_run(garden, args, teacher)))
            while server.count < 5:
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await teacher.aclose()

        asyncio.run(cancelled_run())
        first_prompts = server.prompts()
        committed = {row["record_id"] for row in calls(garden, status="ok")}
        assert 3 <= len(committed) < 10
        # What was finished before the cancel is in the records already.
        texts = reasonings(garden, "cats")
        assert {k for k, v in texts.items() if v} == committed

        summary = run_teach(garden, args)
        second_prompts = server.prompts()[len(first_prompts) :]
    assert summary.cached == len(committed) and summary.done == 10 - len(committed)
    for record in records:
        asked_again = sum(record.instruction in p for p in second_prompts)
        assert asked_again == (0 if record.id in committed else 1)
    ok = [row["record_id"] for row in calls(garden, status="ok")]
    assert sorted(ok) == sorted(r.id for r in records)  # each record answered exactly once
    assert all(reasonings(garden, "cats").values())


def test_language_policy_record(garden: Garden) -> None:
    record = Record(
        id="ja1",
        instruction="もちの体重はいくつですか？",
        input="定期健診メモ：体重4.2kg（昨年4.1kg）。",
        output="4.2kgです。",
        category="closed_qa",
        language="ja",
    )
    add_records(garden, "cats", [record])
    japanese = "あなたは、メモから体重の行を探すべきです。\nあなたは、単位を付けて答えるべきです。"
    with ScriptedServer([VALID, japanese]) as server:
        summary = run_teach(garden, openai_args("cats", server.url, language_policy="record"))
        first, second = server.prompts()
    assert "Write in Japanese" in first and "あなたは…すべきです" in first
    assert "not written in Japanese" in second
    assert summary.done == 1 and reasonings(garden, "cats")["ja1"] == japanese
