"""Folding a run's LoRA adapter into the model's weights, without importing peft.

A run's adapter is plain LoRA on linear layers (what :mod:`bonsai.train.model` makes): each
adapted layer gets ``W + scale · B @ A``. That is a few lines of torch, where importing peft
alone takes 4–6 s of a chat's start. The sum is computed in float32 and rounded once to the
layer's dtype, as peft's ``merge_and_unload`` on a float32 copy followed by a cast does, so the
merged weights are the same bits (a test compares them with peft's). An adapter using anything
else (DoRA, biases, saved modules, per-layer patterns, embeddings) is not plain: :func:`plain_lora`
says so, and the caller uses peft.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
KEY_PREFIX = "base_model.model."

_OFF_WHEN_PLAIN = (
    "use_dora",
    "fan_in_fan_out",
    "modules_to_save",
    "layer_replication",
    "rank_pattern",
    "alpha_pattern",
    "trainable_token_indices",
    "target_parameters",
    "alora_invocation_tokens",
    "lora_bias",
    "use_qalora",
    "use_bdlora",
    "arrow_config",
)
"""Options that change what an adapter computes; plain LoRA leaves them all empty or false."""


@dataclass
class PlainLora:
    """What folding a plain LoRA adapter needs."""

    weights: Path
    alpha: float
    rslora: bool

    def scale(self, rank: int) -> float:
        return self.alpha / (math.sqrt(rank) if self.rslora else rank)


def plain_lora(adapter_dir: Path) -> PlainLora | None:
    """The adapter in ``adapter_dir`` if it is plain LoRA on linear layers, else None."""
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weights = adapter_dir / ADAPTER_WEIGHTS
    if (
        not isinstance(config, dict)
        or config.get("peft_type") != "LORA"
        or config.get("bias", "none") != "none"
        or any(config.get(option) for option in _OFF_WHEN_PLAIN)
        or not isinstance(config.get("lora_alpha"), int | float)
        or not weights.is_file()
    ):
        return None
    return PlainLora(weights, float(config["lora_alpha"]), bool(config.get("use_rslora")))


def fold_lora(model: Any, lora: PlainLora) -> int | None:
    """Add the adapter's ``scale · B @ A`` to each adapted layer of ``model`` in place; returns
    how many layers changed. None, with ``model`` untouched, when a key does not name a linear
    layer of the model's body (then it is not plain LoRA for this model)."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    tensors = load_file(str(lora.weights))
    pairs = _pairs(tensors)
    if pairs is None:
        return None
    modules = dict(model.named_modules())
    head = model.get_output_embeddings()
    targets: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []
    for name, (a, b) in pairs.items():
        layer = modules.get(name)
        if not isinstance(layer, nn.Linear) or layer is head:
            return None
        if a.shape != (a.shape[0], layer.in_features) or b.shape != (
            layer.out_features,
            a.shape[0],
        ):
            return None
        targets.append((layer, a, b))
    with torch.no_grad():
        for layer, a, b in targets:
            delta = (b.float() @ a.float()) * lora.scale(a.shape[0])
            layer.weight.copy_((layer.weight.float() + delta).to(layer.weight.dtype))
    return len(targets)


def _pairs(tensors: dict[str, Any]) -> dict[str, tuple[Any, Any]] | None:
    """{module name: (A, B)} from the adapter's tensors; None if any key is not a LoRA matrix."""
    found: dict[str, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        if not key.startswith(KEY_PREFIX):
            return None
        for part in ("lora_A", "lora_B"):
            suffix = f".{part}.weight"
            if key.endswith(suffix):
                name = key[len(KEY_PREFIX) : -len(suffix)]
                found.setdefault(name, {})[part] = tensor
                break
        else:
            return None
    if not found or any(set(parts) != {"lora_A", "lora_B"} for parts in found.values()):
        return None
    return {name: (parts["lora_A"], parts["lora_B"]) for name, parts in found.items()}
