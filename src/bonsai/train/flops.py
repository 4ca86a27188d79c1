"""The FLOPs a LoRA training step needs, to state model FLOPs utilisation (MFU) honestly.

Counted is the work the step cannot do without, whatever the implementation:

* frozen linear layers: forward (2 per weight per token) and the gradient with respect to their
  input (2 more); no weight gradient, since LoRA freezes them;
* LoRA weights: forward, input gradient and weight gradient (6 per weight per token);
* attention scores and mixing per example, causal (half of L × L), forward and backward;
* the LM head only at target positions: forward and input gradient (4 × hidden × vocab each).

Prompt tokens run through the body (their keys and values are needed) but never the head, so a
trainer that multiplies the head at every position does more work than this counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def model_shape(model: Any) -> dict[str, int]:
    """Parameter counts and sizes of a (PEFT-wrapped) causal LM that the count needs."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = lm.config
    head = lm.get_output_embeddings().weight
    frozen = lora = 0
    for name, param in lm.named_parameters():
        if param.dim() != 2 or "embed" in name or "lm_head" in name:
            continue
        if "lora_" in name:
            lora += param.numel()
        else:
            frozen += param.numel()
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return {
        "frozen_linear": frozen,
        "lora": lora,
        "layers": config.num_hidden_layers,
        "attention_width": heads * head_dim,
        "hidden": int(head.shape[1]),
        "vocab": int(head.shape[0]),
    }


def step_flops(shape: dict[str, int], lengths: Iterable[int], loss_tokens: int) -> float:
    """FLOPs of one training step over examples of ``lengths`` with ``loss_tokens`` targets."""
    lengths = list(lengths)
    tokens = sum(lengths)
    linear = (4 * shape["frozen_linear"] + 6 * shape["lora"]) * tokens
    # Scores (QKᵀ) and mixing (PV): 2 × 2 × width × L²/2 forward for a causal example; backward
    # does twice that.
    attention = 3 * 2 * shape["attention_width"] * sum(n * n for n in lengths) * shape["layers"]
    head = 4 * shape["hidden"] * shape["vocab"] * loss_tokens
    return float(linear + attention + head)
