"""``bonsai teach`` from the command line: messages, exit codes, and what the garden keeps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from teach_support import add_records, calls, free_port, make_records, reasonings

from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import RecordStore
from bonsai.testing import ChatRequest, Reply, ScriptedServer, default_reasoning


def _openai(server_url: str, *extra: str) -> list[str]:
    return ["--backend", "openai", "--base-url", server_url, "--model", "scripted", *extra]


def _history_kinds(garden: Garden, dataset: str = "cats") -> list[str]:
    return [c.kind for c in RecordStore(garden.db).history(dataset)]


def test_no_teacher_configured_uses_templates_and_says_so(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(4))
    result = cli("teach", "--dataset", "cats", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert "No teacher configured" in result.stdout and "template" in result.stdout
    assert "taught now" in result.stdout and "requests" in result.stdout
    for record in RecordStore(garden.db).records("cats"):
        assert record.reasoning
        assert record.reasoning_meta and record.reasoning_meta["written_by"] == "template"
    assert _history_kinds(garden) == ["import", "teach"]


def test_openai_backend_from_flags(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(3))
    with ScriptedServer() as server:
        result = cli("teach", "-d", "cats", "-g", garden.root, *_openai(server.url))
        assert server.count == 3
    assert result.exit_code == 0, result.output
    assert f"Teacher: openai · model scripted at {server.url}" in result.stdout
    assert "change #2" in result.stdout and "bonsai data undo" in result.stdout


def test_teacher_settings_from_garden_config(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(2))
    with ScriptedServer() as server:
        config = garden.config
        config.teacher.backend = "openai"
        config.teacher.base_url = server.url
        config.teacher.model = "from-config"
        config.teacher.concurrency = 1
        config.save(garden.config_path)
        result = cli("teach", "-d", "cats", "-g", garden.root)
        assert {r.model for r in server.requests} == {"from-config"}
        assert server.max_in_flight == 1
        # A flag overrides the file.
        cli("teach", "-d", "cats", "-g", garden.root, "--model", "flagged")
        assert server.requests[-1].model == "flagged"
    assert result.exit_code == 0, result.output


def test_dry_run_prints_prompts_and_writes_nothing(garden: Garden, cli) -> None:
    records = make_records(5)
    add_records(garden, "cats", records)
    with ScriptedServer() as server:
        result = cli("teach", "-d", "cats", "-g", garden.root, "--dry-run", *_openai(server.url))
        assert server.count == 0
    assert result.exit_code == 0, result.output
    assert "Would teach 5 records" in result.stdout and "Dry run" in result.stdout
    # Three prompts shown by default, each with its record.
    assert all(r.instruction in result.stdout for r in records[:3])
    assert records[3].instruction not in result.stdout
    assert "## Answer (already written" in result.stdout
    assert _history_kinds(garden) == ["import"]
    assert calls(garden) == []
    assert garden.db.execute("SELECT COUNT(*) FROM teacher_runs").fetchone()[0] == 0
    assert not any(garden.runs_dir.iterdir())


def test_wrong_key_is_one_clear_error(garden: Garden, cli, monkeypatch) -> None:
    add_records(garden, "cats", make_records(3))
    monkeypatch.setenv("MY_KEY", "nope")
    with ScriptedServer(api_key="secret") as server:
        result = cli(
            "teach",
            "-d",
            "cats",
            "-g",
            garden.root,
            *_openai(server.url, "--api-key-env", "MY_KEY"),
        )
    assert result.exit_code == 2
    assert "refused the API key" in result.stderr and "MY_KEY" in result.stderr
    assert "Traceback" not in result.output
    assert _history_kinds(garden) == ["import"]
    assert "nope" not in result.output


def test_missing_key_variable(garden: Garden, cli, monkeypatch) -> None:
    add_records(garden, "cats", make_records(1))
    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    result = cli(
        "teach",
        "-d",
        "cats",
        "-g",
        garden.root,
        *_openai("http://x/v1", "--api-key-env", "NOT_SET_KEY"),
    )
    assert result.exit_code == 2 and "NOT_SET_KEY is not set" in result.stderr


def test_unknown_model_is_one_clear_error(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(3))
    with ScriptedServer(models=["llama3"]) as server:
        result = cli("teach", "-d", "cats", "-g", garden.root, *_openai(server.url))
    assert result.exit_code == 2
    assert "has no model 'scripted'" in result.stderr and "Traceback" not in result.output
    assert set(reasonings(garden, "cats").values()) == {None}


def test_unreachable_endpoint_is_one_clear_error(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(3))
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = cli("teach", "-d", "cats", "-g", garden.root, *_openai(url))
    assert result.exit_code == 2
    assert f"cannot reach the teacher at {url}" in result.stderr
    assert "Traceback" not in result.output
    assert _history_kinds(garden) == ["import"]


def test_template_syntax_error_names_file_and_line(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(4))
    garden.templates_dir.mkdir()
    path = garden.templates_dir / "open_qa.j2"
    path.write_text("Explain this.\n{{ instruction }}\n{% if output %}\nno end\n", encoding="utf-8")
    with ScriptedServer() as server:
        result = cli("teach", "-d", "cats", "-g", garden.root, *_openai(server.url))
        assert server.count == 0  # stopped before any request
    assert result.exit_code == 2
    assert str(path) in result.stderr and "line 4" in result.stderr
    assert "Traceback" not in result.output
    assert _history_kinds(garden) == ["import"]


def test_template_render_error_names_file_and_line(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(4))
    garden.templates_dir.mkdir()
    path = garden.templates_dir / "closed_qa.j2"
    path.write_text("Explain:\n{{ instruction }}\n\n{{ no_such_field }}\n", encoding="utf-8")
    result = cli("teach", "-d", "cats", "-g", garden.root)
    assert result.exit_code == 2
    assert str(path) in result.stderr and "line 4" in result.stderr
    assert "'no_such_field' is undefined" in result.stderr
    assert _history_kinds(garden) == ["import"]


def test_dataset_with_no_records(garden: Garden, cli) -> None:
    RecordStore(garden.db).dataset_id("empty", create=True)
    result = cli("teach", "-d", "empty", "-g", garden.root)
    assert result.exit_code == 2 and "dataset 'empty' has no records" in result.stderr
    result = cli("teach", "-d", "nosuch", "-g", garden.root)
    assert result.exit_code == 2 and "no dataset named 'nosuch'" in result.stderr


def test_bad_flag_values(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(1))
    result = cli("teach", "-d", "cats", "-g", garden.root, "--concurrency", "0")
    assert result.exit_code == 2 and "concurrency" in result.stderr
    result = cli("teach", "-d", "cats", "-g", garden.root, "--backend", "magic")
    assert result.exit_code == 2 and "unknown teacher backend 'magic'" in result.stderr
    result = cli("teach", "-d", "cats", "-g", garden.root, "--backend", "openai")
    assert result.exit_code == 2 and "needs a model name" in result.stderr


def test_some_failures_finish_the_others_and_exit_non_zero(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(5))

    def script(request: ChatRequest) -> Reply | str:
        if "Record 1:" in request.prompt or "Record 3:" in request.prompt:
            return "I cannot help with that."
        return default_reasoning(request)

    with ScriptedServer(script) as server:
        result = cli(
            "teach", "-d", "cats", "-g", garden.root, *_openai(server.url, "--max-attempts", "2")
        )
    assert result.exit_code == 1
    assert "Failed records (2)" in result.stdout
    assert "r001" in result.stdout and "r003" in result.stdout
    texts = reasonings(garden, "cats")
    assert texts["r001"] is None and texts["r003"] is None
    assert all(texts[k] for k in ("r000", "r002", "r004"))


def test_only_missing_keeps_written_reasoning(garden: Garden, cli) -> None:
    records = make_records(3)
    records[0].reasoning = "You should trust what I wrote myself."
    add_records(garden, "cats", records)
    result = cli("teach", "-d", "cats", "-g", garden.root, "--only-missing")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stdout
    texts = reasonings(garden, "cats")
    assert texts["r000"] == "You should trust what I wrote myself."
    assert texts["r001"] and texts["r002"]
    # Without the flag it is replaced, with a warning first.
    result = cli("teach", "-d", "cats", "-g", garden.root)
    assert "1 records already have a reasoning" in result.stderr
    assert reasonings(garden, "cats")["r000"] != "You should trust what I wrote myself."


def test_limit(garden: Garden, cli) -> None:
    add_records(garden, "cats", make_records(5))
    assert cli("teach", "-d", "cats", "-g", garden.root, "--limit", "2").exit_code == 0
    assert [k for k, v in reasonings(garden, "cats").items() if v] == ["r000", "r001"]


def test_init_templates_copies_defaults_once(garden: Garden, cli) -> None:
    result = cli("teach", "-g", garden.root, "--init-templates")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in garden.templates_dir.glob("*.j2"))
    assert "open_qa.j2" in names and "_base.j2" in names and len(names) == 9
    (garden.templates_dir / "open_qa.j2").write_text("mine", encoding="utf-8")
    cli("teach", "-g", garden.root, "--init-templates")
    assert (garden.templates_dir / "open_qa.j2").read_text(encoding="utf-8") == "mine"


def test_help_reads_well(cli) -> None:
    result = cli("teach", "--help")
    assert result.exit_code == 0
    for flag in ("--backend", "--base-url", "--concurrency", "--only-missing", "--dry-run"):
        assert flag in result.stdout
    assert "[teacher]" in result.stdout


def test_japanese_and_chinese_records_with_templates(garden: Garden, cli) -> None:
    records = [
        Record(
            id="ja",
            instruction="猫の名前は？",
            output="もちです。",
            category="open_qa",
            language="ja",
        ),
        Record(
            id="zh", instruction="麻糬几岁？", output="六岁。", category="open_qa", language="zh"
        ),
    ]
    add_records(garden, "cats", records)
    result = cli("teach", "-d", "cats", "-g", garden.root, "--language-policy", "record")
    assert result.exit_code == 0, result.output
    texts = reasonings(garden, "cats")
    assert "べき" in (texts["ja"] or "") and "应该" in (texts["zh"] or "")


def test_killed_run_resumes_without_asking_twice(garden: Garden, tmp_path: Path, cli) -> None:
    """A run killed outright (SIGKILL) loses nothing it had committed."""
    records = make_records(12)
    add_records(garden, "cats", records)
    garden.close()
    with ScriptedServer(latency=0.3) as server:
        cmd = [
            sys.executable, "-c", "from bonsai.cli import main; main()",
            "teach", "-d", "cats", "-g", str(garden.root),
            *_openai(server.url, "--concurrency", "1"),
        ]  # fmt: skip
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 60
        while server.count < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        first = server.prompts()
        assert 5 <= len(first) < 12, proc.stderr.read() if proc.stderr else ""
        killed = Garden.open(garden.root)
        committed = {row["record_id"] for row in calls(killed, status="ok")}
        assert len(committed) >= 4
        assert set(reasonings(killed, "cats").values()) == {None}  # records not yet written
        killed.close()

        result = cli("teach", "-d", "cats", "-g", garden.root, *_openai(server.url))
        second = server.prompts()[len(first) :]
    assert result.exit_code == 0, result.output
    for record in records:
        asked = sum(record.instruction in p for p in second)
        assert asked == (0 if record.id in committed else 1), record.id
    resumed = Garden.open(garden.root)
    assert all(reasonings(resumed, "cats").values())
    ok = sorted(row["record_id"] for row in calls(resumed, status="ok"))
    assert ok == sorted(r.id for r in records)
    resumed.close()


def test_interrupted_run_keeps_finished_records(garden: Garden) -> None:
    """Ctrl-C: what was finished goes into the records as one change; exit code 130."""
    add_records(garden, "cats", make_records(12))
    garden.close()
    with ScriptedServer(latency=0.3) as server:
        cmd = [
            sys.executable, "-c", "from bonsai.cli import main; main()",
            "teach", "-d", "cats", "-g", str(garden.root),
            *_openai(server.url, "--concurrency", "1"),
        ]  # fmt: skip
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            # SIGINT as a terminal has it, even when the tests run with it ignored (nohup, &).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while server.count < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    reopened = Garden.open(garden.root)
    committed = {row["record_id"] for row in calls(reopened, status="ok")}
    texts = reasonings(reopened, "cats")
    assert committed and {k for k, v in texts.items() if v} == committed
    assert _history_kinds(reopened)[-1] == "teach"
    reopened.close()


@pytest.mark.parametrize("policy", ["en", "record"])
def test_manifest_records_the_run(garden: Garden, cli, policy: str) -> None:
    import json

    add_records(garden, "cats", make_records(2))
    cli("teach", "-d", "cats", "-g", garden.root, "--language-policy", policy)
    [run_dir] = list(garden.runs_dir.iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "teach" and manifest["status"] == "done"
    assert manifest["settings"]["language_policy"] == policy
    assert "open_qa.j2" in manifest["templates"]
    assert "_base.j2" in manifest["templates"]["open_qa.j2"]["sources"]
    row = garden.db.execute("SELECT status, summary FROM teacher_runs").fetchone()
    assert row["status"] == "done" and json.loads(row["summary"])["done"] == 2
