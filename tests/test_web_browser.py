"""The whole loop in a real browser: headless Chromium (Debian's) driven by Playwright through the
real ``bonsai ui`` on a tiny model.

import a file (and a broken one) → edit a record → undo → teach → train while the curve updates
(and the page is reloaded mid-run) → promote → chat in Japanese, rate, correct, remember →
accept the feedback → grow → the reports. A screenshot of every page goes to
``$BONSAI_SCREENSHOTS`` (default: a pytest temp folder).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from web_support import (
    CHROMIUM_ARGS,
    UiProcess,
    chromium_path,
    loop_records,
    screenshots_dir,
    tiny_garden,
    write_jsonl,
)

pytestmark = pytest.mark.browser

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_dir(tmp_path_factory)


@pytest.fixture
def ui(tmp_path: Path, tiny_model_dir: Path):
    garden = tiny_garden(tmp_path / "garden", tiny_model_dir)
    server = UiProcess(garden).wait_ready()
    yield server, garden
    log = server.stop()
    assert "Traceback" not in log, log


def _page(browser, shots: Path):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="ja-JP")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_dialog(dialog) -> None:
        if dialog.type == "alert":  # only a script from the data would raise one
            errors.append(f"alert: {dialog.message}")
        dialog.accept()

    page.on("dialog", on_dialog)

    def shot(name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    return page, shot, errors


def _wait_job(page, states=("finished",), timeout: float = 120.0) -> str:
    page.wait_for_function(
        "states => states.includes(document.getElementById('job-state').textContent)",
        arg=[*states, "failed", "interrupted"],
        timeout=timeout * 1000,
    )
    state = page.locator("#job-state").text_content()
    assert state in states, page.locator("#job-log").text_content()
    return state


def _job_id(page) -> int:
    page.wait_for_url(re.compile(r"/jobs/\d+$"), timeout=20_000)
    return int(page.url.rsplit("/", 1)[1])


def test_the_whole_loop_in_a_browser(browser, shots, ui, tmp_path):
    server, garden = ui
    page, shot, errors = _page(browser, shots)
    base = server.base

    page.goto(base + "/")
    page.get_by_text("Import your records").first.wait_for()
    shot("01-garden-empty")

    # -- import a file, and a broken one ---------------------------------------------------------
    source = write_jsonl(tmp_path / "mochi.jsonl", loop_records())
    page.goto(base + "/records")
    page.locator("#import-form input[type=file]").set_input_files(str(source))
    page.locator("#import-form input[name=dataset]").fill("cats")
    page.locator("#import-form button").click()
    page.locator("#flash .msg").get_by_text("Imported mochi.jsonl").wait_for()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "ok", "output": "fine"}\n{"instruction": oops}\n')
    page.goto(base + "/records?dataset=cats")
    page.get_by_text("Import a file").click()  # folded once the garden has records
    page.locator("#import-form input[type=file]").set_input_files(str(broken))
    page.locator("#import-form button").click()
    error = page.locator("#flash .msg.error")
    error.wait_for()
    text = error.text_content()
    assert "broken.jsonl" in text and "line 2" in text, text
    shot("02-records-broken-upload")

    # -- search, edit in place (Japanese and a script tag shown as text), undo ------------------
    page.goto(base + "/records?dataset=cats&q=もち")
    assert page.locator("tr.record").count() >= 2
    row = page.locator("tr.record", has_text="rec-06")
    row.get_by_role("button", name="Edit").click()
    editor = page.locator("tr.editing textarea[name=output]")
    editor.fill(f"もちは六歳です。{SCRIPT}")
    page.locator("tr.editing").get_by_role("button", name="Save").click()
    saved = page.locator("tr.record", has_text="rec-06")
    saved.get_by_text(SCRIPT, exact=False).wait_for()
    page.locator("#history").get_by_text("edit rec-06").wait_for()
    shot("03-records-edited")
    page.locator("#history li", has_text="edit rec-06").get_by_role("button", name="Undo").click()
    page.locator("#flash .msg").get_by_text("Undid change").wait_for()
    page.locator("#history li.undone").first.wait_for()
    page.wait_for_function(  # the table is refreshed by htmx after the undo
        "s => !document.getElementById('records-table').textContent.includes(s)", arg=SCRIPT
    )
    page.goto(base + "/records?dataset=cats")
    shot("04-records")

    # -- teach (the offline template teacher) ------------------------------------------------
    page.goto(base + "/teach")
    shot("05-teach")
    page.get_by_role("button", name="Teach").click()
    teach_job = _job_id(page)
    _wait_job(page)
    assert "wrote 24 reasonings" in page.locator("#job-log").text_content()
    shot("06-teach-job")

    # -- train: the curve grows while it runs; a reload mid-run redraws it -------------------
    page.goto(base + "/train")
    page.locator("#train-form input[name=max_steps]").fill("40")
    page.get_by_role("button", name="Preview the plan").click()
    page.locator("#train-preview pre").get_by_text("40 steps").wait_for(timeout=60_000)
    shot("07-train")
    page.locator("#train-form button.primary").click()
    train_job = _job_id(page)
    page.wait_for_function(
        "() => Number(document.getElementById('curves').dataset.points || 0) >= 2",
        timeout=120_000,
    )
    first_points = int(page.locator("#curves").get_attribute("data-points"))
    page.reload()
    page.wait_for_function(
        f"() => Number(document.getElementById('curves').dataset.points || 0) > {first_points}"
        " || document.getElementById('job-state').textContent === 'finished'",
        timeout=120_000,
    )
    assert page.locator("#job-state").text_content() in ("running", "finished")
    shot("08-train-running")
    _wait_job(page, timeout=180)
    assert int(page.locator("#curves").get_attribute("data-points")) >= 10
    shot("09-train-finished")
    run_id = server.job(train_job)["result"]["run"]
    page.goto(base + f"/runs/{run_id}")
    page.get_by_role("button", name=re.compile("Promote")).click()
    page.locator("span.badge", has_text="promoted").first.wait_for()
    page.locator("#curves[data-points]").wait_for()
    shot("10-run")

    # -- chat in Japanese: streamed, rated, corrected, remembered ----------------------------
    page.goto(base + "/chat")
    page.locator("#question").fill("もちは何歳ですか？")
    page.locator("#send").click()
    bot = page.locator(".msg-bot").last
    bot.locator(".fb-buttons").wait_for(timeout=120_000)
    assert page.locator(".msg-user").last.text_content() == "もちは何歳ですか？"
    bot.get_by_role("button", name="👎").click()
    bot.locator(".fb-panel:not(.hidden)").get_by_role("button", name="wrong", exact=True).click()
    bot.get_by_role("button", name="Send 👎").click()
    bot.locator(".fb-done.ok").wait_for()
    bot.get_by_role("button", name="Write a better answer").click()
    bot.locator(".fb-panel:not(.hidden) textarea").fill("もちは六歳です。")
    bot.get_by_role("button", name="Save the better answer").click()
    bot.locator(".fb-done.ok").get_by_text("correction").wait_for()
    bot.get_by_role("button", name="Remember this").click()
    bot.locator(".fb-panel:not(.hidden) textarea").fill("もちは毎朝ウェットフードを食べる。")
    bot.get_by_role("button", name="Remember", exact=True).click()
    bot.locator(".fb-done.ok").get_by_text("experience").wait_for()
    page.locator(".sessions a.on", has_text="もちは何歳ですか？").wait_for()
    shot("11-chat")
    kinds = [
        r[0] for r in garden.db.execute("SELECT kind FROM chat_feedback ORDER BY id").fetchall()
    ]
    assert kinds == ["bad", "correction", "experience"]
    turn = garden.db.execute("SELECT prompt, session, status FROM chat_turns").fetchone()
    assert turn[0] == "もちは何歳ですか？" and turn[1].startswith("web-") and turn[2] == "ok"
    page.get_by_role("link", name="New conversation").click()
    assert page.locator(".msg-bot").count() == 0
    page.locator(".sessions a", has_text="もちは何歳ですか？").click()
    page.locator(".msg-bot .fb-buttons").wait_for()  # the conversation, with its tools

    # -- the feedback queue -----------------------------------------------------------------
    page.goto(base + "/feedback")
    card = page.locator("section.fb[data-kind=correction]")
    card.get_by_text("record").first.wait_for()
    card.get_by_role("button", name="Accept").click()
    page.locator("section.fb[data-kind=correction]").locator(".badge.ok").wait_for()
    shot("12-feedback")

    # -- grow ----------------------------------------------------------------------------------
    page.goto(base + "/grow")
    shot("13-grow")
    page.locator("input[name=steps]").fill("2")
    page.locator("input[name=max_val_loss_increase]").fill("0.5")
    page.locator("input[name=eval_max_items]").fill("4")
    page.locator("input[name=eval_max_probes]").fill("0")
    page.locator("input[name=eval_max_new_tokens]").fill("4")
    page.get_by_role("button", name="Grow").click()
    _job_id(page)
    _wait_job(page, timeout=240)
    page.locator("#grow-result:not(.hidden) table.compare").wait_for()
    shot("14-grow-job")
    page.goto(base + "/grow")
    page.locator(".round table.compare").first.wait_for()
    shot("15-grow-rounds")

    # -- evaluate the first run too; the reports side by side --------------------------------
    page.goto(base + f"/runs/{run_id}")
    page.locator("input[name=max_items]").fill("4")
    page.locator("input[name=max_probes]").fill("0")
    page.locator("input[name=max_new_tokens]").fill("4")
    page.get_by_role("button", name="Evaluate").click()
    _job_id(page)
    _wait_job(page, timeout=180)
    page.locator("#job-report-link:not(.hidden)").wait_for()
    page.goto(base + "/reports")
    page.locator("table.compare").first.wait_for()
    header = page.locator("table.compare thead").text_content()
    assert run_id in header and "B: –" not in header, header
    shot("16-reports")
    page.goto(base + "/")
    shot("17-garden")
    page.locator("ul.notes a").first.click()
    page.get_by_text("もちは毎朝ウェットフードを食べる。").first.wait_for()
    shot("19-note")
    page.goto(base + "/jobs")
    page.locator("table.jobs").get_by_text("teach cats (template)").wait_for()
    shot("20-jobs")
    page.goto(base + f"/jobs/{teach_job}")
    assert not errors, errors


def test_a_restart_mid_training_marks_the_job_interrupted_and_resume_continues(
    browser, shots, tmp_path, tiny_model_dir
):
    from bonsai.store import Change, RecordStore

    garden = tiny_garden(tmp_path / "garden", tiny_model_dir)
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in loop_records()], kind="import", description="test"
    )
    server = UiProcess(garden).wait_ready()
    page, shot, errors = _page(browser, shots)
    try:
        page.goto(server.base + "/train")
        page.locator("#train-form input[name=max_steps]").fill("400")
        page.locator("#train-form button.primary").click()
        job_id = _job_id(page)
        page.wait_for_function(
            "() => Number(document.getElementById('curves').dataset.points || 0) >= 2",
            timeout=120_000,
        )
        server.kill()  # no clean shutdown: the worker loses its server
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = garden.db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row[0] != "running":
                break
            time.sleep(0.5)
        server = UiProcess(garden).wait_ready()
        page.goto(server.base + f"/jobs/{job_id}")
        assert page.locator("#job-state").text_content() == "interrupted"
        assert "server" in page.locator("#job-error").text_content()
        page.locator("#job-log").get_by_text("Interrupted").wait_for()
        page.wait_for_function(
            "() => Number(document.getElementById('curves').dataset.points || 0) >= 2"
        )
        shot("18-train-interrupted")
        page.get_by_role("button", name="Resume").click()
        _job_id(page)
        page.locator("#job-log").get_by_text("Resuming run").wait_for(timeout=120_000)
        page.get_by_role("button", name="Stop").click()
        _wait_job(page, states=("interrupted", "finished"), timeout=120)
        assert not errors, errors
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
