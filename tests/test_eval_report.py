import json
import re
from pathlib import Path

import pytest
from eval_support import sample_results

from bonsai.errors import BonsaiError
from bonsai.evaluate.report import check_writable, render_html, report_stem, write_report


@pytest.fixture(scope="module")
def results() -> dict:
    results = sample_results()
    # A hostile answer must be shown, not run.
    results["items"][0]["answers"]["tuned"]["text"] = "<script>alert(1)</script> 富士山"
    return results


def test_report_is_self_contained_and_has_every_section(results: dict) -> None:
    html = render_html(results)
    for heading in (
        "At a glance",
        "Loss curves",
        "Per category: base vs tuned",
        "Validation loss",
        "Diagnostics",
        "Memorisation",
        "Suspected contradictions",
        "Where the loss comes from",
        "Sample outputs, side by side",
    ):
        assert heading in html, heading
    # Three pictures, all inline; nothing fetched from anywhere.
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', html)) == 3
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; 富士山" in html
    assert "富士山は、日本で一番高い山です。" in html  # CJK kept as text
    assert 'class="verdict strong"' in html  # the staircase history is flagged


def test_report_shows_what_chat_gives(results: dict) -> None:
    html = render_html(results)
    labels = ("facts recall", "exact label", "reply in the target language", "caught in a loop")
    for label in labels:
        assert label in html, label
    tuned = results["summary"]["tuned"]
    assert tuned["open_qa"]["metrics"]["facts"]["n"] == tuned["open_qa"]["n"]  # probes only
    assert "target_language" in tuned["translation"]["metrics"]
    assert "label" in tuned["classification"]["metrics"]
    # Tuned − the looping base model: better at facts, with a bootstrap interval.
    delta = results["deltas"]["base"]["open_qa"]["facts"]
    assert delta["delta"] > 0 and delta["low"] is not None


def test_report_lists_hard_records() -> None:
    results = sample_results(with_history=False)
    results["diagnostics"]["hard_records"] = [
        {
            "id": "cat-0025",
            "category": "open_qa",
            "language": "zh",
            "instruction": "麻糬几岁？",
            "output": "六岁。",
            "loss": 4.47,
            "category_median": 2.94,
            "z": 5.1,
        }
    ]
    html = render_html(results)
    assert "Records the model cannot fit" in html
    assert "cat-0025" in html and "麻糬几岁？" in html and "4.470" in html


def test_report_without_history_or_losses_still_renders() -> None:
    results = sample_results(with_history=False)
    results["val_loss"] = {}
    results["diagnostics"]["loss_table"] = []
    html = render_html(results)
    assert "Loss curves" not in html and "Validation loss" not in html
    assert html.count("data:image/png;base64,") == 1  # only the per-category bars


def test_write_report_writes_html_and_json_atomically(tmp_path: Path, results: dict) -> None:
    html_path, json_path = write_report(tmp_path / "run", "report-x", results)
    assert html_path.name == "report-x.html" and json_path.name == "report-x.json"
    assert json.loads(json_path.read_text(encoding="utf-8"))["primary"] == "tuned"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "report-x.html",
        "report-x.json",
    ]


def test_write_report_leaves_nothing_when_the_second_file_fails(
    tmp_path: Path, results: dict
) -> None:
    folder = tmp_path / "run"
    (folder / "report-x.html").mkdir(parents=True)  # a folder where the HTML file must go
    with pytest.raises(BonsaiError) as info:
        write_report(folder, "report-x", results)
    assert "cannot write the report" in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == ["report-x.html"]  # no JSON, no temp file


def test_unwritable_folder_is_reported_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BonsaiError) as info:
        check_writable(blocker / "reports")
    assert info.value.file == blocker / "reports"


def test_report_stem_is_safe_and_says_what_it_compares() -> None:
    stem = report_stem("evaluation", "run/../x y", when=86400 * 365)
    assert stem.startswith("report-1971") and stem.endswith("-vs-run----x-y")
    assert report_stem("ablation", None).startswith("report-ablation-")
