"""The pages of ``bonsai ui`` without a browser: every page renders, what they show is escaped,
writes need the CSRF token, the token is required off loopback, files stay inside the garden,
import/edit/undo/export go through the CLI's code path."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi.testclient import TestClient

from bonsai.chat import store as chat_store
from bonsai.records import Record
from bonsai.serve.args import ServeArgs
from bonsai.store import Change, RecordStore
from bonsai.web.server import build_ui_state

SCRIPT = "<script>alert(1)</script>"
PAGES = ("/", "/records", "/teach", "/train", "/chat", "/feedback", "/grow", "/reports", "/jobs")


@pytest.fixture(autouse=True)
def _hashing_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")


def _client(garden, host: str = "127.0.0.1") -> tuple[TestClient, object]:
    from bonsai.serve.app import create_app

    state = build_ui_state(garden, ServeArgs(host=host, port=0))
    app = create_app(state, pages=True)
    return TestClient(app, base_url="http://127.0.0.1:8000"), state


def _records(garden, n: int = 5) -> None:
    records = [
        Record(id=f"r{i}", instruction=f"question {i} 猫", output=f"answer {i}", category="open_qa",
               language="en")
        for i in range(n)
    ]  # fmt: skip
    records.append(Record(id="evil", instruction=SCRIPT, output=SCRIPT, language="en"))
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in records], kind="import", description="test"
    )


def _csrf(client: TestClient) -> dict[str, str]:
    html = client.get("/").text
    return {"X-CSRF-Token": re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)}


def test_every_page_renders_and_escapes_what_it_shows(garden):
    _records(garden)
    client, _ = _client(garden)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert "Content-Security-Policy" in response.headers
    page = client.get("/records?dataset=cats&q=alert").text
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "question 0 猫" in client.get("/records?dataset=cats").text


def test_writes_without_the_csrf_token_or_from_another_site_are_refused(garden):
    _records(garden)
    client, _ = _client(garden)
    data = {"dataset": "cats", "id": "r1"}
    assert client.post("/records/delete", data=data).status_code == 403
    foreign = {**_csrf(client), "Origin": "http://evil.example"}
    assert client.post("/records/delete", data=data, headers=foreign).status_code == 403
    assert RecordStore(garden.db).get("cats", "r1") is not None
    ok = client.post("/records/delete", data=data, headers=_csrf(client))
    assert ok.status_code == 200 and "Deleted r1" in ok.text
    assert RecordStore(garden.db).get("cats", "r1") is None


def test_off_loopback_the_token_is_required_and_kept_in_a_cookie(garden):
    client, state = _client(garden, host="0.0.0.0")
    token = state.web.token
    assert token
    assert client.get("/").status_code == 401
    assert client.get("/v1/models").status_code == 401
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    first = client.get(f"/records?token={token}", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/records"
    assert "httponly" in first.headers["set-cookie"].lower()
    assert client.get("/records").status_code == 200  # the cookie now


def test_files_never_leave_the_garden(garden, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("classified contents")
    client, _ = _client(garden)
    for path in (str(outside), "../secret.txt", "/etc/passwd"):
        response = client.get("/files", params={"path": path})
        assert response.status_code == 403 and "classified" not in response.text
    (garden.exports_dir / "ok.txt").write_text("fine")
    assert client.get("/files", params={"path": "exports/ok.txt"}).text == "fine"


def test_import_by_upload_edit_undo_and_export(garden):
    client, _ = _client(garden)
    headers = _csrf(client)
    body = "\n".join(
        json.dumps({"id": f"u{i}", "instruction": f"もちは何歳？{i}", "output": "六歳"})
        for i in range(3)
    )
    response = client.post(
        "/records/import",
        data={"dataset": "cats"},
        files={"file": ("mochi.jsonl", io.BytesIO(body.encode()), "application/jsonl")},
        headers=headers,
    )
    assert "Imported mochi.jsonl" in response.text and "3 added" in response.text
    broken = client.post(
        "/records/import",
        data={"dataset": "cats"},
        files={"file": ("broken.jsonl", io.BytesIO(b'{"instruction": "a"}\n{oops\n'), "x")},
        headers=headers,
    )
    assert "Import refused: broken.jsonl" in broken.text and "line 2" in broken.text
    assert not list(garden.root.glob(".upload-*")), "the temporary upload is removed"

    edit = client.post(
        "/records/save",
        data={"dataset": "cats", "id": "u0", "instruction": "もちは何歳？", "output": "6",
              "category": "open_qa", "language": "ja"},
        headers=headers,
    )  # fmt: skip
    assert edit.status_code == 200 and "saved #" in edit.text
    record = RecordStore(garden.db).get("cats", "u0")
    assert record.output == "6" and record.category_source == "human"
    history = RecordStore(garden.db).history("cats")
    assert [c.kind for c in history] == ["import", "edit"]
    undo = client.post("/records/undo", data={"dataset": "cats"}, headers=headers)
    assert "Undid change #2" in undo.text
    assert RecordStore(garden.db).get("cats", "u0").output == "六歳"

    for fmt in ("jsonl", "csv", "xlsx", "parquet", "alpaca", "dolly", "sharegpt"):
        download = client.get("/records/export", params={"dataset": "cats", "format": fmt})
        assert download.status_code == 200, (fmt, download.text[:200])
        assert "attachment" in download.headers["content-disposition"]
        assert len(download.content) > 50
    jsonl = client.get("/records/export", params={"dataset": "cats", "format": "jsonl"}).text
    assert "もちは何歳？0" in jsonl


def test_records_are_paged_searched_and_checked(garden):
    records = [
        Record(id=f"r{i:03d}", instruction=f"q{i}", output=f"a{i}", category="open_qa",
               language="ja" if i % 2 else "en")
        for i in range(120)
    ]  # fmt: skip
    records.append(Record(id="dup", instruction="q1", output="another answer", language="ja"))
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in records], kind="import", description="t"
    )
    client, _ = _client(garden)
    page = client.get("/records?dataset=cats&page=2").text
    assert "page 2 of 3" in page and "r050" in page and "r049" not in page
    assert "page 3 of 3" in client.get("/records?dataset=cats&page=99").text
    assert "page 3 of 3" in client.get("/records?dataset=cats&q=q&page=99").text
    found = client.get("/records?dataset=cats&q=q11&language=ja").text
    assert "r011" in found and "r111" in found and "r110" not in found
    checked = client.post("/records/check", data={"dataset": "cats"}, headers=_csrf(client))
    assert "findings" in checked.text
    flagged = client.get("/records?dataset=cats&finding=any").text
    assert "dup" in flagged and "r050" not in flagged


def test_the_feedback_queue_shows_what_grow_would_make_and_takes_decisions(garden):
    from grow_support import add_dataset, feedback, turn

    add_dataset(garden)
    t = turn(garden, "How often should I brush Mochi?", "Mochi Mochi.")
    bad = feedback(garden, "bad", t, reason="loops")
    fix = feedback(garden, "correction", t, text="Twice a week.")
    other = feedback(garden, "bad", turn(garden, "Is tuna fine?", "Yes always."))
    client, _ = _client(garden)
    headers = _csrf(client)
    page = client.get("/feedback").text
    assert "How often should I brush Mochi?" in page and "Twice a week." in page
    assert client.post(f"/feedback/{fix}/edit", data={"text": "Twice a week, daily in spring."},
                       headers=headers).status_code == 200  # fmt: skip
    assert chat_store.pending_feedback(garden.db)[1][0].text == "Twice a week, daily in spring."
    client.post(f"/feedback/{bad}/accept", headers=headers)
    better = client.post(
        f"/feedback/{other}/edit", data={"text": "Only a little, as a treat."}, headers=headers
    )
    assert "Added a better answer" in better.text
    client.post(f"/feedback/{other}/reject", headers=headers)
    status = dict(garden.db.execute("SELECT id, status FROM chat_feedback").fetchall())
    assert status[other] == "dismissed" and status[fix] == "pending"


def test_chat_page_lists_a_conversation_with_its_sources(garden):
    log = chat_store.TurnLog(
        id=chat_store.new_turn_id(), session="web-1", mode="answer", run_id="base",
        prompt="もちは何歳？", rendered_prompt="…", answer=f"六歳です {SCRIPT}",
        retrieved=[{"chunk_id": 3, "source": "notes/mochi.md", "heading": "Mochi",
                    "score": 1.0, "citation": "mochi.md › Mochi"}],
        client="serve 127.0.0.1",
    )  # fmt: skip
    chat_store.log_turn(garden.db, log)
    client, _ = _client(garden)
    page = client.get("/chat?session=web-1").text
    assert "もちは何歳？" in page and "mochi.md › Mochi" in page
    assert SCRIPT not in page


def test_uploads_above_the_limit_are_refused_before_they_are_read(garden):
    client, state = _client(garden)
    state.web.max_upload_bytes = 1000
    response = client.post(
        "/records/import",
        data={"dataset": "cats"},
        files={"file": ("big.jsonl", io.BytesIO(b"x" * 5000), "application/jsonl")},
        headers=_csrf(client),
    )
    assert "larger than the upload limit" in response.text
    assert "cats" not in RecordStore(garden.db).dataset_names()


def test_the_api_refuses_a_cross_site_post_but_not_a_program(garden):
    client, _ = _client(garden)
    body = {"kind": "experience", "text": "Mochi likes boxes."}
    foreign = client.post("/v1/feedback", json=body, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    program = client.post("/v1/feedback", json=body)  # no Origin, no CSRF header: a program
    assert program.status_code == 200 and program.json()["kind"] == "experience"


def test_a_jobs_events_stream_its_state_log_and_end(garden):
    from bonsai.web import jobs

    job = jobs.enqueue(garden.db, "teach", {"dataset": "cats"}, "teach cats")
    jobs.claim_next(garden.db, 1)
    path = jobs.log_path(garden.root, job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Teaching 3 records\nもちは何歳？\n", encoding="utf-8")
    jobs.finish(garden.db, job.id, "finished", result={"written": 3})
    client, _ = _client(garden)
    text = client.get(f"/jobs/{job.id}/events").text
    events = re.findall(r"event: (\w+)\ndata: (.*)\n", text)
    assert [name for name, _ in events] == ["job", "log", "end"]
    assert json.loads(events[0][1])["state"] == "finished"
    assert json.loads(events[1][1])["text"] == "Teaching 3 records\nもちは何歳？\n"
    page = client.get(f"/jobs/{job.id}").text
    assert "teach cats" in page and 'id="job-data"' in page
