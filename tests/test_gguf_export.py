"""A run as one GGUF: the base GGUF copied, the adapter's layers merged, nothing else touched."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from eval_support import fake_run
from safetensors.torch import save_file

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.student.gguf_export import export_gguf, lora_deltas

HIDDEN, RANK, ALPHA = 64, 4, 8.0
PREFIX = "base_model.model.model.layers.0"


def tiny_gguf(path: Path) -> dict[str, np.ndarray]:
    """A one-block Gemma 3 GGUF: a Q8_0 attention layer, an F32 embedding, a few fields."""
    rng = np.random.default_rng(0)
    weights = {
        "blk.0.attn_q.weight": rng.normal(0, 0.05, (HIDDEN, HIDDEN)).astype(np.float32),
        "blk.0.ffn_up.weight": rng.normal(0, 0.05, (2 * HIDDEN, HIDDEN)).astype(np.float32),
        "token_embd.weight": rng.normal(0, 1, (100, HIDDEN)).astype(np.float32),
    }
    writer = gguf.GGUFWriter(str(path), "gemma3")
    writer.add_block_count(1)
    writer.add_context_length(512)
    writer.add_string("general.name", "tiny 猫")
    writer.add_array("tokenizer.ggml.tokens", ["<pad>", "a", "ね"])
    q8 = gguf.GGMLQuantizationType.Q8_0
    for name, array in weights.items():
        if name == "token_embd.weight":
            writer.add_tensor(name, array)
        else:
            writer.add_tensor(name, gguf.quants.quantize(array, q8), raw_dtype=q8)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return weights


def tiny_adapter(folder: Path, **extra_tensors: torch.Tensor) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    tensors = {
        f"{PREFIX}.self_attn.q_proj.lora_A.weight": torch.randn(RANK, HIDDEN) * 0.1,
        f"{PREFIX}.self_attn.q_proj.lora_B.weight": torch.randn(HIDDEN, RANK) * 0.1,
        f"{PREFIX}.mlp.up_proj.lora_A.weight": torch.randn(RANK, HIDDEN) * 0.1,
        f"{PREFIX}.mlp.up_proj.lora_B.weight": torch.randn(2 * HIDDEN, RANK) * 0.1,
        **extra_tensors,
    }
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "use_rslora": False}
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return tensors


def read(path: Path) -> tuple[gguf.GGUFReader, dict[str, np.ndarray]]:
    reader = gguf.GGUFReader(str(path))
    return reader, {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        for t in reader.tensors
    }


@pytest.mark.parametrize("kind", ["F16", "Q8_0"])
def test_changed_layers_get_the_lora_delta_and_the_rest_is_copied(tmp_path: Path, kind) -> None:
    tiny_gguf(tmp_path / "base.gguf")
    tensors = tiny_adapter(tmp_path / "adapter")
    out = tmp_path / "run" / "model.gguf"
    result = export_gguf(tmp_path / "base.gguf", tmp_path / "adapter", out, merged_type=kind)
    assert (result.changed, result.copied) == (2, 1) and result.bytes == out.stat().st_size

    base_reader, base = read(tmp_path / "base.gguf")
    merged_reader, merged = read(out)
    a = tensors[f"{PREFIX}.self_attn.q_proj.lora_A.weight"]
    b = tensors[f"{PREFIX}.self_attn.q_proj.lora_B.weight"]
    delta = (b @ a).numpy() * (ALPHA / RANK)
    expected = base["blk.0.attn_q.weight"] + delta
    error = np.abs(merged["blk.0.attn_q.weight"] - expected).max()
    assert error < (2e-3 if kind == "Q8_0" else 1e-3) < np.abs(delta).max()
    assert np.array_equal(merged["token_embd.weight"], base["token_embd.weight"])
    kinds = {t.name: t.tensor_type.name for t in merged_reader.tensors}
    assert kinds == {
        "blk.0.attn_q.weight": kind, "blk.0.ffn_up.weight": kind, "token_embd.weight": "F32"
    }  # fmt: skip
    for key in ("general.name", "tokenizer.ggml.tokens", "gemma3.block_count"):
        assert merged_reader.fields[key].contents() == base_reader.fields[key].contents()


def test_rslora_scaling(tmp_path: Path) -> None:
    tensors = tiny_adapter(tmp_path / "adapter")
    config = tmp_path / "adapter" / "adapter_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "use_rslora": True}))
    delta = lora_deltas(tmp_path / "adapter")["model.layers.0.mlp.up_proj.weight"]
    a = tensors[f"{PREFIX}.mlp.up_proj.lora_A.weight"]
    b = tensors[f"{PREFIX}.mlp.up_proj.lora_B.weight"]
    assert np.allclose(delta, (b @ a).numpy() * ALPHA / RANK**0.5, atol=1e-7)


def test_what_cannot_be_folded_in_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    tiny_gguf(tmp_path / "base.gguf")
    out = tmp_path / "model.gguf"
    tiny_adapter(tmp_path / "saved", **{"base_model.model.lm_head.weight": torch.zeros(4, 4)})
    with pytest.raises(BonsaiError, match=r"trains 'base_model\.model\.lm_head\.weight'"):
        export_gguf(tmp_path / "base.gguf", tmp_path / "saved", out)
    extra = {
        f"{PREFIX}.self_attn.v_proj.lora_A.weight": torch.zeros(RANK, HIDDEN),
        f"{PREFIX}.self_attn.v_proj.lora_B.weight": torch.zeros(HIDDEN, RANK),
    }
    tiny_adapter(tmp_path / "other", **extra)
    with pytest.raises(BonsaiError, match=r"GGUF has no tensor 'blk\.0\.attn_v\.weight'"):
        export_gguf(tmp_path / "base.gguf", tmp_path / "other", out)
    tiny_adapter(
        tmp_path / "half",
        **{
            f"{PREFIX}.self_attn.v_proj.lora_A.weight": extra[
                f"{PREFIX}.self_attn.v_proj.lora_A.weight"
            ]
        },
    )
    with pytest.raises(BonsaiError, match="has no lora_B beside it"):
        export_gguf(tmp_path / "base.gguf", tmp_path / "half", out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BonsaiError, match="adapter is incomplete"):
        export_gguf(tmp_path / "base.gguf", tmp_path / "empty", out)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["base.gguf"]


def test_merge_gguf_cli_refuses_a_run_on_another_base(garden: Garden, cli) -> None:
    fake_run(garden, "run-a", base_model="some/other-model")
    result = cli("merge", "run-a", "--gguf", "--garden", garden.root)
    assert result.exit_code == 2 and "has no GGUF of" in result.stderr
    assert "convert_hf_to_gguf.py" in result.stderr and "Traceback" not in result.output
    result = cli("merge", "run-a", "--gguf", "--gguf-type", "q2_k", "--garden", garden.root)
    assert result.exit_code == 2 and "unknown GGUF type 'q2_k'" in result.stderr
    result = cli("merge", "run-a", "--garden", garden.root)
    assert result.exit_code == 2 and "--out" in result.stderr
