"""The lean Gemma 3 decode step computes what transformers' forward computes, token by token."""

from __future__ import annotations

from pathlib import Path

import torch
from generate_support import inference_thread_count  # noqa: F401

from bonsai.generate.fast import prepare_for_inference
from bonsai.generate.gemma_step import GemmaStep, step_pair, supports
from bonsai.student import load_model


def reference_logits(model, prompt: list[int], tokens: list[int]) -> list[torch.Tensor]:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    out = [model(input_ids=torch.tensor([prompt]), past_key_values=cache, use_cache=True)]
    rows = [out[0].logits[0, -1]]
    for token in tokens:
        step = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        rows.append(step.logits[0, -1])
    return rows


def test_lean_step_matches_transformers_past_the_sliding_window(tiny_model_dir: Path) -> None:
    for precision in (None, "int8"):
        model = load_model(str(tiny_model_dir)).eval()
        if precision:
            prepare_for_inference(model, precision)
        assert supports(model)
        window = model.config.sliding_window  # 128 in the tiny model
        torch.manual_seed(0)
        prompt = torch.randint(4, 500, (window - 20,)).tolist()
        tokens = torch.randint(4, 500, (60,)).tolist()  # crosses the window boundary
        with torch.inference_mode():
            want = reference_logits(model, prompt, tokens)
            lean = GemmaStep(model, capacity=len(prompt) + len(tokens) + 1)
            got = [lean.prefill(prompt)] + [lean.step(t) for t in tokens]
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert torch.equal(a, b), (precision, i)  # the same numbers, bit for bit


def test_other_architectures_keep_the_plain_path(tiny_llama_dir: Path) -> None:
    assert not supports(load_model(str(tiny_llama_dir)))


def test_a_pair_of_sequences_steps_as_each_would_alone(tiny_model_dir: Path) -> None:
    """Two prompts of different lengths (one past the sliding window) fed the same tokens in one
    pass give the logits each gives stepped alone, bit for bit."""
    for precision in (None, "int8"):
        model = load_model(str(tiny_model_dir)).eval()
        if precision:
            prepare_for_inference(model, precision)
        window = model.config.sliding_window
        torch.manual_seed(1)
        long_prompt = torch.randint(4, 500, (window - 10,)).tolist()
        short_prompt = long_prompt[-30:]
        tokens = torch.randint(4, 500, (25,)).tolist()
        capacity = len(long_prompt) + len(tokens) + 1
        with torch.inference_mode():
            alone = [GemmaStep(model, capacity) for _ in range(2)]
            paired = [GemmaStep(model, capacity) for _ in range(2)]
            for steps in (alone, paired):
                steps[0].prefill(long_prompt)
                steps[1].prefill(short_prompt)
            for token in tokens:
                want = (alone[0].step(token), alone[1].step(token))
                got = step_pair(paired[0], paired[1], token)
                for a, b in zip(got, want, strict=True):
                    assert torch.equal(a, b), precision  # bit for bit
        assert [s.position for s in paired] == [s.position for s in alone]
