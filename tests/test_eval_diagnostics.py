import json
from pathlib import Path

import pytest
from eval_support import staircase_history

from bonsai.errors import BonsaiError
from bonsai.evaluate.diagnostics import (
    LossHistory,
    LossPoint,
    RecordLoss,
    contradictions,
    hard_records,
    load_metrics,
    loss_outliers,
    loss_table,
    memorisation,
)
from bonsai.records import Record
from bonsai.sample import PLANTED_CONTRADICTION_IDS, records_path


def _sample_records() -> list[Record]:
    lines = records_path().read_text(encoding="utf-8").splitlines()
    return [Record.from_dict(json.loads(line)) for line in lines]


def test_staircase_curve_is_called_memorisation() -> None:
    result = memorisation(staircase_history(step_down=0.4))
    assert result.verdict == "strong"
    assert result.val_rising
    assert [s.boundary for s in result.epoch_steps] == [20, 40]
    for step in result.epoch_steps:
        # The drop across a boundary is the 0.4 step plus the trend over the window.
        assert step.drop == pytest.approx(0.45, abs=0.01)
        assert step.usual_drop == pytest.approx(0.05, abs=0.01)
    assert any("each new epoch" in note for note in result.notes)
    assert result.best_val_step == 20


def test_healthy_curve_is_not_called_memorisation() -> None:
    history = LossHistory()
    for step in range(1, 61):
        history.train.append(LossPoint(step, 3.0 - 0.01 * step, (step - 1) / 20))
        if step % 10 == 0:
            history.val.append(LossPoint(step, 3.05 - 0.01 * step, (step - 1) / 20))
    result = memorisation(history)
    assert result.verdict == "none"
    assert not result.val_rising
    assert all(s.drop < 0.1 for s in result.epoch_steps)
    assert result.gap == pytest.approx(0.03, abs=0.005)


def test_load_metrics_reads_the_train_stage_events(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"kind": "epoch", "step": 0, "epoch": 0},
        {"kind": "train", "step": 1, "epoch": 0, "loss": 3.0, "lr": 1e-4, "tokens": 100},
        {"kind": "train", "step": 2, "epoch": 0, "loss": 2.5, "lr": 1e-4, "tokens": 200},
        {"kind": "val", "step": 2, "loss": 2.8, "by_category": {"open_qa": 2.7}, "train_loss": 2.7},
        {"kind": "warning", "step": 2, "message": "x"},
        {"kind": "epoch", "step": 2, "epoch": 1},
        {"kind": "train", "step": 3, "epoch": 1, "loss": 2.0},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"kind": "train", "step": 4, "lo'
    path.write_text(text, encoding="utf-8")
    history = load_metrics(path)
    # The val entry's own train_loss is not a training step of its own.
    assert [(p.step, p.loss) for p in history.train] == [(1, 3.0), (2, 2.5), (3, 2.0)]
    assert [(p.step, p.loss, p.by_category) for p in history.val] == [(2, 2.8, {"open_qa": 2.7})]
    assert history.epoch_boundaries() == [2]
    assert load_metrics(tmp_path / "missing.jsonl").train == []


def test_load_metrics_without_kinds(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"step": 1, "epoch": 0.5, "train_loss": 3.0},
        {"step": 2, "epoch": 1.0, "train_loss": 2.0, "val_loss": 2.5},
        {"step": 3, "epoch": 1.5, "train_loss": 1.5},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    history = load_metrics(path)
    assert len(history.train) == 3 and history.val[0].loss == 2.5
    assert history.epoch_boundaries() == [1]


def test_load_metrics_names_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "train_loss": 3}\nnot json\n{"step": 2, "train_loss": 2}\n')
    with pytest.raises(BonsaiError) as info:
        load_metrics(path)
    assert info.value.line == 2 and info.value.file == path


def test_planted_contradiction_found_from_losses_and_linked_to_its_other_side() -> None:
    records = _sample_records()
    stale, current = PLANTED_CONTRADICTION_IDS
    # After training, the stale weight record is the one the model cannot fit.
    losses = [
        RecordLoss(
            r.id,
            r.category,
            r.language,
            "train",
            3.5 if r.id == stale else 0.8 + (i % 7) * 0.05,
            30,
        )
        for i, r in enumerate(records)
        if r.category == "open_qa"
    ]
    outliers = loss_outliers(losses)
    assert [o["id"] for o in outliers] == [stale]
    found = contradictions(records, losses=losses)
    assert len(found) == 1
    assert found[0]["records"][:2] == [stale, current]
    assert found[0]["sources"] == ["loss"]
    assert {d["id"] for d in found[0]["details"]} >= {stale, current}


def test_an_outlier_without_a_partner_is_a_hard_record_not_a_contradiction() -> None:
    records = _sample_records()
    lonely = "cat-0025"
    losses = [
        RecordLoss(r.id, r.category, r.language, "train", 4.5 if r.id == lonely else 1.0, 30)
        for r in records
        if r.category == "open_qa"
    ]
    assert contradictions(records, losses=losses) == []
    (hard,) = hard_records(records, losses)
    assert hard["id"] == lonely and hard["loss"] == 4.5 and hard["category_median"] == 1.0


def test_check_findings_merge_with_loss_outliers() -> None:
    records = _sample_records()
    stale, current = PLANTED_CONTRADICTION_IDS
    finding = {"kind": "contradiction", "record_ids": [current, stale], "message": "same question"}
    other = {"kind": "near_duplicate", "record_ids": ["cat-0167", "cat-0181"], "message": "x"}
    losses = [
        RecordLoss(
            r.id, r.category, r.language, "train", 4.0 if r.id == stale else 1.0 + (i % 5) * 0.1, 30
        )
        for i, r in enumerate(records)
        if r.category == "open_qa"
    ]
    found = contradictions(records, check_findings=[finding, other], losses=losses)
    assert len(found) == 1
    assert found[0]["sources"] == ["check", "loss"]
    assert set(found[0]["records"]) == {stale, current}


def test_loss_table_shares_add_up_and_sort_by_share() -> None:
    losses = [
        RecordLoss("a", "open_qa", "en", "val", 1.0, 10),
        RecordLoss("b", "open_qa", "en", "val", 3.0, 10),
        RecordLoss("c", "translation", "ja-en", "val", 4.0, 30),
    ]
    table = loss_table(losses)
    assert [(r["category"], r["language"]) for r in table] == [
        ("translation", "ja-en"),
        ("open_qa", "en"),
    ]
    assert sum(r["share"] for r in table) == pytest.approx(1.0)
    assert table[1]["mean_loss"] == pytest.approx(2.0)
    assert table[0]["share"] == pytest.approx(120 / 160)
