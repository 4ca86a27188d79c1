"""Which weights answer, and loading them: a training run (base + LoRA adapter) or the base model.

A run lives in ``<garden>/runs/<run-id>/`` with ``manifest.json`` (``base_model``, ``layout``, …)
and ``adapter/`` (PEFT). For answering, the adapter is merged into a private copy of the base
weights (``merge_and_unload``): the merged model runs as fast as the base, where an unmerged
adapter adds two small matmuls to every linear layer.

Runs are the train stage's (:mod:`bonsai.train.runs`). Which run by default: the promoted one,
else the newest finished run, else the garden's base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.generate.prompting import PromptLayout, get_layout

BASE = "base"


@dataclass
class RunChoice:
    """The weights a session answers with."""

    id: str
    """The run id, or ``base``."""
    base_model: str
    layout: str
    adapter_dir: Path | None = None
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def is_base(self) -> bool:
        return self.adapter_dir is None

    def describe(self) -> str:
        if self.is_base:
            return f"the base model {self.base_model}"
        return f"run {self.id} (base {self.base_model}, layout {self.layout})"


def _base_model_name(manifest: dict[str, Any]) -> str:
    value = manifest.get("base_model")
    if isinstance(value, dict):
        value = value.get("name")
    return str(value or "")


def _usable(run: Any) -> bool:
    """A finished run with its final adapter: one that may answer by default."""
    return run.status == "finished" and (run.adapter_dir / "adapter_config.json").is_file()


def default_run_id(garden: Garden) -> str:
    """The promoted run, else the newest finished run, else ``base``."""
    from bonsai.train.runs import list_runs, promoted_run

    try:
        promoted = promoted_run(garden)
    except BonsaiError:
        promoted = None  # promoted, then its folder was removed: fall back
    if promoted is not None and _usable(promoted):
        return promoted.id
    finished = [run for run in list_runs(garden) if _usable(run)]
    return finished[-1].id if finished else BASE


def choose_run(garden: Garden, name: str | None = None) -> RunChoice:
    """The run called ``name`` (an id or a unique start of one, ``latest`` for the newest
    finished run, ``base``), or None for the default (see :func:`default_run_id`)."""
    from bonsai.train.runs import list_runs, load_run

    if name is None:
        name = default_run_id(garden)
    if name == BASE:
        return RunChoice(id=BASE, base_model=garden.config.student.base_model, layout="alpaca")
    if name == "latest":
        finished = [run for run in list_runs(garden) if _usable(run)]
        if not finished:
            raise BonsaiError(
                "this garden has no finished run yet",
                file=garden.runs_dir,
                hint="`bonsai train` makes one; `--run base` answers with the base model",
            )
        run = finished[-1]
    else:
        run = load_run(garden, name)
    # A run named on purpose may answer from its last checkpoint while it is unfinished.
    adapter = run.final_adapter()
    base_model = _base_model_name(run.manifest)
    if not base_model:
        raise BonsaiError(
            "the run's manifest names no base model", file=run.manifest_path, field="base_model"
        )
    return RunChoice(
        id=run.id,
        base_model=base_model,
        layout=str(run.manifest.get("layout") or "alpaca"),
        adapter_dir=adapter,
        manifest=run.manifest,
    )


def load_weights(choice: RunChoice) -> tuple[Any, Any]:
    """(model, tokenizer) in bfloat16 on the CPU, the run's adapter merged in."""
    import torch

    from bonsai.student import load_model, load_tokenizer

    if choice.is_base:
        return load_model(choice.base_model, dtype=torch.bfloat16), load_tokenizer(
            choice.base_model
        )
    from peft import PeftModel

    assert choice.adapter_dir is not None
    # Merge in float32, then round once: adding a small LoRA delta to bf16 weights loses it.
    model = load_model(choice.base_model, dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(model, str(choice.adapter_dir)).merge_and_unload()
    except (ValueError, OSError, RuntimeError) as exc:
        raise BonsaiError(
            f"could not apply the run's adapter: {str(exc).splitlines()[0]}",
            file=choice.adapter_dir,
        ) from None
    model = model.to(torch.bfloat16)
    source = (
        choice.adapter_dir
        if (choice.adapter_dir / "tokenizer_config.json").is_file()
        else choice.base_model
    )
    return model, load_tokenizer(str(source))


@dataclass
class LoadedRun:
    """A run ready to answer: its engine and prompt layout."""

    choice: RunChoice
    engine: Any
    layout: PromptLayout


def load_generator(
    choice: RunChoice, *, engine: str = "auto", precision: str = "int8"
) -> LoadedRun:
    """Load the weights of ``choice`` into an engine: ``transformers`` (default) or ``llama``
    (llama.cpp, only when ``llama-cpp-python`` is installed and asked for). ``precision``:
    'int8' or 'bf16' (see :mod:`bonsai.generate.fast`). Sets this process's torch threads to
    :func:`~bonsai.generate.fast.inference_threads` (chat and serve run in their own process)."""
    from bonsai.generate.fast import PRECISIONS

    if precision not in PRECISIONS:
        raise BonsaiError(
            f"unknown precision '{precision}'", field="precision", hint="use int8 or bf16"
        )
    layout = get_layout(choice.layout)
    if engine == "llama":
        from bonsai.generate.llama_engine import load_llama_generator

        return LoadedRun(choice, load_llama_generator(choice), layout)
    if engine not in ("auto", "transformers"):
        raise BonsaiError(f"unknown engine '{engine}'", hint="use transformers or llama")
    import torch

    from bonsai.generate.engine import TransformersGenerator
    from bonsai.generate.fast import inference_threads

    torch.set_num_threads(inference_threads())
    model, tokenizer = load_weights(choice)
    generator = TransformersGenerator(model, tokenizer, model_id=choice.id, precision=precision)
    return LoadedRun(choice, generator, layout)
