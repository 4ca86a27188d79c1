"""What a keeper's terminal shows: user text never read as markup or obeyed as escape sequences,
`runs` and `logs` within 80 columns, `runs ID|latest`, the promoted run marked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from bonsai.chat import store
from bonsai.garden import Garden
from bonsai.runs import RunManifest, load_run, promote
from bonsai.util.text import fit, redact_secrets, redact_url, shown, terminal_safe

HOSTILE = [
    "[/bold] closes nothing",
    "[bold red]loud[/] and [link=https://x.example]link[/link]",
    "\x1b[2J\x1b[H cleared the screen",
    "\x1b]0;pwned title\x07 and \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "8-bit CSI \x9b31m red \x9d OSC",
    "cursor home\rover it\x08\x08 and a bell\x07 and NUL\x00",
    "[[/]] \\[escaped] [/]",
]


def no_raw_controls(text: str) -> bool:
    return not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)


@pytest.mark.parametrize("text", HOSTILE)
def test_shown_text_is_literal_and_inert(text: str) -> None:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(shown(text))
    out = console.export_text()
    assert no_raw_controls(out)
    # (Rich doubles a trailing backslash so that it cannot escape a closing tag after it.)
    assert out.strip().rstrip("\\") == terminal_safe(text).strip().rstrip("\\")


def test_fit_is_width_aware_for_wide_characters() -> None:
    text = "猫の健康について知りたいです。" * 4
    cut = fit(text, 21)
    assert cut.endswith("…") and cell_len(cut) <= 21 and "猫の健康" in cut
    assert fit("short", 20) == "short" and fit("a\nb\x1b", 20) == "a b\\x1b"


@pytest.mark.parametrize(
    ("url", "shown_as"),
    [
        ("https://user:sk-123@api.example/v1", "https://***@api.example/v1"),
        ("https://sk-123@api.example/v1", "https://***@api.example/v1"),
        ("https://api.example/v1?key=sk-123&x=1", "https://api.example/v1?key=***&x=1"),
        (
            "https://api.example/v1?api_key=a&token=b",
            "https://api.example/v1?api_key=***&token=***",
        ),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ],
)
def test_credentials_in_urls_are_redacted(url: str, shown_as: str) -> None:
    assert redact_url(url) == shown_as
    message = redact_secrets(f"cannot connect to {url}: refused")
    assert message == f"cannot connect to {shown_as}: refused"


def add_note(garden: Garden, folder: Path, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "[x] note.md").write_text(text, encoding="utf-8")


def test_notes_list_and_search_show_hostile_text_literally(
    cli, garden: Garden, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")
    add_note(
        garden,
        tmp_path / "notes",
        "# Title [/bold] \x1b]0;pwned\x07\n\nMochi [/red] eats \x1b[2J wet food twice a day.\n",
    )
    added = cli("notes", "add", tmp_path / "notes", "--garden", garden.root)
    assert added.exit_code == 0, added.output
    assert "[x] note.md" in added.stdout
    listed = cli("notes", "list", "--garden", garden.root)
    assert listed.exit_code == 0, listed.output
    assert "[/bold]" in listed.stdout and no_raw_controls(listed.stdout)
    found = cli("notes", "search", "Mochi wet food", "--garden", garden.root)
    assert found.exit_code == 0, found.output
    assert "Mochi [/red] eats \\x1b[2J wet food" in found.stdout
    assert "\\x1b]0;pwned\\x07" in found.stdout and no_raw_controls(found.stdout)


def test_the_error_printer_prints_markup_in_user_input_literally(cli, garden: Garden) -> None:
    result = cli("notes", "remove", "[/bold]\x1b[31m", "--garden", garden.root)
    assert result.exit_code == 2
    assert "[/bold]\\x1b[31m" in result.stderr and "Traceback" not in result.output


def log_turn(garden: Garden, prompt: str, answer: str, **extra: object) -> store.TurnLog:
    turn = store.TurnLog(
        id=store.new_turn_id(),
        session="s",
        mode="answer",
        run_id="20261204-151000-mochi",
        prompt=prompt,
        rendered_prompt=prompt,
        answer=answer,
        **extra,
    )
    store.log_turn(garden.db, turn)
    return turn


def test_logs_fit_80_columns_and_show_hostile_prompts_literally(
    cli, garden: Garden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    japanese = "猫の健康について知りたいです。" * 6
    log_turn(garden, "What does [/bold] eat? \x1b]0;title\x07\x9b2J", "[bold]Wet food[/] " * 10)
    log_turn(garden, japanese, "もちはウェットフードを食べます。" * 8, status="cancelled")
    result = cli("logs", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), lines
    assert "What does [/bold] eat? \\x1b]0;title\\x07\\x9b2J" in result.stdout
    assert "[bold]Wet food[/]" in result.stdout and no_raw_controls(result.stdout)
    assert "猫の健康について知りたいです。猫の健康" in result.stdout  # one line, not 4-char slices
    assert "cancelled" in result.stdout and "…" in result.stdout
    as_json = cli("logs", "--json", "--garden", garden.root).stdout
    assert no_raw_controls(as_json)  # C1 controls too, which JSON may leave raw
    raw = json.loads(as_json)
    assert raw[0]["prompt"] == "What does [/bold] eat? \x1b]0;title\x07\x9b2J"


def fake_run(garden: Garden, run_id: str, parent: str | None, order: int) -> None:
    folder = garden.runs_dir / run_id
    folder.mkdir(parents=True)
    manifest = RunManifest(
        id=run_id,
        dataset=run_id.split("-", 2)[2],
        layout="bonsai-given",
        status="finished",
        created_at=time.time() + order,
        total_steps=120,
        parent=parent,
        summary={"steps": 120, "val_loss": 1.23456, "best_val_loss": 1.2},
    )
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()), encoding="utf-8")


@pytest.fixture
def with_runs(garden: Garden) -> Garden:
    ids = ["20261204-150000-mochi-care-notes", "20261204-151000-neko", "20261204-152000-mochi"]
    for order, run_id in enumerate(ids):
        fake_run(garden, run_id, ids[order - 1] if order else None, order)
    promote(garden, load_run(garden, ids[1]))
    return garden


def test_runs_marks_the_promoted_run_within_80_columns(
    cli, with_runs: Garden, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = cli("runs", "--garden", with_runs.root)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), lines
    (marked,) = [line for line in lines if line.lstrip().startswith("* 2026")]
    assert "20261204-151000-neko" in marked and "promoted" in result.stdout
    assert "20261204-150000-mochi-care-notes" in result.stdout  # ids are never cut


@pytest.mark.parametrize(
    ("args", "shown_id"),
    [
        (["20261204-151000-neko"], "20261204-151000-neko"),
        (["latest"], "20261204-152000-mochi"),
        (["--garden", "{root}", "20261204-15000"], "20261204-150000-mochi-care-notes"),
        (["show", "latest"], "20261204-152000-mochi"),
    ],
)
def test_runs_id_and_latest_show_one_run(cli, with_runs: Garden, args: list[str], shown_id) -> None:
    args = [a.replace("{root}", str(with_runs.root)) for a in args]
    if "--garden" not in args:
        args += ["--garden", str(with_runs.root)]
    result = cli("runs", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(shown_id)
    assert ("promoted" in result.stdout.splitlines()[0]) == (shown_id == "20261204-151000-neko")


def test_runs_with_an_unknown_id_says_so(cli, with_runs: Garden) -> None:
    result = cli("runs", "nope", "--garden", with_runs.root)
    assert result.exit_code == 2 and "no run 'nope'" in result.stderr


def test_the_cli_console_neutralises_controls_in_any_renderable() -> None:
    import io

    from rich.table import Table
    from rich.text import Text

    from bonsai.util.text import SafeConsole

    out = io.StringIO()
    console = SafeConsole(file=out, width=80, force_terminal=True, highlight=False)
    table = Table()
    table.add_column("text")
    table.add_row(Text("built \x1b]0;pwned\x07 directly"))
    table.add_row("a plain \x9b2J string")
    console.print(table)
    console.print("[bold]markup[/] kept, \x1b[31m shown", markup=True)
    text = out.getvalue()
    assert "\\x1b]0;pwned" in text and "\\x9b2J" in text and "\\x1b[31m" in text
    assert "\x07" not in text and "\x9b" not in text and "\x1b]" not in text


def test_data_show_and_check_show_escape_sequences_inert(cli, garden: Garden, tmp_path) -> None:
    source = tmp_path / "hostile.json"
    records = [
        {
            "instruction": "Q [/bold] \x1b[2J",
            "output": "A [/red] \x1b]0;x\x07",
            "category": "open_qa",
        },
        {"instruction": "Q [/bold] \x1b[2J", "output": "other", "category": "open_qa"},
    ]
    source.write_text(json.dumps(records), encoding="utf-8")
    assert cli("data", "import", source, "-d", "[/x]", "-g", garden.root).exit_code == 0
    for command in (["data", "show"], ["data", "check", "--no-tokens"], ["teach", "--dry-run"]):
        result = cli(*command, "-d", "[/x]", "-g", garden.root)
        assert "Traceback" not in result.output and no_raw_controls(result.output), command
