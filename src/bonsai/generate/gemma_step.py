"""A lean decode step for Gemma 3: the same arithmetic as transformers' forward, fewer operations.

Once the weights are small (:mod:`bonsai.generate.fast`), what is left of a token's time is the
model's bookkeeping: transformers' forward builds attention masks, rotary tables for every
layer type, cache objects that concatenate tensors, and about 650 tensor operations per token.
For one token at a time none of that is needed. This step calls the model's own modules (its
linear layers, norms and MLPs, whatever they were swapped for) in the order the Gemma 3 decoder
layer does, with a preallocated KV cache and one rotary table per layer type per token.

It is used for decoding only; the prompt is processed by transformers' own forward, whose KV
cache is then copied into the buffers. Any model it does not recognise exactly (another
architecture, logit soft-capping, a non-default RoPE, bidirectional attention) keeps the plain
path. ``tests/test_generate_gemma_step.py`` checks the logits against transformers' token by
token, past the sliding window.
"""

from __future__ import annotations

from typing import Any

import torch


def supports(model: Any) -> bool:
    """Whether :class:`GemmaStep` computes exactly what this model's forward computes."""
    config = model.config
    if getattr(config, "model_type", "") != "gemma3_text":
        return False
    if config.attn_logit_softcapping or config.final_logit_softcapping:
        return False
    if getattr(config, "use_bidirectional_attention", False):
        return False
    rope = getattr(config, "rope_parameters", None) or {}
    types = set(config.layer_types)
    if not types <= {"sliding_attention", "full_attention"}:
        return False
    return all((rope.get(t) or {}).get("rope_type", "default") == "default" for t in types)


class GemmaStep:
    """Prefill with transformers, then decode one token at a time with the lean step."""

    def __init__(self, model: Any, capacity: int) -> None:
        self.model = model
        self.inner = model.model
        config = model.config
        self.layers = list(self.inner.layers[: config.num_hidden_layers])
        self.types = list(config.layer_types)
        self.window = int(config.sliding_window)
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.scaling = config.query_pre_attn_scalar**-0.5
        self.capacity = capacity
        rotary = self.inner.rotary_emb
        self.inv_freq = {t: getattr(rotary, f"{t}_inv_freq").float() for t in set(self.types)}
        self.rope_scale = {t: getattr(rotary, f"{t}_attention_scaling") for t in set(self.types)}
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.position = 0

    def prefill(self, ids: list[int]) -> torch.Tensor:
        from transformers import DynamicCache

        from bonsai.generate.transformers_compat import cache_argument

        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=torch.tensor([ids]),
            use_cache=True,
            logits_to_keep=1,
            **{cache_argument(self.model): cache},
        )
        n = len(ids)
        shape = (1, self.kv_heads, self.capacity, self.head_dim)
        layers: list[Any] = list(cache.layers)  # transformers' cache layers are loosely typed
        for layer in layers:
            keys = torch.empty(shape, dtype=layer.keys.dtype)
            values = torch.empty(shape, dtype=layer.values.dtype)
            kept = layer.keys.shape[2]  # a sliding layer keeps only the last window - 1
            keys[:, :, n - kept : n] = layer.keys
            values[:, :, n - kept : n] = layer.values
            self.keys.append(keys)
            self.values.append(values)
        self.position = n
        return out.logits[0, -1]

    def _rope(self, layer_type: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = float(self.position) * self.inv_freq[layer_type]
        emb = torch.cat((freqs, freqs))
        scale = self.rope_scale[layer_type]
        return (emb.cos() * scale).to(dtype), (emb.sin() * scale).to(dtype)

    def step(self, token: int) -> torch.Tensor:
        return step_rows((self,), token)[0]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def step_pair(first: GemmaStep, second: GemmaStep, token: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Both decoders' next logits after ``token``, from one pass over the weights.

    Context-aware decoding follows one answer over two prompts (with and without the notes). A
    decode step's time goes into reading the weights, so the two sequences share that read. The
    logits are the ones each :meth:`GemmaStep.step` gives (tests/test_generate_gemma_step.py)."""
    logits = step_rows((first, second), token)
    return logits[0], logits[1]


def step_rows(seqs: tuple[GemmaStep, ...], token: int) -> torch.Tensor:
    """The next logits of every sequence in ``seqs`` (one row each) after the same ``token``.

    The linear layers, norms and MLPs take all rows at once; only attention, whose cache and
    position are each sequence's own, runs per sequence."""
    for seq in seqs:
        if seq.position >= seq.capacity:
            raise RuntimeError("the KV cache is full")
    first, rows = seqs[0], len(seqs)
    heads, kv_heads, head_dim = first.heads, first.kv_heads, first.head_dim
    hidden = first.inner.embed_tokens(torch.tensor([[token]] * rows))
    dtype = hidden.dtype
    ropes = {}
    for t in set(first.types):
        cos_sin = [seq._rope(t, dtype) for seq in seqs]
        ropes[t] = (
            torch.stack([c for c, _ in cos_sin]).view(rows, 1, 1, head_dim),
            torch.stack([s for _, s in cos_sin]).view(rows, 1, 1, head_dim),
        )
    groups = heads // kv_heads
    for i, layer in enumerate(first.layers):
        attn = layer.self_attn
        residual = hidden
        x = layer.input_layernorm(hidden)
        q = attn.q_norm(attn.q_proj(x).view(rows, 1, heads, head_dim).transpose(1, 2))
        k = attn.k_norm(attn.k_proj(x).view(rows, 1, kv_heads, head_dim).transpose(1, 2))
        v = attn.v_proj(x).view(rows, 1, kv_heads, head_dim).transpose(1, 2)
        cos, sin = ropes[first.types[i]]
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        outs = []
        for row, seq in enumerate(seqs):
            p = seq.position
            seq.keys[i][:, :, p] = k[row : row + 1, :, 0]
            seq.values[i][:, :, p] = v[row : row + 1, :, 0]
            start = max(0, p - seq.window + 1) if seq.types[i] == "sliding_attention" else 0
            keys = seq.keys[i][:, :, start : p + 1]
            values = seq.values[i][:, :, start : p + 1]
            # One query: the heads sharing a KV head become that head's rows (no repeat of K/V).
            query = q[row : row + 1].reshape(1, kv_heads, groups, head_dim)
            outs.append(
                torch.nn.functional.scaled_dot_product_attention(
                    query, keys, values, scale=first.scaling
                ).reshape(1, 1, heads * head_dim)
            )
        out = attn.o_proj(outs[0] if rows == 1 else torch.cat(outs))
        hidden = residual + layer.post_attention_layernorm(out)
        residual = hidden
        x = layer.mlp(layer.pre_feedforward_layernorm(hidden))
        hidden = residual + layer.post_feedforward_layernorm(x)
    hidden = first.inner.norm(hidden)
    for seq in seqs:
        seq.position += 1
    return first.model.lm_head(hidden)[:, -1]
