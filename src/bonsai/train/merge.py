"""``bonsai merge RUN --out DIR``: the base model with a run's LoRA weights folded in.

The result is a plain transformers model folder (weights, config, tokenizer) that needs neither
peft nor BONSAI to load, plus ``bonsai-run.json`` naming the run, its parent and its prompt
layout (a tuned model only answers well when prompted in the layout it learned).

``bonsai merge RUN --gguf`` writes the run as one GGUF file for llama.cpp instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.runs import load_run
from bonsai.util.atomic import atomic_dir, atomic_write_json

if TYPE_CHECKING:
    from bonsai.student.gguf_export import GgufExport


def merge_run(garden: Garden, ref: str, out: Path, *, overwrite: bool = False) -> Path:
    """Write the merged model of run ``ref`` to ``out`` (atomically); returns ``out``.

    The merge is done in float32, so the folded weights are exact, and saved in the dtype the
    base model was stored in.
    """
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from bonsai.student import load_tokenizer, resolve_base_model

    run = load_run(garden, ref)
    adapter = run.final_adapter()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise BonsaiError("the output folder exists and is not empty", file=out, hint="--overwrite")
    base_name = run.manifest.base_model_name
    source = resolve_base_model(base_name)
    transformers.logging.set_verbosity_error()
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    stored = getattr(base.config, "dtype", None) or torch.float32
    if isinstance(stored, str):
        stored = getattr(torch, stored)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged = merged.to(stored)
    tokenizer = load_tokenizer(base_name)
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(
            tmp / "bonsai-run.json",
            {
                "run": run.id,
                "parent": run.parent,
                "dataset": run.dataset,
                "layout": run.manifest.layout,
                "base_model": base_name,
                "adapter": str(adapter),
                "dtype": str(stored).removeprefix("torch."),
                "merged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
    return out


def merge_run_gguf(
    garden: Garden,
    ref: str,
    out: Path | None = None,
    *,
    merged_type: str = "f16",
    progress: Callable[[int, int], None] | None = None,
) -> GgufExport:
    """Write run ``ref`` as one GGUF for llama.cpp (default ``<run>/model.gguf``, where
    ``bonsai chat --engine llama`` finds it). Only for runs on the embedded student, whose own
    GGUF is the base; see :mod:`bonsai.student.gguf_export`."""
    from bonsai.student.embedded import embedded_gguf
    from bonsai.student.gguf_export import GGUF_NAME, export_gguf, merged_type_name
    from bonsai.student.loading import EMBEDDED_ALIASES

    merged_type = merged_type_name(merged_type)
    run = load_run(garden, ref)
    base_name = run.manifest.base_model_name
    if base_name not in EMBEDDED_ALIASES:
        raise BonsaiError(
            f"run {run.id} is on '{base_name}', which BONSAI has no GGUF of",
            field="base_model",
            hint="bonsai merge RUN --out DIR, then llama.cpp's convert_hf_to_gguf.py DIR",
        )
    target = Path(out) if out is not None else run.dir / GGUF_NAME
    return export_gguf(
        embedded_gguf(), run.final_adapter(), target, merged_type=merged_type, progress=progress
    )
