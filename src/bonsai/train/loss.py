"""The loss: cross-entropy on target tokens only, computed without ever building all the logits.

The student's LM head is big (Gemma 3: 262,144 × 640), and on a CPU it costs as much as the
whole transformer. So:

1. the decoder runs over the packed row and returns hidden states;
2. only the hidden states at positions that predict a target token go through the LM head;
3. the head and the cross-entropy run in chunks of rows, and each chunk's gradient with respect
   to its hidden states is computed right away (softmax minus one-hot, times the head). So the
   (chunk × vocab) logits are never kept for the backward pass and the head is never multiplied
   twice: memory stays flat and backward is one small multiply.

The chunk's logits live in buffers kept from one call to the next: a fresh 128 MB tensor per
chunk costs more in page faults than the softmax over it (measured here: the head's elementwise
work took 0.4 s a step with fresh tensors, none of it left with reused ones).

The head's weight gets no gradient here: LoRA freezes it. (A model that trains its head, e.g.
with ``modules_to_save``, goes through the plain path.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from bonsai.train.data import Batch

LOGITS_PER_CHUNK = 1 << 25
"""Logits computed at once (32M floats: 128 MB); the chunk's rows follow from the vocab size."""


def _chunk_rows(vocab: int) -> int:
    return max(16, LOGITS_PER_CHUNK // max(1, vocab))


class _ChunkBuffers:
    """A chunk's logits in the head's precision and in float32, and their log-probabilities:
    allocated when first needed (or when a chunk needs more rows) and reused for every chunk of
    every step. Always ordinary tensors, so that inference and training can share them."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.tensors: tuple[Any, Any, Any] | None = None

    def get(self, rows: int, weight: Any) -> tuple[Any, Any, Any]:
        import torch

        key = (weight.shape[0], weight.dtype, weight.device)
        if self.key != key or self.tensors is None or self.tensors[0].shape[0] < rows:
            self.tensors = None  # free the old ones before allocating
            vocab, device = weight.shape[0], weight.device
            with torch.inference_mode(False):
                raw = torch.empty(rows, vocab, dtype=weight.dtype, device=device)
                same = weight.dtype == torch.float32
                logits = raw if same else torch.empty(rows, vocab, device=device)
                logp = torch.empty(rows, vocab, device=device)
            self.key, self.tensors = key, (raw, logits, logp)
        return self.tensors


_BUFFERS = _ChunkBuffers()


def _linear_cross_entropy_class() -> Any:
    import torch

    class LinearCrossEntropy(torch.autograd.Function):
        """Per-token cross-entropy of ``hidden @ weight.T`` against ``targets``, chunked."""

        @staticmethod
        def forward(ctx: Any, hidden, weight, targets, softcap):
            n = hidden.shape[0]
            losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
            grad = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
            step = min(n, _chunk_rows(weight.shape[0]))
            raw_buffer, logits_buffer, logp_buffer = _BUFFERS.get(step, weight)
            for start in range(0, n, step):
                h = hidden[start : start + step]
                t = targets[start : start + step]
                rows = len(t)
                raw, logits, logp = raw_buffer[:rows], logits_buffer[:rows], logp_buffer[:rows]
                torch.mm(h, weight.T, out=raw)
                if logits_buffer is not raw_buffer:
                    logits.copy_(raw)
                if softcap:  # (Gemma 2; rare enough to allocate)
                    capped = torch.tanh(logits / softcap)
                    logits = capped * softcap
                # One fused pass for the log-probabilities (faster than logsumexp and a subtract).
                torch.log_softmax(logits, dim=-1, out=logp)
                losses[start : start + step] = -logp.gather(1, t[:, None])[:, 0]
                if grad is not None:
                    # d loss / d logits = softmax - one_hot, in the log-probabilities' memory.
                    probs = logp.exp_()
                    probs[torch.arange(rows, device=t.device), t] -= 1.0
                    if softcap:
                        probs.mul_(1.0 - capped * capped)
                    raw.copy_(probs)
                    torch.mm(raw, weight, out=grad[start : start + step])
            ctx.save_for_backward(grad)
            return losses

        @staticmethod
        def backward(ctx: Any, grad_losses):
            (grad,) = ctx.saved_tensors
            return grad * grad_losses[:, None].to(grad.dtype), None, None, None

    return LinearCrossEntropy


_FUNCTION: Any = None


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """Per-row cross-entropy (float32, shape (n,)) of the logits ``hidden @ weight.T``."""
    import torch

    global _FUNCTION
    if weight.requires_grad:
        logits = (hidden @ weight.T).float()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    if _FUNCTION is None:
        _FUNCTION = _linear_cross_entropy_class()
    return _FUNCTION.apply(hidden, weight, targets, softcap)


def _causal_lm(model: Any) -> Any:
    """The transformers CausalLM inside a PEFT model (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def token_losses(model: Any, batch: Batch) -> torch.Tensor:
    """Cross-entropy of every target token of ``batch`` (float32, shape (n,)).

    ``model`` is a transformers causal LM or a PEFT model wrapping one. The decoder sees the packed
    row with ``use_cache=False`` and no attention mask, so transformers derives a block-causal mask
    from the restarting position ids and examples do not attend to each other. With the
    ``bonsai_packed`` attention (see ``attention``) each example's attention runs on its own.
    """
    from bonsai.train.attention import NAME as PACKED_ATTENTION

    lm = _causal_lm(model)
    decoder = lm.get_decoder()
    extra = {}
    if getattr(lm.config, "_attn_implementation", None) == PACKED_ATTENTION:
        extra["bonsai_segments"] = batch.segments
    out = decoder(
        input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **extra
    )
    hidden = out.last_hidden_state.flatten(0, 1)[batch.loss_positions]
    head = lm.get_output_embeddings()
    softcap = getattr(lm.config, "final_logit_softcapping", None)
    return linear_cross_entropy(hidden, head.weight, batch.targets, softcap)


def loss_module(model: Any) -> Any:
    """``model`` wrapped as a module whose forward returns :func:`token_losses`.

    Under ``accelerate launch`` this wrapper is what DDP/FSDP wrap, so the forward pass goes
    through them and gradients are synchronised as they expect; with bf16 mixed precision it is
    the forward that ``Accelerator.prepare`` runs under autocast.
    """
    import torch

    class TokenLosses(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, batch: Batch) -> torch.Tensor:
            if not torch.is_autocast_enabled(batch.input_ids.device.type):
                return token_losses(self.model, batch)
            from peft.helpers import disable_input_dtype_casting

            # Under autocast PEFT's cast of every LoRA input to float32 only adds copies (each
            # one costs more than the LoRA matmul): autocast multiplies in bfloat16 anyway.
            with disable_input_dtype_casting(self.model):
                return token_losses(self.model, batch)

    return TokenLosses(model)
