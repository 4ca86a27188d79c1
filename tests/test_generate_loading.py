"""Choosing the run that answers, and loading it: base model, or base + merged LoRA adapter."""

from __future__ import annotations

import shutil
import threading
import warnings
from pathlib import Path

import pytest
import torch
from generate_support import inference_thread_count  # noqa: F401

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.generate.loading import choose_run, default_run_id, load_generator
from bonsai.generate.prompting import get_layout


def use_model(garden: Garden, model_dir: Path) -> None:
    config = garden.config
    config.student.base_model = str(model_dir)
    config.save(garden.config_path)
    garden.__dict__.pop("config", None)


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A real LoRA adapter of the tiny model, made once (with non-zero B, unlike a fresh one)."""
    from peft import LoraConfig, get_peft_model

    from bonsai.student import load_model

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a deprecated transformers API
        model = get_peft_model(
            load_model(str(tiny_model_dir), dtype=torch.float32),
            LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"),
        )
    for name, param in model.named_parameters():
        if "lora_B" in name:  # trained adapters are not zero: make this one change answers
            torch.nn.init.normal_(param, std=0.5)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(out)
    return out


def make_run(
    garden: Garden,
    run_id: str,
    model_dir: Path,
    adapter: Path | None,
    *,
    status: str = "finished",
    layout: str = "alpaca",
):
    """A run made with the train stage's own bookkeeping (folder, manifest, index row)."""
    from bonsai.runs import RunManifest, create_run, set_status

    manifest = RunManifest(
        id=run_id, dataset="cats", base_model={"name": str(model_dir)}, layout=layout
    )
    run = create_run(garden, manifest)
    if adapter is not None:
        shutil.copytree(adapter, run.adapter_dir)
    if status != "running":
        set_status(garden, run, status)
    return run


def test_no_run_means_the_base_model(garden: Garden, tiny_model_dir: Path) -> None:
    use_model(garden, tiny_model_dir)
    choice = choose_run(garden)
    assert choice.id == "base" and choice.is_base
    assert choice.base_model == str(tiny_model_dir) and choice.layout == "alpaca"
    with pytest.raises(BonsaiError, match="no finished run"):
        choose_run(garden, "latest")


def test_default_is_promoted_then_newest_finished(
    garden: Garden, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    from bonsai.runs import promote

    old = make_run(garden, "run-old", tiny_model_dir, adapter_dir)
    make_run(garden, "run-new", tiny_model_dir, adapter_dir)
    make_run(garden, "run-training", tiny_model_dir, adapter_dir, status="running")
    make_run(garden, "run-failed", tiny_model_dir, None, status="failed")
    assert default_run_id(garden) == "run-new"
    assert choose_run(garden, "latest").id == "run-new"
    promote(garden, old)
    assert default_run_id(garden) == "run-old"
    choice = choose_run(garden)
    assert choice.id == "run-old" and choice.base_model == str(tiny_model_dir)
    assert choice.adapter_dir == garden.runs_dir / "run-old" / "adapter"
    # Named on purpose, an unfinished run answers from its adapter so far.
    assert choose_run(garden, "run-training").id == "run-training"
    assert choose_run(garden, "run-ol").id == "run-old"  # a unique start of an id


def test_bad_run_names_are_clear_errors(
    garden: Garden, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    make_run(garden, "run-a", tiny_model_dir, adapter_dir)
    with pytest.raises(BonsaiError, match="no run 'nope'"):
        choose_run(garden, "nope")
    make_run(garden, "run-b", tiny_model_dir, None, status="failed")
    with pytest.raises(BonsaiError, match="no adapter"):
        choose_run(garden, "run-b")
    (garden.runs_dir / "run-a" / "manifest.json").write_text("{not json")
    assert default_run_id(garden) == "base"  # a broken run never becomes the default


def test_a_run_answers_with_its_adapter_merged(
    garden: Garden, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    from peft import PeftModel

    from bonsai.student import load_model

    make_run(garden, "run-x", tiny_model_dir, adapter_dir, layout="bonsai")
    loaded = load_generator(choose_run(garden, "run-x"), precision="bf16")
    assert loaded.layout.name == "bonsai"
    merged = loaded.engine.model
    assert not isinstance(merged, PeftModel)  # merged: plain layers, base speed
    reference = PeftModel.from_pretrained(
        load_model(str(tiny_model_dir), dtype=torch.float32),
        str(garden.runs_dir / "run-x" / "adapter"),
    ).eval()
    base = load_model(str(tiny_model_dir), dtype=torch.float32).eval()
    ids = torch.tensor([loaded.engine.tokenizer("猫は毎日")["input_ids"]])
    with torch.inference_mode():
        got = merged(input_ids=ids).logits.float()
        want = reference(input_ids=ids).logits.float()
        plain = base(input_ids=ids).logits.float()
    assert merged.dtype == torch.bfloat16
    assert torch.allclose(got, want, atol=0.1, rtol=0.05)  # bf16 rounding only
    assert (got - plain).abs().max() > 0.5  # and the adapter really changes the answers


def test_layouts_are_the_train_stage_ones() -> None:
    from bonsai.layouts import render_prompt
    from bonsai.records import Record

    record = Record(
        id="r", instruction="猫は何を食べる？", input="メモ", category="open_qa", language="ja"
    )
    for name in ("alpaca", "bonsai", "bonsai-given"):
        record.reasoning = "You should recall her food."
        assert get_layout(name).render(record) == render_prompt(name, record)
    alpaca = get_layout("alpaca")
    assert not alpaca.shows_category() and "\n### " in alpaca.stop
    assert alpaca.parse(" ウェットフード \n") == (None, "ウェットフード")
    bonsai = get_layout("bonsai")
    assert bonsai.shows_category() and "\n### " not in bonsai.stop  # "### Response" comes later
    text = "You should recall her food.\n\n### Response:\nウェットフード\n### Instruction:\n…"
    assert bonsai.parse(text) == ("You should recall her food.", "ウェットフード")
    with pytest.raises(BonsaiError, match="unknown layout"):
        get_layout("chatml-ish")


@pytest.mark.parametrize("stored", ["float32", "bfloat16"])
def test_a_plain_adapter_folds_in_to_the_same_weights_as_peft(
    garden: Garden, adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path, stored: str
) -> None:
    from peft import PeftModel

    from bonsai.generate.loading import load_weights
    from bonsai.student import load_model

    model_dir = tiny_model_dir
    if stored == "bfloat16":  # as the embedded model is stored
        model_dir = tmp_path / "bf16"
        load_model(str(tiny_model_dir), dtype=torch.bfloat16).save_pretrained(model_dir)
        shutil.copy(tiny_model_dir / "tokenizer.json", model_dir)
        shutil.copy(tiny_model_dir / "tokenizer_config.json", model_dir)
    make_run(garden, "run-f", model_dir, adapter_dir)
    folded, _ = load_weights(choose_run(garden, "run-f"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        reference = PeftModel.from_pretrained(
            load_model(str(model_dir), dtype=torch.float32), str(adapter_dir)
        ).merge_and_unload()
    want = dict(reference.to(torch.bfloat16).named_parameters())
    assert folded.dtype == torch.bfloat16
    for name, param in folded.named_parameters():
        assert torch.equal(param, want[name]), name


def test_other_adapters_are_left_to_peft(
    adapter_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import json

    from bonsai.generate.lora import fold_lora, plain_lora
    from bonsai.student import load_model

    for option, value in (("use_dora", True), ("modules_to_save", ["lm_head"]), ("bias", "all")):
        copy = tmp_path / option
        shutil.copytree(adapter_dir, copy)
        config = json.loads((copy / "adapter_config.json").read_text())
        config[option] = value
        (copy / "adapter_config.json").write_text(json.dumps(config))
        assert plain_lora(copy) is None, option
    # Keys naming layers another model does not have: nothing is changed.
    other = load_model(str(tiny_model_dir), dtype=torch.bfloat16)
    other.model.layers = other.model.layers[:1]
    before = {name: p.clone() for name, p in other.named_parameters()}
    lora = plain_lora(adapter_dir)
    assert lora is not None and fold_lora(other, lora) is None
    assert all(torch.equal(p, before[name]) for name, p in other.named_parameters())


def test_a_run_loads_without_importing_peft(
    garden: Garden, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    import subprocess
    import sys

    make_run(garden, "run-p", tiny_model_dir, adapter_dir)
    code = (
        "import sys\n"
        "from bonsai.garden import Garden\n"
        "from bonsai.generate.loading import choose_run, load_generator\n"
        f"loaded = load_generator(choose_run(Garden.open({str(garden.root)!r}), 'run-p'))\n"
        "print('peft imported:', 'peft' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert "peft imported: False" in out.stdout, out.stderr
    assert out.stderr == ""  # no progress bars, no warnings


def test_an_engine_loads_in_the_background_and_hands_over_its_errors(
    garden: Garden, tiny_model_dir: Path, adapter_dir: Path
) -> None:
    from bonsai.generate import GenerateArgs, generate
    from bonsai.generate.loading import BackgroundGenerator, load_engine

    use_model(garden, tiny_model_dir)
    choice = choose_run(garden)
    warmed = threading.Event()
    engine = BackgroundGenerator(choice.id, lambda: load_engine(choice), then=warmed.set)
    answer = generate(
        engine, "### Instruction:\nhi\n\n### Response:\n", GenerateArgs(max_new_tokens=4)
    )
    assert engine.ready() and answer.completion_tokens > 0
    assert engine.max_context == engine.wait().max_context
    assert warmed.wait(timeout=60)  # what runs after the load, in the same thread

    broken = make_run(garden, "run-broken", tiny_model_dir, adapter_dir)
    (broken.adapter_dir / "adapter_model.safetensors").write_bytes(b"not weights")
    bad = choose_run(garden, "run-broken")
    failing = BackgroundGenerator(bad.id, lambda: load_engine(bad), then=warmed.clear)
    with pytest.raises(BonsaiError, match="could not apply the run's adapter"):
        failing.wait()
    assert warmed.is_set()  # nothing more is loaded after a failed load


def test_the_engine_generates_with_its_threads_in_any_thread(
    garden: Garden, tiny_model_dir: Path
) -> None:
    from bonsai.generate import GenerateArgs, generate
    from bonsai.generate.loading import load_engine

    use_model(garden, tiny_model_dir)
    engine = load_engine(choose_run(garden))
    seen: list[int] = []

    def serve_one() -> None:
        torch.set_num_threads(engine.threads + 1)  # what a fresh thread may start with
        generate(engine, "### Instruction:\nhi\n\n### Response:\n", GenerateArgs(max_new_tokens=2))
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=serve_one)
    worker.start()
    worker.join()
    assert seen == [engine.threads]
