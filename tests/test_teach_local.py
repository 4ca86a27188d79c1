"""The local backend: a transformers model on this machine (a tiny one, built in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from teach_support import add_records, calls, make_records, reasonings, run_teach

from bonsai.garden import Garden
from bonsai.teach.args import TeachArgs


@pytest.mark.slow
def test_local_model_answers_are_logged_and_validated(garden: Garden, tmp_path: Path) -> None:
    tiny = pytest.importorskip("bonsai.student.tiny")
    model_dir = tiny.build_tiny_model(tmp_path / "tiny")
    add_records(garden, "cats", make_records(2))
    args = TeachArgs(
        dataset="cats", backend="local", model=str(model_dir), max_tokens=16, max_attempts=2
    )
    summary = run_teach(garden, args)
    # An untrained model writes noise: every answer is refused, none is stored.
    assert summary.done + len(summary.failed) == 2
    log = calls(garden)
    # Refused answers are asked again, with the reason in the prompt.
    assert len(log) == 2 * 2 - summary.done
    assert all(c["backend"] == "local" and c["completion_tokens"] for c in log)
    assert all(c["prompt_tokens"] > 100 for c in log)  # the whole rendered prompt
    failed = {f.record_id for f in summary.failed}
    assert all(reasonings(garden, "cats")[i] is None for i in failed)


def test_missing_local_model_is_a_clear_error(garden: Garden, tmp_path: Path) -> None:
    add_records(garden, "cats", make_records(1))
    args = TeachArgs(dataset="cats", backend="local", model=str(tmp_path / "no-such-model"))
    summary = run_teach(garden, args)
    assert summary.aborted and "model folder does not exist" in summary.aborted
