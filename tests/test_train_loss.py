"""The loss: only target positions, the LM head in chunks with its gradient computed in the
forward pass, and packed rows whose examples do not see each other."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bonsai.train import loss as loss_module
from bonsai.train.data import Example, collate
from bonsai.train.loss import linear_cross_entropy, token_losses


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_chunked_loss_and_gradient_match_plain_cross_entropy(monkeypatch, softcap) -> None:
    # Small chunks (16 rows of a 1,000-word vocabulary), so several chunks are exercised.
    monkeypatch.setattr(loss_module, "LOGITS_PER_CHUNK", 16 * 1000)
    torch.manual_seed(0)
    hidden = torch.randn(50, 16, requires_grad=True)
    weight = torch.randn(1000, 16)
    targets = torch.randint(0, 1000, (50,))
    scale = torch.rand(50)

    losses = linear_cross_entropy(hidden, weight, targets, softcap)
    (losses * scale).sum().backward()
    grad = hidden.grad.clone()
    hidden.grad = None

    logits = hidden @ weight.T
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    expected = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    (expected * scale).sum().backward()
    assert torch.allclose(losses, expected, atol=1e-5)
    assert torch.allclose(grad, hidden.grad, atol=1e-5)


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_packed_rows_equal_separate_examples_and_the_models_own_logits(
    arch: str, tiny_model_dir: Path, tiny_llama_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM

    folder = tiny_model_dir if arch == "gemma3" else tiny_llama_dir
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    examples = [
        Example("a", "open_qa", [2, 50, 61, 72, 83, 94], 3),
        Example("b", "creative", [2, 15, 16, 17, 18], 2),
        Example("c", "creative", [2, 25, 26, 27], 1),
    ]
    with torch.no_grad():
        packed = token_losses(model, collate(examples))
        separate = torch.cat([token_losses(model, collate([e])) for e in examples])
        reference = []
        for e in examples:
            ids = torch.tensor([e.input_ids])
            logits = model(ids).logits[0]
            reference.append(
                torch.nn.functional.cross_entropy(
                    logits[e.n_prompt - 1 : -1], ids[0, e.n_prompt :], reduction="none"
                )
            )
    assert packed.shape == (3 + 3 + 3,)
    assert torch.allclose(packed, separate, atol=1e-5)
    assert torch.allclose(separate, torch.cat(reference), atol=1e-5)


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_per_example_attention_equals_the_block_diagonal_mask(
    arch: str, tiny_model_dir: Path, tiny_llama_dir: Path
) -> None:
    from transformers import AutoModelForCausalLM

    from bonsai.train.model import load_base

    folder = tiny_model_dir if arch == "gemma3" else tiny_llama_dir
    packed = load_base(str(folder), "fp32")
    assert packed.config._attn_implementation == "bonsai_packed"
    masked = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa")
    generator = torch.Generator().manual_seed(0)
    # 200 tokens is longer than the tiny Gemma's 128-token sliding window.
    examples = [
        Example(str(i), "open_qa", torch.randint(5, 400, (n,), generator=generator).tolist(), 3)
        for i, n in enumerate([30, 200, 7, 150])
    ]
    batch = collate(examples)
    with torch.no_grad():
        assert torch.allclose(token_losses(packed, batch), token_losses(masked, batch), atol=1e-5)


def test_bf16_head_reuses_its_buffers_between_inference_and_training(monkeypatch) -> None:
    """The chunk buffers are kept across calls: a pass under inference mode, then training steps
    of other sizes, all give the same losses and gradients as a plain computation."""
    monkeypatch.setattr(loss_module, "LOGITS_PER_CHUNK", 16 * 1000)
    monkeypatch.setattr(loss_module, "_BUFFERS", loss_module._ChunkBuffers())
    torch.manual_seed(0)
    weight = torch.randn(1000, 16).bfloat16()
    for rows in (5, 40, 23):
        hidden = torch.randn(rows, 16).bfloat16()
        targets = torch.randint(0, 1000, (rows,))
        expected = torch.nn.functional.cross_entropy(
            (hidden @ weight.T).float(), targets, reduction="none"
        )
        with torch.inference_mode():
            assert torch.allclose(
                linear_cross_entropy(hidden, weight, targets), expected, atol=1e-5
            )
        hidden.requires_grad_(True)
        linear_cross_entropy(hidden, weight, targets).sum().backward()
        plain = hidden.detach().float().requires_grad_(True)
        torch.nn.functional.cross_entropy(
            plain @ weight.float().T, targets, reduction="sum"
        ).backward()
        assert torch.allclose(hidden.grad.float(), plain.grad, rtol=2e-2, atol=5e-2)
    assert loss_module._BUFFERS.tensors[0].shape == (16, 1000)  # one chunk's worth, kept
