"""The student with LoRA: the base model frozen, LoRA weights in float32, precision chosen."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError

if TYPE_CHECKING:
    import torch


def matmul_gflops(dtype: torch.dtype, *, n: int = 1024, seconds: float = 0.15) -> float:
    """Best-of-several speed of an n×n matmul in ``dtype`` on the CPU, in GFLOP/s."""
    import torch

    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    a @ b  # warm up: the first call picks and builds the kernel
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return 2 * n**3 / best / 1e9


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""glibc ``mallopt`` parameters (malloc.h)."""


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for the next allocation instead of handing it back to the
    kernel. A training step frees and reallocates the same few-MB activations every step; left
    to its defaults, glibc returns them and every new tensor pays page faults (measured here:
    0.4 s of system time in some steps of Gemma 3 270M, none once kept). Tensors up to 32 MB
    come from the heap, which stays at its peak. False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20) and mallopt(M_TRIM_THRESHOLD, 1 << 30))


def choose_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """('bf16' or 'fp32', why). 'auto' measures on a CPU: some have fast bfloat16 units, others
    emulate it at half the speed of float32, and the flags alone do not tell them apart."""
    import torch

    if precision != "auto":
        return precision, "given"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "the GPU supports bfloat16"
        return "fp32", "the GPU has no bfloat16"
    if device.type != "cpu":
        return "fp32", f"{device.type} device"
    bf16 = matmul_gflops(torch.bfloat16)
    fp32 = matmul_gflops(torch.float32)
    chosen = "bf16" if bf16 > 1.1 * fp32 else "fp32"
    return chosen, f"matmul measured here: bf16 {bf16:.0f}, fp32 {fp32:.0f} GFLOP/s"


def torch_dtype(precision: str) -> torch.dtype:
    import torch

    return torch.bfloat16 if precision == "bf16" else torch.float32


def check_base_model(name: str) -> None:
    """Fail fast, with one clear line, on a base model that cannot be found.

    A local folder or the embedded model is checked when it is resolved. A Hugging Face id must
    be in the local cache or on the Hub; asking the Hub once (10 s at most) avoids the minute of
    retries a download makes before it gives up on a machine without internet.
    """
    from pathlib import Path

    from bonsai.student.loading import EMBEDDED_ALIASES

    if name in EMBEDDED_ALIASES or Path(name).expanduser().exists():
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        return  # resolve_base_model names the missing folder
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    hint = "pass a local model folder, a Hugging Face id, or embedded:gemma-3-270m"
    if constants.HF_HUB_OFFLINE:
        raise BonsaiError(
            f"'{name}' is not a local folder and not in the Hugging Face cache (HF_HUB_OFFLINE)",
            field="base_model",
            hint=hint,
        )
    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:
        return  # it exists; the download will ask for access with its own message
    except RepositoryNotFoundError:
        raise BonsaiError(
            f"no model '{name}' on the Hugging Face Hub", field="base_model", hint=hint
        ) from None
    except Exception:
        raise BonsaiError(
            f"'{name}' is not a local folder, not in the Hugging Face cache, and the Hub cannot "
            "be reached",
            field="base_model",
            hint=hint,
        ) from None


def load_base(name: str, precision: str) -> Any:
    """The base model in the training precision, with attention that computes each example of a
    packed row on its own (see ``attention``)."""
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    from bonsai.student import resolve_base_model
    from bonsai.train.attention import register

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    source = resolve_base_model(name)
    try:
        config = AutoConfig.from_pretrained(source)
        # SDPA cannot soft-cap attention logits (Gemma 2 does); those models need eager attention.
        capped = getattr(config, "attn_logit_softcapping", None)
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=torch_dtype(precision),
            attn_implementation="eager" if capped else register(),
        )
    except (OSError, ValueError) as exc:
        raise BonsaiError(
            f"could not load the base model '{name}': {str(exc).splitlines()[0]}",
            hint="use a local model folder, a Hugging Face id, or embedded:gemma-3-270m",
        ) from None
    model.config.use_cache = False
    return model


def add_lora(
    model: Any,
    *,
    rank: int,
    alpha: float,
    targets: str,
    dropout: float,
    seed: int,
    parent_adapter: Path | None = None,
) -> Any:
    """``model`` with LoRA weights: new ones (seeded), or a parent run's to continue from.

    LoRA weights are float32 even when the base is bfloat16: their updates are small, and in
    bfloat16 many would round away.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    if parent_adapter is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = PeftModel.from_pretrained(model, parent_adapter, is_trainable=True)
    else:
        target_modules: str | list[str] = (
            "all-linear" if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        )
        config = LoraConfig(
            r=rank,
            lora_alpha=alpha,  # type: ignore[arg-type]  # peft annotates int; it divides by r
            lora_dropout=dropout,
            target_modules=target_modules,
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(seed)
        try:
            with warnings.catch_warnings():
                # peft still calls a transformers method that is deprecated; nothing to act on.
                warnings.simplefilter("ignore", FutureWarning)
                model = get_peft_model(model, config)
        except ValueError as exc:
            raise BonsaiError(
                f"LoRA targets do not fit this model: {exc}", field="lora_targets"
            ) from None
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return model


def trainable_parameters(model: Any) -> list[Any]:
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, all) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
