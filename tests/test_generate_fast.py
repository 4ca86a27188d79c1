"""The fast inference layers: the 4-bit-then-exact output layer and int8 linear layers."""

from __future__ import annotations

import pytest
import torch
from generate_support import inference_thread_count  # noqa: F401
from torch import nn

from bonsai.generate.fast import (
    HEAD_WINDOW,
    MIN_HEAD_ROWS,
    Int8Linear,
    RefinedHead,
    prepare_for_inference,
)


def big_head(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    head = nn.Linear(64, MIN_HEAD_ROWS, bias=False)
    nn.init.normal_(head.weight, std=0.5)
    return head.to(torch.bfloat16)


def test_refined_head_scores_the_best_tokens_exactly() -> None:
    head = big_head()
    refined = RefinedHead(head)
    for seed in range(5):
        torch.manual_seed(100 + seed)
        hidden = torch.randn(1, 1, 64).to(torch.bfloat16)
        with torch.inference_mode():
            exact = hidden.float().reshape(1, 64) @ head.weight.float().T
            got = refined(hidden).reshape(1, -1)
        assert int(got.argmax()) == int(exact.argmax())
        top = exact.topk(50).indices
        assert torch.equal(got.topk(50).indices.sort().values, top.sort().values)
        assert torch.allclose(got[0, top[0]], exact[0, top[0]], atol=1e-3)
        far = exact < exact.max() - 2 * HEAD_WINDOW
        error = (got[far] - exact[far]).abs().max()
        # The tail is only approximate (the 4-bit pass), well within the rescoring window.
        assert 1e-3 < error < HEAD_WINDOW / 2


def test_refined_head_handles_several_positions() -> None:
    head = big_head(1)
    refined = RefinedHead(head)
    hidden = torch.randn(2, 3, 64).to(torch.bfloat16)
    with torch.inference_mode():
        got = refined(hidden)
        exact = hidden.float() @ head.weight.float().T
    assert got.shape == (2, 3, MIN_HEAD_ROWS)
    assert torch.equal(got.argmax(-1), exact.argmax(-1))


def test_int8_linear_is_close_to_the_bf16_layer() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(128, 96, bias=True).to(torch.bfloat16)
    fast = Int8Linear(layer)
    x = torch.randn(4, 7, 128).to(torch.bfloat16)
    with torch.inference_mode():
        want, got = layer(x).float(), fast(x).float()
    assert got.shape == want.shape
    assert (got - want).abs().max() < 0.05 * want.abs().max()


def test_int8_linear_reads_a_long_prompt_as_one_bf16_product() -> None:
    from bonsai.generate.fast import PREFILL_MIN_ROWS

    torch.manual_seed(0)
    layer = nn.Linear(128, 96, bias=False).to(torch.bfloat16)
    fast = Int8Linear(layer)
    x = torch.randn(1, PREFILL_MIN_ROWS + 5, 128).to(torch.bfloat16)
    exact = x.float() @ (fast.weight_int8.float() * fast.scale.float()[:, None]).T

    def run(inputs: torch.Tensor) -> tuple[torch.Tensor, set[str]]:
        with torch.inference_mode(), torch.profiler.profile() as profile:
            out = fast(inputs).float()
        return out, {event.key for event in profile.key_averages()}

    product, product_ops = run(x)
    one_row, one_row_ops = run(x[:, :1])  # a decode step always takes the int8 kernel
    fast.prefill_min_rows = None
    kernel, kernel_ops = run(x)
    assert "aten::mm" in product_ops and "aten::_weight_int8pack_mm" not in product_ops
    assert "aten::_weight_int8pack_mm" in one_row_ops and "aten::mm" not in one_row_ops
    assert "aten::_weight_int8pack_mm" in kernel_ops
    assert product.shape == kernel.shape == exact.shape
    # Both are the int8 weights' product, each rounded once to bf16: as close to the exact one.
    tolerance = 2**-7 * exact.abs().max()
    assert (product - exact).abs().max() <= tolerance
    assert (kernel - exact).abs().max() <= tolerance
    assert torch.allclose(one_row, kernel[:, :1])


def test_prepare_swaps_layers_and_keeps_small_heads(tiny_model_dir) -> None:
    from bonsai.student import load_model

    model = load_model(str(tiny_model_dir))
    done = prepare_for_inference(model, "int8")
    assert done["int8_layers"] == 14  # 7 linear layers in each of the 2 layers
    assert done["head"] == "bf16"  # a 512-token vocabulary gains nothing from 4 bits
    assert isinstance(model.get_output_embeddings(), nn.Linear)
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(model, "fp8")


def test_fused_gemma_norm_gives_the_same_numbers(tiny_model_dir) -> None:
    from bonsai.generate.fast import GemmaRMSNorm
    from bonsai.student import load_model

    model = load_model(str(tiny_model_dir))
    norms = [m for m in model.modules() if type(m).__name__ == "Gemma3RMSNorm"]
    assert norms
    torch.manual_seed(0)
    for norm in norms:
        torch.nn.init.normal_(norm.weight, std=0.3)
        x = (torch.randn(3, 5, norm.weight.shape[0]) * 4).to(torch.bfloat16)
        with torch.inference_mode():
            assert torch.equal(GemmaRMSNorm(norm)(x), norm(x))
    ids = torch.tensor([[2, 40, 41, 42, 43, 44]])
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        done = prepare_for_inference(model, "bf16")
        after = model(input_ids=ids).logits
    assert done["fused_norms"] == len(norms) and done["int8_layers"] == 0
    assert torch.equal(before, after)


def test_the_packed_head_is_cached_and_a_changed_model_packs_afresh(tmp_path) -> None:
    from bonsai.generate.fast import cached_pack_int4, head_cache_file, pack_int4

    head = big_head()
    folder = tmp_path / "prepared"
    (packed, scales), how = cached_pack_int4(head.weight, folder)
    assert how == "packed and cached"
    cached = head_cache_file(head.weight, folder)
    assert [p.name for p in folder.iterdir()] == [cached.name]  # no temporary file left
    (again, again_scales), how = cached_pack_int4(head.weight, folder)
    assert how == "cached"
    want, want_scales = pack_int4(head.weight)
    assert torch.equal(again, want) and torch.equal(again_scales, want_scales)
    assert torch.equal(packed, want) and torch.equal(scales, want_scales)

    changed = big_head()
    with torch.no_grad():
        changed.weight[123, 7] += 1.0  # one weight of 2 million
    assert head_cache_file(changed.weight, folder) != cached
    assert cached_pack_int4(changed.weight, folder)[1] == "packed and cached"
    assert len(list(folder.iterdir())) == 2

    cached.write_bytes(b"half a file")  # damaged: packed again, and replaced
    (repacked, _), how = cached_pack_int4(head.weight, folder)
    assert how == "packed and cached" and torch.equal(repacked, want)
    assert cached_pack_int4(head.weight, folder)[1] == "cached"


def test_a_refined_head_from_the_cache_scores_alike(tmp_path) -> None:
    head = big_head(seed=3)
    fresh = RefinedHead(head, tmp_path)
    from_cache = RefinedHead(head, tmp_path)
    assert (fresh.source, from_cache.source) == ("packed and cached", "cached")
    hidden = torch.randn(2, 3, 64).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(fresh(hidden), from_cache(hidden))
