"""Making a small model generate fast on a CPU: fewer bytes read per token.

Generating one token reads every weight once, so on a CPU the time per token is mostly memory
traffic. Gemma 3 270M has a 262k-token vocabulary: its output layer (``lm_head``, tied to the
embedding) is 168M of its 268M parameters, so that layer alone is most of the traffic.

Two changes, each measured by ``bench/generate.py`` (plus Gemma's norms as one fused call):

- :class:`RefinedHead` — the output layer scores every token with 4-bit copies of its weights
  (group-wise, like the GGUF the embedded model ships as), then recomputes the tokens near the
  best exactly in float32 from the original weights. Greedy decoding and top-k sampling only
  ever look at the best tokens, so they see exact scores, at about a quarter of the traffic;
  only scores far down the tail (probabilities below e^-8 of the best) stay approximate.
- :class:`Int8Linear` — ``precision="int8"`` stores the other linear layers as int8 with one
  scale per output row (weight-only; activations stay bf16). This one is an approximation. The
  embedded model's own weights come from 4–8-bit GGUF blocks, so int8 per row is finer than the
  source; for other models it is the usual weight-only int8, close to lossless for most tasks.
  torch's int8 kernel is made for one row at a time (a decode step); for a prompt's many rows
  the layer turns its int8 weights into bf16 ones and runs one bf16 matrix product instead, and
  the prompt is read about twice as fast, as closely to the float32 model (``bench/prefill.py``).

Measured on the embedded model (notes and Japanese seed tasks, 2,580 tokens): the 4-bit pass is
off by at most 3.8 logits, and the refined head picked the float32 best token at every one of
389 positions checked (transformers' own bf16 head, which rounds its scores, misses it at 2%).
int8 layers raise the loss per token by 0.5% (3.242 → 3.258) and agree with bf16 on the most
likely next token 95–99% of the time. A 4-bit body was tried too and rejected: +10% loss.

Packing the 262k-row head into 4 bits takes 5–8 s on a small CPU, so with a cache folder its
result is kept on disk (:func:`cached_pack_int4`), keyed by a checksum of the weights: the next
start reads it in a fraction of a second, and a changed model packs (and saves) afresh.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bonsai.env import THREADS
from bonsai.generate.args import PRECISIONS

HEAD_GROUP = 32
"""Weights sharing one 4-bit scale and offset in the output layer."""
HEAD_WINDOW = 8.0
"""Tokens whose 4-bit score is within this many logits of the best are rescored exactly. The
4-bit error is a fraction of a logit, so the true best token is always among them; and a token
8 logits below the best has a probability e^-8 ≈ 0.03% of it (less still at temperature < 1),
so sampling never needs exact scores further down."""
HEAD_MAX_CANDIDATES = 2048
"""A cap on the rescored tokens, for flat distributions: then the 2048 best 4-bit scores."""
MIN_HEAD_ROWS = 32_768
"""A 4-bit head pays off only for a large vocabulary; small (test) models keep their own."""
HEAD_CACHE_FORMAT = 1
"""Part of a cached head's key: raise it when :func:`pack_int4` changes what it computes."""
HEAD_CACHE_KEEP = 4
"""Cached heads kept per folder (the newest): one per distinct output layer in use."""

log = logging.getLogger(__name__)


def inference_threads() -> int:
    """Threads for generating: ``BONSAI_THREADS``, else one fewer than the CPUs (at least one).

    Measured on the 2-core machine with another process busy: 1 thread ~20 tokens/s, 2 threads
    0.8 tokens/s. Each small matmul is split over all threads and waits for the slowest; a thread
    that is not scheduled stalls every operation. Leaving one core free keeps that from happening.
    """
    chosen = THREADS.get("").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    return max(1, (os.cpu_count() or 1) - 1)


def _has_kernels() -> bool:
    ops = torch.ops.aten
    return all(
        hasattr(ops, name)
        for name in (
            "_weight_int8pack_mm",
            "_weight_int4pack_mm_for_cpu",
            "_convert_weight_to_int4pack_for_cpu",
        )
    )


PREFILL_MIN_ROWS = 64
"""From this many rows (tokens) at once, :class:`Int8Linear` turns its int8 weights and scales
into bf16 weights and runs one bf16 matrix product. torch's int8 kernel reads the int8 weights
as they are, which is what a decode step (one row) wants, but it does not block the product for
many rows. On this machine's CPU, one thread, for a 640×2048 layer: 2.4 ms at 64 rows against
1.9 ms for converting and multiplying (1.2 against 1.05 at 32, where the conversion is most of
the cost; 7.1 against 3.9 at 196; 20.9 against 8.9 at 570)."""


class Int8Linear(nn.Module):
    """A linear layer with int8 weights and a bf16 scale per output row.

    ``prefill_min_rows``: from this many rows, the weights are turned into bf16 for one matrix
    product (see :data:`PREFILL_MIN_ROWS`); None keeps the int8 kernel for every input. The
    scale is folded into the bf16 weights, not applied to the product's bf16 output, which
    would round twice. Teacher-forced over the sample notes (``bench/prefill.py``), the base
    model picks the float32 model's most likely next token at 95.85% of positions this way and
    at 95.77% through the int8 kernel (scaling the output instead: 95.3% on a part of them)."""

    prefill_min_rows: int | None = PREFILL_MIN_ROWS
    weight_int8: torch.Tensor
    scale: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        quantised = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("weight_int8", quantised.contiguous())
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16:
            x = x.to(torch.bfloat16)
        flat = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
        rows = self.prefill_min_rows
        if rows is not None and flat.shape[0] >= rows:
            weight = torch.mul(self.weight_int8, self.scale.float()[:, None])
            out = torch.mm(flat, weight.to(torch.bfloat16).t())
        else:
            out = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scale)
        if x.dim() != 2:
            out = out.view(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out


class GemmaRMSNorm(nn.Module):
    """Gemma's RMSNorm (float32 math, weight applied as 1 + w) as one fused kernel: the same
    numbers as the model's own module, from one call instead of seven. A decode step runs 109
    of them, so this is worth a few milliseconds per token."""

    scale: torch.Tensor

    def __init__(self, norm: Any) -> None:
        super().__init__()
        self.register_buffer("scale", 1.0 + norm.weight.detach().float())
        self.eps = float(norm.eps)
        self.shape = tuple(norm.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.rms_norm(x.float(), self.shape, self.scale, self.eps).to(x.dtype)


def pack_int4(weight: torch.Tensor, group: int = HEAD_GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed weights, scales and zeros) in the layout of torch's CPU int4 matmul.

    Each group of ``group`` weights in a row keeps its minimum and step: w ≈ (q - 8)·step + zero
    with q in 0..15 and zero = min + 8·step.
    """
    rows, cols = weight.shape
    grouped = weight.detach().float().reshape(rows, cols // group, group)
    low = grouped.amin(dim=-1, keepdim=True)
    step = ((grouped.amax(dim=-1, keepdim=True) - low) / 15.0).clamp(min=1e-12)
    q = torch.round((grouped - low) / step).clamp(0, 15).to(torch.int32).reshape(rows, cols)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
    zero = low + 8.0 * step
    scales_zeros = torch.stack([step.squeeze(-1), zero.squeeze(-1)], dim=-1)
    return packed, scales_zeros.transpose(0, 1).contiguous().to(torch.bfloat16)


def head_cache_file(weight: torch.Tensor, folder: Path) -> Path:
    """Where the packed copy of ``weight`` is cached in ``folder``: named by the shape, the group
    size, the torch version (the packed layout is torch's own) and a CRC-32 of the weights
    (0.1 s for the 335 MB head; any changed weight gives another name)."""
    data = weight.detach().contiguous().view(-1).view(torch.uint8).numpy()
    checksum = zlib.crc32(data.data)
    rows, cols = weight.shape
    version = torch.__version__.replace("+", "_")
    name = f"head-int4-v{HEAD_CACHE_FORMAT}-{rows}x{cols}-g{HEAD_GROUP}-{str(weight.dtype)[6:]}"
    return folder / f"{name}-torch{version}-{checksum:08x}.safetensors"


def cached_pack_int4(
    weight: torch.Tensor, folder: Path | None
) -> tuple[tuple[torch.Tensor, torch.Tensor], str]:
    """:func:`pack_int4` of ``weight``, read from ``folder`` when packed there before, else
    packed and saved there (atomically). Returns the packed pair and 'cached', 'packed and
    cached' or 'packed'. A cache that cannot be read or written is only a slower start."""
    if folder is None:
        return pack_int4(weight), "packed"
    path = head_cache_file(weight, folder)
    rows, cols = weight.shape
    if path.is_file():
        try:
            from safetensors.torch import load_file

            tensors = load_file(str(path))
            packed, scales_zeros = tensors["packed"], tensors["scales_zeros"]
            if scales_zeros.shape == (cols // HEAD_GROUP, rows, 2) and packed.shape[0] == rows:
                return (packed, scales_zeros), "cached"
        except Exception as exc:  # a damaged file: pack again and replace it
            log.warning("ignoring the cached output layer %s: %s", path, exc)
    packed_pair = pack_int4(weight)
    try:
        _save_head(path, packed_pair)
    except OSError as exc:
        log.warning("could not cache the output layer in %s: %s", folder, exc)
        return packed_pair, "packed"
    return packed_pair, "packed and cached"


def _save_head(path: Path, packed_pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    from bonsai.util.atomic import atomic_path

    packed, scales_zeros = packed_pair
    with atomic_path(path) as tmp:
        save_file({"packed": packed, "scales_zeros": scales_zeros}, str(tmp))
    older = sorted(
        (p for p in path.parent.glob("head-int4-*.safetensors") if p != path),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in older[HEAD_CACHE_KEEP - 1 :]:
        stale.unlink(missing_ok=True)


class RefinedHead(nn.Module):
    """The output layer: 4-bit scores for every token, exact float32 scores for the best ones."""

    def __init__(self, head: nn.Linear, cache: Path | None = None) -> None:
        """``cache``: a folder to keep the packed 4-bit copy in (see :func:`cached_pack_int4`)."""
        super().__init__()
        # The original weight is kept (shared with the input embedding when tied, so no copy):
        # the exact rescoring reads only the candidates' rows of it.
        self.weight = head.weight
        self.bias = head.bias
        (self.packed, self.scales_zeros), self.source = cached_pack_int4(head.weight, cache)
        self.out_features = head.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        scores = torch.ops.aten._weight_int4pack_mm_for_cpu(
            flat, self.packed, HEAD_GROUP, self.scales_zeros
        ).float()
        if self.bias is not None:
            scores = scores + self.bias.float()
        for row in range(scores.shape[0]):
            self._refine(scores[row], flat[row])
        return scores.reshape(*shape[:-1], self.out_features)

    def _refine(self, scores: torch.Tensor, hidden: torch.Tensor) -> None:
        """Replace the best tokens' 4-bit scores by exact ones, in place."""
        near = scores >= scores.max() - HEAD_WINDOW
        count = int(near.sum())
        if count > HEAD_MAX_CANDIDATES:
            top = scores.topk(HEAD_MAX_CANDIDATES).indices
        else:
            top = near.nonzero().squeeze(1)
        exact = self.weight[top].float() @ hidden.float()
        if self.bias is not None:
            exact = exact + self.bias.float()[top]
        scores.index_copy_(0, top, exact)


def _int4_ok(head: nn.Linear) -> bool:
    return head.out_features >= MIN_HEAD_ROWS and head.in_features % HEAD_GROUP == 0


def prepare_for_inference(
    model: Any, precision: str = "int8", *, cache: Path | None = None
) -> dict[str, Any]:
    """Swap the model's layers in place for the fast ones; returns what was done (for logs).
    ``cache``: a folder where the packed output layer is kept between runs."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    done: dict[str, Any] = {"precision": precision, "head": "bf16", "int8_layers": 0}
    if not _has_kernels() or model.dtype != torch.bfloat16:
        done["note"] = "no CPU int4/int8 kernels in this torch, or not bf16: left as is"
        return done
    if hasattr(model, "peft_config"):
        done["note"] = "adapters attached (merge them first): left as is"
        return done
    head = model.get_output_embeddings()
    if isinstance(head, nn.Linear) and _int4_ok(head):
        refined = RefinedHead(head, cache)
        model.set_output_embeddings(refined)
        done["head"] = f"int4 g{HEAD_GROUP}, exact within {HEAD_WINDOW:g} of the best"
        done["head_pack"] = refined.source
    if precision == "int8":
        done["int8_layers"] = _swap_linears(model.get_decoder())
    done["fused_norms"] = _swap_norms(model)
    return done


def _swap_norms(module: nn.Module) -> int:
    count = 0
    for name, child in list(module.named_children()):
        # Only Gemma's own norm is swapped: its formula is known to match (see the tests).
        if type(child).__name__ in ("Gemma3RMSNorm", "GemmaRMSNorm", "Gemma2RMSNorm"):
            setattr(module, name, GemmaRMSNorm(child))
            count += 1
        else:
            count += _swap_norms(child)
    return count


def _swap_linears(module: nn.Module) -> int:
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear) and child.in_features % 8 == 0:
            setattr(module, name, Int8Linear(child))
            count += 1
        else:
            count += _swap_linears(child)
    return count
