"""bonsai grow end to end with a tiny model: train → feedback → grow (promoted) → grow (kept)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grow_support import DATASET, add_dataset, feedback, feedback_rows, turn

from bonsai import runs
from bonsai.grow.args import GrowArgs, PromotionRule
from bonsai.grow.pipeline import Hooks, current_run, grow
from bonsai.grow.rounds import list_rounds
from bonsai.store import RecordStore
from bonsai.train.args import TrainArgs
from bonsai.train.loop import train

FAST_EVAL = ("--eval-max-items", "4", "--eval-max-probes", "0", "--eval-max-new-tokens", "4")


class _StopAtFirstPhase:
    """Evaluation progress that stops the grow like Ctrl-C once answering starts."""

    def phase(self, description, total):
        raise KeyboardInterrupt

    def note(self, message):
        pass

    def close(self):
        pass


@pytest.fixture(autouse=True)
def _hashing_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")


def test_grow_trains_from_the_current_adapter_and_promotes_only_if_not_worse(
    garden, tiny_model_dir, cli
):
    garden.config.student.base_model = str(tiny_model_dir)
    garden.config.save(garden.config_path)
    add_dataset(garden)
    first = train(garden, TrainArgs(dataset=DATASET, max_steps=1))
    assert first is not None and first.status == "finished"
    runs.promote(garden, first)

    t = turn(garden, "How often should I brush Mochi?", "Mochi Mochi Mochi.", run=first.id)
    feedback(garden, "bad", t, reason="loops")
    fix = feedback(garden, "correction", t, text="Twice a week, daily in spring.")

    # 1. A generous rule: the new run is not worse, so it is promoted.
    result = cli(
        "grow", "--steps", "1", *FAST_EVAL, "--max-val-loss-increase", "0.5",
        "--garden", garden.root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Before ({first.id}) and after (" in out
    assert "validation loss" in out and "Promoted only if not worse" in out
    assert "promoted." in out

    (round_,) = list_rounds(garden.db)
    assert round_.stage == "done" and round_.promoted and round_.current_run == first.id
    grown = runs.load_run(garden, round_.new_run)
    assert grown.parent == first.id
    assert runs.promoted_run(garden).id == grown.id
    record_id = feedback_rows(garden)[fix][1]
    record = RecordStore(garden.db).get(DATASET, record_id)
    assert record is not None and record.extra["from_feedback"] == fix
    decision = round_.decision["decision"]
    assert decision["promote"] is True and decision["checks"][0]["name"] == "validation loss"
    report_json = Path(str(round_.report).replace(".html", ".json"))
    report = json.loads(report_json.read_text(encoding="utf-8"))
    assert {m["key"] for m in report["models"]} == {"new", "current"}

    # A second grow has nothing new to do: no record, no run.
    run_count = len(runs.list_runs(garden))
    again = cli("grow", "--steps", "1", *FAST_EVAL, "--garden", garden.root)
    assert again.exit_code == 0 and "No pending feedback" in again.stdout
    assert len(runs.list_runs(garden)) == run_count

    # 2. A rule that asks for a 50% lower validation loss: the new run is kept out. The first
    # attempt is stopped (Ctrl-C) during the evaluation; the rerun evaluates without retraining.
    t2 = turn(garden, "Where does Mochi sleep?", "Sleep sleep.", run=grown.id)
    feedback(garden, "correction", t2, text="On the sofa by the window.")
    args = GrowArgs(
        steps=1,
        eval_max_items=4,
        eval_max_probes=0,
        eval_max_new_tokens=4,
        promotion=PromotionRule(max_val_loss_increase=-0.5),
    )
    with pytest.raises(KeyboardInterrupt):
        grow(garden, args, hooks=Hooks(eval_phases=_StopAtFirstPhase()))
    stopped = list_rounds(garden.db)[-1]
    assert stopped.stage == "trained" and stopped.new_run
    run_count = len(runs.list_runs(garden))

    kept = grow(garden, args)

    assert len(runs.list_runs(garden)) == run_count  # not trained again
    assert kept.resumed and kept.new_run == stopped.new_run
    assert kept.status == "kept", kept.message
    assert "validation loss" in kept.message and f"{grown.id} stays current" in kept.message
    assert runs.promoted_run(garden).id == grown.id
    assert current_run(garden).id == grown.id
    assert list_rounds(garden.db)[-1].promoted is False
