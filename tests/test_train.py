"""The train stage end to end on tiny models: runs, resume, --from, merge, the CLI, bad input.

Tiny 2-layer models (Gemma 3 and Llama architectures) train on a few dozen sample records in
seconds; one thread each, so the suite's other tests keep the second core.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from rich.console import Console

from bonsai import runs
from bonsai.curate.split import SplitArgs, assign_splits
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.sample import records_path
from bonsai.store import Change, RecordStore
from bonsai.train.args import TrainArgs
from bonsai.train.checkpoint import load_checkpoint
from bonsai.train.loop import memorisation_warning, resume, train
from bonsai.train.report import epoch_step_downs

DATASET = "cats"


def sample_records(count: int = 40) -> list[Record]:
    """English sample records that have a reasoning, in id order."""
    lines = records_path().read_text(encoding="utf-8").splitlines()
    records = [Record(**json.loads(line)) for line in lines]
    chosen = [r for r in records if r.language == "en" and r.reasoning]
    return sorted(chosen, key=lambda r: r.id)[:count]


def add_records(garden: Garden, records: list[Record]) -> None:
    store = RecordStore(garden.db)
    store.apply(DATASET, [Change(None, r) for r in records], kind="import", description="test")


def tiny_args(model_dir: Path, **overrides: object) -> TrainArgs:
    settings: dict[str, object] = {
        "base_model": str(model_dir),
        "max_length": 128,
        "batch_tokens": 512,
        "micro_tokens": 512,
        "lr": 5e-3,
        "precision": "fp32",
        "threads": 1,
        "lora_rank": 4,
        **overrides,
    }
    return TrainArgs(dataset=DATASET, **settings)  # type: ignore[arg-type]


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, highlight=False)


def output_of(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def train_losses(run: runs.Run) -> list[float]:
    return [e["loss"] for e in runs.read_metrics(run) if e["kind"] == "train"]


def val_losses(run: runs.Run) -> list[float]:
    return [e["loss"] for e in runs.read_metrics(run) if e["kind"] == "val"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """A garden with one finished run on the tiny Gemma-3 model: 3 epochs, several evals."""
    garden = Garden.init(tmp_path_factory.mktemp("train") / "garden")
    add_records(garden, sample_records(30))
    console = quiet()
    run = train(garden, tiny_args(tiny_model_dir, epochs=3, eval_every=3), console=console)
    yield garden, run, output_of(console)
    garden.close()


# -- a run ---------------------------------------------------------------------------------------


def test_tiny_gemma3_run_learns_and_writes_its_folder(finished, tiny_model_dir: Path) -> None:
    garden, run, output = finished
    assert run.status == "finished"
    losses, vals = train_losses(run), val_losses(run)
    assert len(vals) >= 3
    assert vals[-1] < vals[0] - 0.05
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert "has no validation split" in output and "Finished run" in output

    manifest = json.loads((run.dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "finished"
    assert manifest["layout"] == "bonsai-multitask"
    assert manifest["base_model"]["name"] == str(tiny_model_dir)
    assert manifest["data"]["split"] == "made for this run" and manifest["data"]["val_ids"]
    assert manifest["args"]["lora_rank"] == 4 and manifest["args"]["epochs"] == 3
    assert manifest["code"]["bonsai"] and manifest["code"]["torch"]
    assert manifest["summary"]["val_loss"] == pytest.approx(vals[-1])
    kinds = {e["kind"] for e in runs.read_metrics(run)}
    assert kinds >= {"train", "val", "epoch"}
    for picture in ("loss.png", "loss_by_category.png"):
        assert (run.dir / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Finished run" in run.log_path.read_text(encoding="utf-8")

    row = garden.db.execute(
        "SELECT status, layout, parent FROM training_runs WHERE id = ?", (run.id,)
    ).fetchone()
    assert tuple(row) == ("finished", "bonsai-multitask", None)


def test_epochs_are_marked_where_they_start(finished) -> None:
    _, run, _ = finished
    per_epoch = run.manifest.data["steps_per_epoch"]
    starts = [(e["epoch"], e["step"]) for e in runs.read_metrics(run) if e["kind"] == "epoch"]
    assert starts == [(0, 0), (1, per_epoch[0]), (2, per_epoch[0] + per_epoch[1])]
    assert [epoch for epoch, _, _ in epoch_step_downs(runs.read_metrics(run))] == [2, 3]


def test_lora_weights_changed_and_the_adapter_loads_with_peft(finished, tiny_model_dir) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from bonsai.train.evaluate import validation_loss
    from bonsai.train.prepare import prepare

    garden, run, _ = finished
    weights = adapter_weights(run.adapter_dir)
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and all(w.abs().max() > 0 for w in lora_b)  # LoRA B starts at zero

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, run.adapter_dir)
    args = TrainArgs.from_dict(run.manifest.args)
    prep = prepare(garden, args, val_ids=run.manifest.data["val_ids"])
    assert validation_loss(model, prep.val).mean == pytest.approx(val_losses(run)[-1], rel=1e-4)


def test_tiny_llama_trains_too(garden: Garden, tiny_llama_dir: Path) -> None:
    add_records(garden, sample_records(24))
    run = train(garden, tiny_args(tiny_llama_dir, max_steps=6, eval_every=3), console=quiet())
    assert run is not None and run.status == "finished"
    vals = val_losses(run)
    assert vals[-1] < vals[0]
    assert any(
        w.abs().max() > 0 for n, w in adapter_weights(run.adapter_dir).items() if "lora_B" in n
    )


def test_merged_model_loads_with_plain_transformers_and_matches(
    finished, tiny_model_dir: Path, tmp_path: Path, cli
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    garden, run, _ = finished
    out = tmp_path / "merged"
    result = cli("merge", run.id, "--out", out, "--garden", garden.root)
    assert result.exit_code == 0, result.output
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert json.loads((out / "bonsai-run.json").read_text())["layout"] == "bonsai-multitask"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    adapted = PeftModel.from_pretrained(base, run.adapter_dir)
    ids = torch.tensor([[2, 40, 41, 42, 43, 44, 45]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
        with adapted.disable_adapter():
            assert not torch.allclose(adapted(ids).logits, merged(ids).logits, atol=1e-3)

    again = cli("merge", run.id, "--out", out, "--garden", garden.root)
    assert again.exit_code == 2 and "not empty" in again.stderr


def test_runs_lists_and_shows(finished, cli) -> None:
    garden, run, _ = finished
    listed = cli("runs", "--garden", garden.root)
    assert listed.exit_code == 0 and run.id in listed.stdout and "finished" in listed.stdout
    shown = cli("runs", "show", run.id[:15], "--garden", garden.root)
    assert shown.exit_code == 0, shown.output
    for text in ("validation loss by category", "open_qa", "epoch 2 starts", "adapter"):
        assert text in shown.stdout
    missing = cli("runs", "show", "nope", "--garden", garden.root)
    assert missing.exit_code == 2 and "no run 'nope'" in missing.stderr


# -- resume --------------------------------------------------------------------------------------


def interrupt_at(step: int):
    def on_step(state) -> None:
        if state.step == step:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, to the real handler

    return on_step


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(
    garden: Garden, tiny_model_dir: Path
) -> None:
    add_records(garden, sample_records(24))
    args = tiny_args(tiny_model_dir, max_steps=6, eval_every=2, save_every=100)
    whole = train(garden, args, console=quiet())
    assert whole is not None and whole.status == "finished"

    console = quiet()
    cut = train(garden, args, console=console, on_step=interrupt_at(3))
    assert cut is not None and cut.status == "interrupted"
    assert "Stopped by SIGINT after step 3" in output_of(console)
    assert load_checkpoint(cut.checkpoint_dir).state.step == 3
    assert not cut.adapter_dir.exists()

    console = quiet()
    resumed = resume(garden, console=console)
    assert resumed is not None and resumed.id == cut.id and resumed.status == "finished"
    assert f"Resuming run {cut.id} at step 3 of 6" in output_of(console)

    assert train_losses(resumed) == pytest.approx(train_losses(whole), abs=1e-5)
    assert val_losses(resumed) == pytest.approx(val_losses(whole), abs=1e-5)
    a, b = adapter_weights(whole.adapter_dir), adapter_weights(resumed.adapter_dir)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    steps = [e["step"] for e in runs.read_metrics(resumed) if e["kind"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_with_nothing_unfinished_says_so_and_exits_0(garden: Garden, cli) -> None:
    result = cli("train", "--resume", "--garden", garden.root)
    assert result.exit_code == 0
    assert "No unfinished run" in result.stdout
    refused = cli("train", "--resume", "--lr", "0.1", "--garden", garden.root)
    assert refused.exit_code == 2 and "leave out --lr" in refused.stderr


def test_corrupt_checkpoint_on_resume_names_the_file(
    garden: Garden, tiny_model_dir: Path, cli
) -> None:
    add_records(garden, sample_records(16))
    args = tiny_args(tiny_model_dir, max_steps=4, save_every=100)
    cut = train(garden, args, console=quiet(), on_step=interrupt_at(1))
    assert cut is not None and cut.status == "interrupted"
    optimizer = cut.checkpoint_dir / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    result = cli("train", "--resume", "--garden", garden.root)
    assert result.exit_code == 2
    assert "corrupt" in result.stderr and "optimizer.pt" in result.stderr
    assert "Traceback" not in result.output


def test_full_disk_on_checkpoint_is_clear_and_keeps_the_previous_one(
    garden: Garden, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(garden, sample_records(16))
    real_save = torch.save
    full = {"now": False}

    def save(obj, f, *a, **k):
        # A disk that fills up: this machine's disk cannot be filled for a test, so the write
        # fails the way the kernel reports it.
        if full["now"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    def fill_disk(state) -> None:
        if state.step == 3:
            full["now"] = True

    monkeypatch.setattr(torch, "save", save)
    args = tiny_args(tiny_model_dir, max_steps=6, save_every=2)
    with pytest.raises(BonsaiError, match="no space left on the disk") as error:
        train(garden, args, console=quiet(), on_step=fill_disk)
    assert "previous checkpoint is intact" in str(error.value)
    [run] = runs.list_runs(garden)
    assert run.status == "failed"
    assert load_checkpoint(run.checkpoint_dir).state.step == 2
    assert not [p for p in run.dir.iterdir() if p.name.startswith(".checkpoint")]


def test_data_edited_since_the_run_started_is_refused_on_resume(
    garden: Garden, tiny_model_dir: Path
) -> None:
    records = sample_records(16)
    add_records(garden, records)
    cut = train(
        garden, tiny_args(tiny_model_dir, max_steps=4), on_step=interrupt_at(1), console=quiet()
    )
    assert cut is not None and cut.status == "interrupted"
    store = RecordStore(garden.db)
    edited = store.get(DATASET, records[0].id)
    edited.instruction = "Quickly: " + edited.instruction
    store.update(DATASET, [edited], kind="edit", description="edit")
    with pytest.raises(BonsaiError, match="changed since it started"):
        resume(garden, console=quiet())


# -- --from --------------------------------------------------------------------------------------


def test_from_continues_the_parents_adapter_on_the_next_shard(
    garden: Garden, tiny_model_dir: Path
) -> None:
    records = assign_splits(sample_records(40), SplitArgs(val=0.2, shards=2, seed=0)).records
    add_records(garden, records)
    parent = train(garden, tiny_args(tiny_model_dir, shard=0, max_steps=4), console=quiet())
    assert parent is not None and parent.status == "finished"

    # A learning rate of 1e-9 leaves the weights where they start: the parent's.
    console = quiet()
    child_args = TrainArgs(
        dataset=DATASET, shard=1, from_run=parent.id, max_steps=2, lr=1e-9, threads=1,
        batch_tokens=512, micro_tokens=512, max_length=128, precision="fp32",
    )  # fmt: skip
    child = train(garden, child_args, console=console)
    assert child is not None and child.status == "finished"
    assert child.parent == parent.id and child.manifest.shard == 1
    assert child.manifest.args["lora_rank"] == 4
    assert child.manifest.base_model_name == str(tiny_model_dir)
    assert f"inherited from run {parent.id}" in output_of(console)
    row = garden.db.execute("SELECT parent FROM training_runs WHERE id = ?", (child.id,)).fetchone()
    assert row[0] == parent.id

    a, b = adapter_weights(parent.adapter_dir), adapter_weights(child.adapter_dir)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name
    assert val_losses(child)[0] == pytest.approx(val_losses(parent)[-1], rel=1e-5)

    with pytest.raises(BonsaiError, match="lora_rank"):
        train(garden, TrainArgs(dataset=DATASET, from_run=parent.id, lora_rank=8), console=quiet())


# -- the CLI and bad input ---------------------------------------------------------------------


def test_dry_run_shows_masks_and_counts_and_writes_nothing(
    garden: Garden, tiny_model_dir: Path, cli
) -> None:
    add_records(garden, sample_records(12))
    result = cli(
        "train", "-d", DATASET, "--base-model", tiny_model_dir, "--dry-run",
        "--max-length", "290", "--overlong", "skip", "--garden", garden.root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout + result.stderr
    assert " masked │ <bos>### Category:" in out
    assert "trained │ " in out and "<eos>" in out
    assert "has no validation split" in out
    assert "skipped: longer than 290 tokens" in out
    assert "tokens:" in out and "masked, " in out and "Nothing was trained or written." in out
    assert not any(garden.runs_dir.iterdir())


def test_truncated_examples_are_counted_in_the_manifest(garden: Garden, tiny_model_dir) -> None:
    add_records(garden, sample_records(12))
    run = train(garden, tiny_args(tiny_model_dir, max_length=70, max_steps=1), console=quiet())
    assert run is not None
    data = run.manifest.data
    assert data["train"]["truncated"] + data["val"]["truncated"] > 0
    assert any("truncated" in w for w in run.manifest.warnings)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--layout", "chatml"], "unknown layout 'chatml'"),
        (["--base-model", "./no-such-model"], "model folder does not exist"),
        (["--overlong", "wrap"], "unknown --overlong policy"),
        (["--from", "no-such-run"], "no run 'no-such-run'"),
        (["--shard", "3"], "has no shard 3"),
    ],
)
def test_bad_input_is_one_clear_line(garden: Garden, cli, flags, message) -> None:
    add_records(garden, sample_records(6))
    result = cli("train", "-d", DATASET, "--dry-run", *flags, "--garden", garden.root)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unknown_hub_model_fails_fast_without_network(
    garden: Garden, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # As on a machine without internet: nothing is asked of the Hub.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    add_records(garden, sample_records(6))
    flags = ["--base-model", "someone/no-such-model", "--dry-run", "--garden", garden.root]
    result = cli("train", "-d", DATASET, *flags)
    assert result.exit_code == 2
    assert (
        "'someone/no-such-model' is not a local folder and not in the Hugging Face" in result.stderr
    )


def test_unknown_dataset_and_missing_dataset(garden: Garden, cli) -> None:
    assert "no dataset named 'nope'" in cli("train", "-d", "nope", "-g", garden.root).stderr
    assert "--dataset" in cli("train", "-g", garden.root).stderr


def test_memorisation_warning_only_when_val_rises_while_train_falls() -> None:
    assert memorisation_warning(None, 2.0, None, 1.0) is None
    assert memorisation_warning(2.0, 1.9, 1.5, 1.4) is None  # both fall: learning
    assert memorisation_warning(2.0, 2.2, 1.5, 1.6) is None  # both rise: unstable, not memorising
    warning = memorisation_warning(2.0, 2.2, 1.5, 1.2)
    assert warning is not None and "memorising" in warning


@pytest.mark.slow
def test_embedded_student_fine_tunes_a_few_steps_and_loads_back(garden: Garden) -> None:
    from peft import PeftModel

    from bonsai.student import load_model

    add_records(garden, sample_records(12))
    args = TrainArgs(
        dataset=DATASET, max_steps=2, batch_tokens=512, micro_tokens=512, max_length=256,
        eval_every=2,
    )  # fmt: skip
    run = train(garden, args, console=quiet())
    assert run is not None and run.status == "finished"
    assert run.manifest.base_model_name == "embedded:gemma-3-270m"
    # The embedded student starts from the shipped nursery stock, which becomes the parent.
    assert (run.manifest.parent or "").startswith("nursery-")
    model = PeftModel.from_pretrained(load_model("embedded:gemma-3-270m"), run.adapter_dir)
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert val_losses(run)[-1] < 20


@pytest.mark.slow
def test_embedded_run_exports_as_gguf_and_llama_cpp_runs_it(garden: Garden, cli) -> None:
    """The run's GGUF is the embedded GGUF with the LoRA folded in; where llama-cpp-python is
    installed, chat answers from it (and from the base GGUF) through the llama.cpp engine."""
    import gguf
    import numpy as np

    from bonsai.student.embedded import embedded_gguf
    from bonsai.student.gguf_export import lora_deltas

    add_records(garden, sample_records(12))
    args = TrainArgs(
        dataset=DATASET, max_steps=2, batch_tokens=512, micro_tokens=512, max_length=256,
        eval_every=2, lora_rank=8, lr=1e-3, from_run="base",
    )  # fmt: skip
    run = train(garden, args, console=quiet())
    result = cli("merge", run.id, "--gguf", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    path = run.dir / "model.gguf"
    assert "126 layers merged as F16" in result.stdout.replace("\n", " ")

    def tensor(file: Path, name: str) -> np.ndarray:
        found = next(t for t in gguf.GGUFReader(str(file)).tensors if t.name == name)
        return gguf.quants.dequantize(found.data, found.tensor_type).astype(np.float32)

    delta = lora_deltas(run.adapter_dir)["model.layers.7.mlp.down_proj.weight"]
    base = tensor(embedded_gguf(), "blk.7.ffn_down.weight")
    merged = tensor(path, "blk.7.ffn_down.weight")
    assert np.abs(delta).max() > 1e-4
    assert np.abs(merged - (base + delta)).max() < 0.1 * np.abs(delta).max() + 1e-4

    pytest.importorskip("llama_cpp", reason="llama-cpp-python is an optional extra")
    for which in (run.id, "base"):
        answer = cli(
            "chat", "--engine", "llama", "--run", which, "--once", "What does Mochi eat?",
            "--deterministic", "--max-tokens", "24", "--garden", garden.root,
        )  # fmt: skip
        assert answer.exit_code == 0, answer.output
        assert answer.stdout.strip() and "Traceback" not in answer.output
