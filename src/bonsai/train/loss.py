"""The loss: cross-entropy on target tokens only, computed without ever building all the logits.

The student's LM head is big (Gemma 3: 262,144 × 640), and on a CPU it costs as much as the
whole transformer. So:

1. the decoder runs over the packed row and returns hidden states;
2. only the hidden states at positions that predict a target token go through the LM head;
3. the head and the cross-entropy run in chunks of rows, and each chunk's gradient with respect
   to its hidden states is computed right away (softmax minus one-hot, times the head). So the
   (chunk × vocab) logits are never kept for the backward pass and the head is never multiplied
   twice: memory stays flat and backward is one small multiply.

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


def _linear_cross_entropy_class() -> Any:
    import torch

    class LinearCrossEntropy(torch.autograd.Function):
        """Per-token cross-entropy of ``hidden @ weight.T`` against ``targets``, chunked."""

        @staticmethod
        def forward(ctx: Any, hidden, weight, targets, softcap):  # type: ignore[no-untyped-def]
            n = hidden.shape[0]
            losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
            grad = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
            step = _chunk_rows(weight.shape[0])
            for start in range(0, n, step):
                h = hidden[start : start + step]
                t = targets[start : start + step]
                logits = (h @ weight.T).float()
                if softcap:
                    capped = torch.tanh(logits / softcap)
                    logits = capped * softcap
                # One fused pass for the log-probabilities (faster than logsumexp and a subtract).
                logp = torch.log_softmax(logits, dim=-1)
                losses[start : start + step] = -logp.gather(1, t[:, None])[:, 0]
                if grad is not None:
                    # d loss / d logits = softmax - one_hot, in the log-probabilities' memory.
                    probs = logp.exp_()
                    probs[torch.arange(len(t), device=t.device), t] -= 1.0
                    if softcap:
                        probs.mul_(1.0 - capped * capped)
                    grad[start : start + step] = probs.to(weight.dtype) @ weight
            ctx.save_for_backward(grad)
            return losses

        @staticmethod
        def backward(ctx: Any, grad_losses):  # type: ignore[no-untyped-def]
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
    through them and gradients are synchronised as they expect.
    """
    import torch

    class TokenLosses(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.model = inner

        def forward(self, batch: Batch) -> torch.Tensor:
            return token_losses(self.model, batch)

    return TokenLosses(model)
