"""Attention for packed rows that only computes what each example needs.

A packed row of T tokens holds several examples. With a block-diagonal mask, SDPA still does the
work of a full T × T attention, most of it masked away: for a 2,048-token row of 100-token
examples that is 20 times the needed work, and on a CPU as costly as the linear layers. This
attention runs SDPA once per example instead (causal, no mask), which is exact and costs
Σ Lᵢ² rather than T². It registers as the attention implementation ``bonsai_packed``:

* when the model's forward gets ``bonsai_segments`` (the (start, end) of every example in the
  row), attention runs per example;
* otherwise (generation, a plain forward) it is transformers' SDPA with the usual masks.
"""

from __future__ import annotations

from typing import Any

NAME = "bonsai_packed"
_registered = False


def register() -> str:
    """Register the implementation with transformers (once) and return its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(NAME, packed_attention_forward)
        ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
        _registered = True
    return NAME


def packed_attention_forward(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    sliding_window: int | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Queries (B, H, T, D), keys and values (B, KV, T, D) → (B, T, H, D), as transformers SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    segments = kwargs.pop("bonsai_segments", None)
    if segments is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
            sliding_window=sliding_window, **kwargs,
        )  # fmt: skip
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        # Repeat the shared key/value heads once for the whole row rather than per example.
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    p = dropout if module.training else 0.0
    outputs = []
    for start, end in segments:
        q, k, v = query[:, :, start:end], key[:, :, start:end], value[:, :, start:end]
        length = end - start
        if sliding_window is not None and length > sliding_window:
            # Only an example longer than the window needs an explicit mask.
            i = torch.arange(length, device=query.device)
            mask = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] < sliding_window)
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, scale=scaling
            )
        else:
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=p, scale=scaling
            )
        outputs.append(out)
    attn = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
    return attn.transpose(1, 2).contiguous(), None
